# Deliverable Figure 10 without GNU parallel and uuid: the same JOBS-1
# asynchronous sshell runs started by a loop, and a random barrier name.
gathering(){
  JOBS=${JOBS:-100}
  BARRIER=$(od -An -N8 -tx1 /dev/urandom | tr -d ' \n')
  for i in $(seq 1 1 $((JOBS-1))); do sshell --async barrier -n ${BARRIER} await -p ${JOBS} > /dev/null; done
  sshell barrier -n ${BARRIER} await -p ${JOBS}
}
gathering

# Deliverable Figure 10, as written: JOBS sshell runs meet at a barrier.
# It needs GNU parallel and uuid; fig10-loop.sh is the same without them.
gathering(){
  JOBS=100
  BARRIER=$(uuid)
  seq 1 1 $((JOBS-1)) | parallel -n0 sshell --async barrier -n ${BARRIER} await -p ${JOBS}
  sshell barrier -n ${BARRIER} await -p ${JOBS}
}
gathering

# Deliverable Figure 11, as written but for CCBASE (see fig9.sh, whose
# index it reuses): the same average, each sshell adding its archive's
# average to a shared counter.
TMP_DIR=/tmp/$(whoami)
CCBASE="${CCBASE:-http://commoncrawl.s3.amazonaws.com}"
RANGE="-r 0-10000000"
average_stateful(){
  sshell "counter -n average reset"
  while read l; do
    sshell "counter -n average increment -i \$(curl -s ${RANGE} ${CCBASE}/${l} | 2>/dev/null zcat | grep ^Content-Length | awk '{ sum += \$2 } END { if (NR > 0) print int(sum / NR) }')" 1> /dev/null &
  done < ${TMP_DIR}/index
  wait
  lines=$(wc -l ${TMP_DIR}/index | awk '{print $1}')
  total_average=$(sshell "counter -n average tally")
  echo $((total_average/lines))
}
average_stateful

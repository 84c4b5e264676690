# Deliverable Figure 9, as written but for CCBASE, which may point to a
# local crawl (examples/sshell/crawl): the average size of a web page,
# one sshell per archive.
TMP_DIR=/tmp/$(whoami)
CCBASE="${CCBASE:-http://commoncrawl.s3.amazonaws.com}"
CCMAIN="CC-MAIN-2021-17" # april 2021
RANGE="-r 0-10000000"
curl -s ${CCBASE}/crawl-data/${CCMAIN}/warc.paths.gz \
| zcat | head -n 1000 > ${TMP_DIR}/index
average(){
  while read l; do
    sshell "curl -s ${RANGE} ${CCBASE}/${l} | 2>/dev/null zcat -q | grep ^Content-Length " &
   done < ${TMP_DIR}/index | awk '{ sum += $2 } END { if (NR > 0) print int(sum / NR) }'
}
average

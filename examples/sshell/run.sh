#!/bin/sh
# Runs the deliverable's sshell figures against local data: a DSO cluster
# (blossom cluster), a generated crawl served on loopback (crawl), and
# `sshell` on the PATH as `blossom sshell`. From the repository root:
#
#	sh examples/sshell/run.sh
#
# BLOSSOM_EXECUTOR chooses the back end of every sshell (default local).
set -e
here=$(cd "$(dirname "$0")" && pwd)
work=$(mktemp -d)
trap 'kill $cluster $server 2>/dev/null; rm -rf "$work"' EXIT
go build -o "$work/bin/blossom" ./cmd/blossom
go build -o "$work/crawl" ./examples/sshell/crawl
printf '#!/bin/sh\nexec %s sshell "$@"\n' "$work/bin/blossom" > "$work/bin/sshell"
chmod +x "$work/bin/sshell"
PATH="$work/bin:$PATH"
"$work/bin/blossom" cluster --nodes 3 --base-port 0 > "$work/cluster.log" 2>&1 & cluster=$!
"$work/crawl" -dir "$work/crawl-data" > "$work/crawl.log" 2>&1 & server=$!
until grep -q '^BLOSSOM_ENDPOINTS=' "$work/cluster.log" 2>/dev/null && grep -q '^CCBASE=' "$work/crawl.log" 2>/dev/null; do sleep 0.2; done
export $(grep '^BLOSSOM_ENDPOINTS=' "$work/cluster.log")
export $(grep '^CCBASE=' "$work/crawl.log")
mkdir -p /tmp/$(whoami)
grep average "$work/crawl.log"
echo "== figure 9";  sh "$here/fig9.sh"
echo "== figure 11"; sh "$here/fig11.sh"
echo "== figure 12, bottom"; mkdir -p "$work/fs"; FS="$work/fs" sh "$here/fig12-file.sh" || echo "exit status $?"
if command -v parallel >/dev/null && command -v uuid >/dev/null; then
	echo "== figure 10"; JOBS=20 sh "$here/fig10.sh"
else
	echo "== figure 10 (no GNU parallel or uuid: the loop variant, 20 jobs)"; JOBS=20 sh "$here/fig10-loop.sh"
fi

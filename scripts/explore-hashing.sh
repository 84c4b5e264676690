#!/bin/sh
# explore-hashing.sh: the exhaustive search (blossom explore --mode
# exhaustive) on one scope per protocol with state hashing (the whole
# state of the run; protocols.Fingerprinter) and, as before it, with trace
# hashing (only equivalent schedules recognised), under the same bound on
# runs; prints a Markdown table of runs, schedules, states and coverage.
# Runs, not seconds, compare the two: on a loaded machine the time a run
# takes varies several-fold.
#
#   scripts/explore-hashing.sh [BLOSSOM] [OUTDIR]
#
# Environment: HASHING_RUNS, the bound on runs (default 100000);
# HASHING_TIME, the time cap of each search (default 3m; a search cut by
# it is not covered); HASHING_ONLY, a protocol to run alone.
set -eu

BIN=${1:-bin/blossom}
OUT=${2:-results/explore-hashing}
RUNS=${HASHING_RUNS:-100000}
T=${HASHING_TIME:-3m}
ONLY=${HASHING_ONLY:-}
mkdir -p "$OUT"
. "$(dirname "$0")/explore-lib.sh"
explore_bin "$BIN" explore-hashing

n=0
# scope PROTOCOL FLAGS...
scope() {
	proto=$1
	shift
	if explore_skip "$proto"; then return 0; fi
	n=$((n + 1))
	for h in state trace; do
		# shellcheck disable=SC2086
		"$BIN" explore --protocol "$proto" --mode exhaustive --hashing "$h" --max-runs "$RUNS" --max-time "$T" --quiet --steps 300 \
			--out "$OUT/$n-$proto-$h.trace.json" "$@" >"$OUT/$n-$proto-$h.log" 2>&1 || true
	done
	printf '| %s | %s | %s | %s |\n' "$proto" "$*" "$(explore_row "$OUT/$n-$proto-state.log")" "$(explore_row "$OUT/$n-$proto-trace.log")"
}

echo "hashing: exhaustive, at most $RUNS runs and $T per search; $(uptime)"
echo
echo "| protocol | scope (blossom explore flags) | state hashing: runs | schedules | states | time | covered | trace hashing (before): runs | schedules | states | time | covered |"
echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
scope paxos --nodes 3 --clients 1 --ops 1 --ticks 1 --events 1
scope fpaxos --nodes 3 --clients 1 --ops 1 --ticks 1 --events 1
scope epaxos --nodes 3 --clients 1 --ops 2 --ticks 0
scope atlas --nodes 3 --clients 2 --ops 2 --reads 50 --ticks 0
scope atlas --nodes 3 --clients 2 --ops 3 --reads 50 --ticks 0
scope mencius --nodes 3 --clients 1 --ops 2 --ticks 0
scope weak --nodes 3 --clients 2 --ops 3 --reads 50 --ticks 1
scope weak --nodes 3 --clients 3 --ops 4 --reads 50 --ticks 2
scope sequential --nodes 3 --clients 1 --ops 2 --reads 50 --ticks 1

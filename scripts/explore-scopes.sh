#!/bin/sh
# explore-scopes.sh: per protocol, DPOR (blossom explore --mode dpor) or
# the exhaustive search with state hashing (SCOPES_MODE=exhaustive) on a
# ladder of growing scopes, each within a time budget; prints a Markdown
# table of schedules, states (DPOR: search prefixes; exhaustive: distinct
# states hashed) and whether each scope was fully covered. The largest
# covered scope of a protocol is the last row of it that says yes.
#
#   scripts/explore-scopes.sh [BLOSSOM] [OUTDIR]
#
# BLOSSOM is a blossom binary (default bin/blossom; no failpoints needed).
# Environment: SCOPES_TIME, the budget of each scope (default 120s);
# SCOPES_ONLY, a protocol to run alone; SCOPES_FLAGS, flags added to every
# run (e.g. --fifo, --hashing trace); SCOPES_MODE, dpor (default) or
# exhaustive. Each run's output is kept in
# OUTDIR (default results/explore-scopes).
set -eu

BIN=${1:-bin/blossom}
OUT=${2:-results/explore-scopes}
T=${SCOPES_TIME:-120s}
ONLY=${SCOPES_ONLY:-}
EXTRA=${SCOPES_FLAGS:-}
MODE=${SCOPES_MODE:-dpor}
mkdir -p "$OUT"
. "$(dirname "$0")/explore-lib.sh"
explore_bin "$BIN" explore-scopes

n=0
# scope PROTOCOL FLAGS...
scope() {
	proto=$1
	shift
	if explore_skip "$proto"; then return 0; fi
	n=$((n + 1))
	log="$OUT/$n-$proto.log"
	# shellcheck disable=SC2086
	"$BIN" explore --protocol "$proto" --mode "$MODE" --max-runs 0 --max-time "$T" --quiet --steps 300 \
		--out "$OUT/$n-$proto.trace.json" $EXTRA "$@" >"$log" 2>&1 || true
	printf '| %s | %s | %s |\n' "$proto" "$* $EXTRA" "$(explore_row "$log")"
}

echo "scopes: $MODE $EXTRA, budget $T per scope; $(uptime)"
echo
echo "| protocol | scope (blossom explore flags) | runs | schedules | states | time | fully covered |"
echo "|---|---|---|---|---|---|---|"
for p in paxos fpaxos; do
	scope $p --nodes 3 --clients 1 --ops 1 --ticks 1 --events 1
	scope $p --nodes 3 --clients 1 --ops 2 --ticks 1 --events 1
	scope $p --nodes 3 --clients 2 --ops 2 --reads 50 --ticks 1 --events 1
done
for p in epaxos atlas; do
	scope $p --nodes 3 --clients 1 --ops 2 --ticks 0
	scope $p --nodes 3 --clients 2 --ops 2 --reads 50 --ticks 0
	scope $p --nodes 3 --clients 2 --ops 3 --reads 50 --ticks 0
done
scope mencius --nodes 3 --clients 1 --ops 2 --ticks 0
scope mencius --nodes 3 --clients 2 --ops 2 --reads 50 --ticks 0
scope mencius --nodes 3 --clients 2 --ops 2 --reads 50 --ticks 1 --events 1
if [ "$MODE" = exhaustive ]; then
	# Larger scopes, for the state hashing.
	for p in paxos mencius; do
		scope $p --nodes 3 --clients 2 --ops 2 --reads 50 --ticks 2 --events 2
	done
	scope paxos --nodes 3 --clients 1 --ops 1 --ticks 2 --crashes 1 --events 3
	for p in weak sequential; do
		scope $p --nodes 3 --clients 2 --ops 2 --reads 50 --ticks 1
		scope $p --nodes 3 --clients 2 --ops 3 --reads 50 --ticks 1
	done
	exit 0
fi
# The multicast protocols elect a leader per group: without ticks nothing
# is delivered.
for p in wbcast skeen; do
	scope $p --groups 2 --nodes 0 --dest 2 --clients 1 --ops 1 --ticks 1 --events 2
	scope $p --groups 2 --nodes 0 --dest 2 --clients 1 --ops 2 --ticks 1 --events 2
	scope $p --groups 2 --nodes 0 --dest 2 --clients 2 --ops 2 --ticks 1 --events 2
done

#!/bin/sh
# explore-campaign.sh: for every planted sabotage bug (the failpoint.Inject
# markers of protocols/ and runner/), how many runs and how long random
# swarm sweeps (blossom sim seeds), PCT, DPOR (exhaustive search with
# dynamic partial-order reduction and iterative deepening on ticks+faults,
# every channel order and FIFO channels) and the exhaustive search with
# sleep sets and state hashing (iterative deepening likewise) take to find
# it, and the length of the minimized counterexample; prints a Markdown
# table.
#
#   scripts/explore-campaign.sh [BLOSSOM_FP] [OUTDIR]
#
# BLOSSOM_FP is a blossom binary built with the failpoint markers rewritten
# (make explore-campaign builds bin/blossom-fp and runs this script).
# Environment: CAMPAIGN_TIME, the time budget of each mode on each bug
# (default 10s: 19 bugs x 5 modes stay under 20 minutes); CAMPAIGN_ONLY, a
# substring of the failpoints to run.
# Every run's output is kept in OUTDIR (default results/explore-campaign),
# with the minimized traces (blossom explore --replay FILE replays one).
# A bug a mode does not find within its budget is reported as such; the
# numbers are wall times on whatever machine runs it. After the table it
# replays one minimized counterexample (the first the exhaustive search
# wrote, else the first of PCT) with blossom explore --replay. With
# CAMPAIGN_DOC=FILE, the output also replaces the part of FILE between the
# lines "<!-- campaign:begin -->" and "<!-- campaign:end -->"
# (docs/EXPLORE.md).
set -eu

BIN=${1:-bin/blossom-fp}
OUT=${2:-results/explore-campaign}
T=${CAMPAIGN_TIME:-10s}
ONLY=${CAMPAIGN_ONLY:-}
DOC=${CAMPAIGN_DOC:-}
PKG=github.com/blossom-dso/blossom
mkdir -p "$OUT"

if [ ! -x "$BIN" ]; then
	echo "explore-campaign: $BIN is not an executable failpoint build (make explore-campaign)" >&2
	exit 2
fi

# cell MODE LOG: "run R, TIME; N decisions" or "not found in R runs (TIME)".
cell() {
	res=$(grep '^result' "$2" || true)
	runs=$(echo "$res" | sed -n 's/^result *[a-z]*: \([0-9]*\) runs in \([^,;]*\).*/\1/p')
	took=$(echo "$res" | sed -n 's/^result *[a-z]*: \([0-9]*\) runs in \([^,;]*\).*/\2/p')
	if [ -z "$res" ]; then
		echo "error: $(tail -n 1 "$2")"
	elif echo "$res" | grep -q FAILED; then
		run=$(echo "$res" | sed -n 's/.*; run \([0-9]*\) .*FAILED.*/\1/p')
		min=$(sed -n 's/^trace .*: \([0-9]*\) decisions, \([0-9]*\) steps.*/\1 decisions, \2 steps/p' "$2")
		echo "run $run, $took${min:+; min $min}"
	else
		cov=""
		if echo "$res" | grep -q "fully covered: true"; then
			cov=", scope covered"
		fi
		echo "not found in $runs runs ($took$cov)"
	fi
}

# bug FAILPOINT PROTOCOL DEPTH "SWARM FLAGS" "SCOPE FLAGS" EVENTS
bug() {
	fp=$1 proto=$2 depth=$3 swarm=$4 scope=$5 events=$6
	case "$fp" in *"$ONLY"*) ;; *) return 0 ;; esac
	name=$(echo "$proto-$fp" | tr '/' '-')
	env="GO_FAILPOINTS=$PKG/$fp=return(true)"
	# shellcheck disable=SC2086
	env "$env" "$BIN" explore --protocol "$proto" --mode swarm --runs 100000 --max-time "$T" $swarm >"$OUT/$name-swarm.log" 2>&1 || true
	# shellcheck disable=SC2086
	env "$env" "$BIN" explore --protocol "$proto" --mode pct --depth "$depth" --runs 1000000 --max-time "$T" --quiet \
		--out "$OUT/$name-pct.trace.json" $scope >"$OUT/$name-pct.log" 2>&1 || true
	# shellcheck disable=SC2086
	env "$env" "$BIN" explore --protocol "$proto" --mode dpor --events "$events" --deepen --max-runs 0 --max-time "$T" --quiet \
		--out "$OUT/$name-dpor.trace.json" $scope >"$OUT/$name-dpor.log" 2>&1 || true
	# shellcheck disable=SC2086
	env "$env" "$BIN" explore --protocol "$proto" --mode dpor --fifo --events "$events" --deepen --max-runs 0 --max-time "$T" --quiet \
		--out "$OUT/$name-dpor-fifo.trace.json" $scope >"$OUT/$name-dpor-fifo.log" 2>&1 || true
	# shellcheck disable=SC2086
	env "$env" "$BIN" explore --protocol "$proto" --mode exhaustive --events "$events" --deepen --max-runs 0 --max-time "$T" --quiet \
		--out "$OUT/$name-exhaustive.trace.json" $scope >"$OUT/$name-exhaustive.log" 2>&1 || true
	hashing=$(sed -n 's/.*states (\([a-z]*\) hashing).*/\1/p' "$OUT/$name-exhaustive.log")
	printf '| %s | %s | %s | %s | %s | %s | %s | %s |\n' "$fp" "$proto" "$(cell swarm "$OUT/$name-swarm.log")" \
		"$(cell pct "$OUT/$name-pct.log") (d=$depth)" "$(cell dpor "$OUT/$name-dpor.log")" "$(cell dpor "$OUT/$name-dpor-fifo.log")" \
		"$(cell exhaustive "$OUT/$name-exhaustive.log")${hashing:+ ($hashing hashing)}" "$scope --events $events --deepen"
}

PAXOS_SWARM="--nodes 5 --f 2 --clients 8 --ops 600 --keys 3 --conflict 60 --reads 40"
small_swarm() { echo "--nodes $1 --f $2 --clients 4 --ops 150 --keys 2 --conflict 60 --reads 30"; }
MC_SWARM="--groups 2 --nodes 0 --clients 4 --ops 150 --keys 2 --conflict 60 --reads 30"

main() {
	echo "campaign: budget $T per mode and bug; $(uptime)"
	echo
	echo "| failpoint | protocol | swarm (sim seeds) | PCT | DPOR | DPOR --fifo | exhaustive (state hashing) | explored scope (PCT; DPOR and exhaustive add the events flags) |"
	echo "|---|---|---|---|---|---|---|---|"
	bug protocols/paxos/quorumOneShort paxos 3 "$PAXOS_SWARM" "--nodes 3 --clients 2 --ops 3 --reads 50 --ticks 1" 3
	bug protocols/paxos/quorumOneShort fpaxos 3 "$PAXOS_SWARM" "--nodes 3 --clients 2 --ops 3 --reads 50 --ticks 1" 3
	bug protocols/paxos/executeOutOfOrder paxos 3 "$PAXOS_SWARM" "--nodes 3 --clients 3 --ops 6 --reads 50 --ticks 4" 6
	bug protocols/paxos/ackBeforePersist paxos 3 "$PAXOS_SWARM" "--nodes 3 --clients 2 --ops 3 --reads 50 --ticks 3 --crashes 1" 5
	bug protocols/atlas/skipLocalConflicts atlas 2 "$(small_swarm 5 1)" "--nodes 3 --clients 2 --ops 2 --reads 50 --ticks 0" 0
	bug protocols/atlas/fastThresholdOneLess atlas 3 "$(small_swarm 5 2)" "--nodes 5 --clients 2 --ops 2 --reads 50 --ticks 3 --crashes 1 --drops 1" 4
	bug protocols/atlas/ackBeforePersist atlas 3 "$(small_swarm 3 1)" "--nodes 3 --clients 2 --ops 2 --reads 50 --ticks 2 --crashes 1" 4
	bug protocols/epaxos/dropDeps epaxos 2 "--nodes 5 --f 2 --e 2 --clients 8 --ops 150 --keys 2 --conflict 60 --reads 30" "--nodes 3 --clients 2 --ops 2 --reads 50 --ticks 0" 0
	bug protocols/epaxos/preAcceptOKBeforePersist epaxos 3 "$(small_swarm 3 1)" "--nodes 3 --clients 2 --ops 2 --reads 50 --ticks 2 --crashes 1" 4
	bug protocols/epaxos/acceptOKBeforePersist epaxos 3 "$(small_swarm 3 1)" "--nodes 3 --clients 2 --ops 2 --reads 50 --ticks 2 --crashes 1" 4
	bug protocols/epaxos/recoverOKReportsPromise epaxos 3 "$(small_swarm 3 1)" "--nodes 3 --clients 2 --ops 2 --reads 50 --ticks 3 --crashes 1 --drops 1" 5
	bug protocols/mencius/executeOnChoose mencius 3 "$(small_swarm 3 1)" "--nodes 3 --clients 2 --ops 3 --reads 50 --ticks 2" 3
	bug protocols/mencius/ackBeforePersist mencius 3 "$(small_swarm 3 1)" "--nodes 3 --clients 2 --ops 2 --reads 50 --ticks 2 --crashes 1" 4
	bug protocols/weak/weakApplyStale weak 2 "$(small_swarm 3 1)" "--nodes 3 --clients 2 --ops 3 --reads 0 --ticks 1" 1
	# Explored clients never time out, so they never move to another replica:
	# sequentialReadAnywhere (a read served locally for a client that came from
	# another replica) is out of reach of the explored scopes.
	bug protocols/sequential/sequentialReadAnywhere sequential 2 "$(small_swarm 3 1)" "--nodes 3 --clients 2 --ops 4 --reads 50 --ticks 2" 2
	bug protocols/whitebox-multicast/deliverWithoutWaiting wbcast 3 "$MC_SWARM" "--groups 2 --nodes 0 --clients 2 --ops 2 --reads 0 --ticks 1" 2
	bug protocols/whitebox-multicast/pruneOnOwnGroupOnly wbcast 3 "$MC_SWARM" "--groups 2 --nodes 0 --clients 2 --ops 3 --reads 0 --ticks 2" 3
	bug protocols/whitebox-multicast/ackBeforePersist wbcast 3 "$MC_SWARM" "--groups 2 --nodes 0 --clients 2 --ops 2 --reads 0 --ticks 2 --crashes 1" 4
	# skeen's sabotage test plants paxos's ackBeforePersist in its groups.
	bug protocols/paxos/ackBeforePersist skeen 3 "$MC_SWARM" "--groups 2 --nodes 0 --clients 2 --ops 2 --reads 0 --ticks 2 --crashes 1" 4
	case "runner/ackBeforeWrite" in *"$ONLY"*)
		echo "| runner/ackBeforeWrite | (runner) | not run: the runner is not a simnet protocol | not run | not run | not run | not run | - |" ;;
	esac
	case "degradable pmem" in *"$ONLY"*)
		echo "| (TestSabotage* of degradable, pmem: bugs planted by the tests, no failpoint) | - | not run: not simnet protocols | not run | not run | not run | not run | - |" ;;
	esac
	replay
}

# replay: the first minimized trace of the exhaustive search (else PCT),
# replayed step by step.
replay() {
	tr=$(ls "$OUT"/*-exhaustive.trace.json 2>/dev/null | head -n 1 || true)
	if [ -z "$tr" ]; then
		tr=$(ls "$OUT"/*-pct.trace.json 2>/dev/null | head -n 1 || true)
	fi
	if [ -z "$tr" ]; then
		return 0
	fi
	fps=$(sed -n 's/^ *"failpoints": "\(.*\)",$/\1/p' "$tr")
	echo
	echo "Replayed: \`GO_FAILPOINTS=$fps blossom explore --replay $tr\`"
	echo
	echo '```'
	env "GO_FAILPOINTS=$fps" "$BIN" explore --replay "$tr" 2>&1 || true
	echo '```'
}

main | tee "$OUT/campaign.md"
if [ -n "$DOC" ]; then
	awk -v table="$OUT/campaign.md" '
		/^<!-- campaign:end -->$/ { skip = 0 }
		!skip { print }
		/^<!-- campaign:begin -->$/ { while ((getline l < table) > 0) print l; skip = 1 }
	' "$DOC" >"$DOC.tmp" && mv "$DOC.tmp" "$DOC"
fi

#!/usr/bin/env bash
# simnet-bench-compare.sh: the Simnet benchmarks of the working tree against
# those of a base commit, interleaved, as ratios.
#
#   scripts/simnet-bench-compare.sh [-r ROUNDS] [-b REGEX] [-t BENCHTIME] BASE
#
# Builds the simnet test binary of BASE (a commit, from git archive, with the
# tree's simnet/bench_*_test.go files) and of the working tree, then runs each benchmark matching REGEX (default
# 'Simnet') ROUNDS times (default 5) with each binary, alternating which
# goes first, so that the load of a shared machine weighs on both alike.
# Prints every run's deliveries per CPU-second with the load average, then
# per benchmark the median and the best of each binary and the ratios
# (tree / base); on a loaded machine the best is the steadier. Nothing is
# left running or written outside a temporary directory, which is removed.
set -euo pipefail

rounds=5
regex=Simnet
benchtime=5x
while getopts "r:b:t:" opt; do
	case $opt in
	r) rounds=$OPTARG ;;
	b) regex=$OPTARG ;;
	t) benchtime=$OPTARG ;;
	*) echo "usage: $0 [-r ROUNDS] [-b REGEX] [-t BENCHTIME] BASE" >&2; exit 2 ;;
	esac
done
shift $((OPTIND - 1))
if [ $# -ne 1 ]; then
	echo "usage: $0 [-r ROUNDS] [-b REGEX] [-t BENCHTIME] BASE" >&2
	exit 2
fi
base=$1
root=$(git rev-parse --show-toplevel)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

mkdir "$tmp/base"
git -C "$root" archive "$base" | tar -x -C "$tmp/base"
# Both binaries run the tree's benchmarks.
cp "$root"/simnet/bench_*_test.go "$tmp/base/simnet/"
(cd "$tmp/base" && nice -n 10 go test -c -o "$tmp/base.test" ./simnet)
(cd "$root" && nice -n 10 go test -c -o "$tmp/tree.test" ./simnet)

benches=$("$tmp/tree.test" -test.list "Benchmark.*($regex)" | grep '^Benchmark' || true)
if [ -z "$benches" ]; then
	echo "no benchmark matches $regex" >&2
	exit 1
fi

# run BIN BENCH prints the deliveries/cpu-s of one run.
run() {
	(cd "$root/simnet" && nice -n 10 "$1" -test.run '^$' -test.bench "^$2\$" -test.benchtime "$benchtime") |
		awk '/deliveries\/cpu-s/ { for (i = 1; i < NF; i++) if ($(i+1) == "deliveries/cpu-s") print $i }'
}

out="$tmp/runs"
: >"$out"
for r in $(seq 1 "$rounds"); do
	for b in $benches; do
		if [ $((r % 2)) -eq 1 ]; then order="base tree"; else order="tree base"; fi
		for which in $order; do
			v=$(run "$tmp/$which.test" "$b")
			load=$(cut -d' ' -f1 /proc/loadavg)
			printf '%s round=%d %s %s deliveries/cpu-s load=%s\n' "$b" "$r" "$which" "$v" "$load"
			printf '%s %s %s\n' "$b" "$which" "$v" >>"$out"
		done
	done
done

echo
printf '%-32s %12s %12s %7s %12s %12s %7s\n' benchmark "base median" "tree median" ratio "base best" "tree best" ratio
for b in $benches; do
	stats() { # median and maximum of one binary's runs
		awk -v b="$b" -v w="$1" '$1 == b && $2 == w { print $3 }' "$out" | sort -g |
			awk '{ a[NR] = $1 } END { print ((NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2), a[NR] }'
	}
	read -r mb xb <<<"$(stats base)"
	read -r mt xt <<<"$(stats tree)"
	printf '%-32s %12.0f %12.0f %7.2f %12.0f %12.0f %7.2f\n' "$b" "$mb" "$mt" "$(awk -v a="$mt" -v b="$mb" 'BEGIN { print a / b }')" \
		"$xb" "$xt" "$(awk -v a="$xt" -v b="$xb" 'BEGIN { print a / b }')"
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"

# explore-lib.sh: helpers of the explore-*.sh scripts (sourced, not run).

# explore_bin BIN NAME: exit with a message unless BIN is executable.
explore_bin() {
	if [ ! -x "$1" ]; then
		echo "$2: $1 is not executable (make build)" >&2
		exit 2
	fi
}

# explore_row LOG: the result line of a blossom explore log as Markdown
# cells "runs | schedules | states | time | fully covered".
explore_row() {
	res=$(grep '^result' "$1" || echo "result  error: $(tail -n 1 "$1")")
	runs=$(echo "$res" | sed -n 's/^result *[a-z]*: \([0-9]*\) runs in \([^,]*\),.*/\1/p')
	took=$(echo "$res" | sed -n 's/^result *[a-z]*: [0-9]* runs in \([^,]*\),.*/\1/p')
	sched=$(echo "$res" | sed -n 's/.* \([0-9]*\) schedules, \([0-9]*\) states.*/\1/p')
	states=$(echo "$res" | sed -n 's/.* \([0-9]*\) schedules, \([0-9]*\) states.*/\2/p')
	cov=no
	if echo "$res" | grep -q "fully covered: true"; then cov=yes; fi
	if echo "$res" | grep -q FAILED; then cov="VIOLATION (see $1)"; fi
	echo "$runs | $sched | $states | $took | $cov"
}

# explore_skip PROTOCOL: true if ONLY names another protocol.
explore_skip() { [ -n "$ONLY" ] && [ "$ONLY" != "$1" ]; }

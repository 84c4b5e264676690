package main

import (
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSimMulticastRunsCheckAndReportLeaderLatency(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"wbcast", "skeen"} {
		out, err := runSimArgs("--protocol", p, "--groups", "3", "--dest", "mixed", "--f", "1",
			"--clients", "4", "--ops", "200", "--faults", "swarm", "--seed", "2", "--check", "--json")
		require.NoError(t, err, out)
		var rep map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &rep))
		require.EqualValues(t, 9, rep["nodes"])
		require.EqualValues(t, 3, rep["groups"])
		require.Equal(t, true, rep["multicast_ok"])
		require.Positive(t, rep["leader_delivery_latency_ms"])
	}
}

func TestSimMulticastBadFlagsExitTwo(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"--groups", "3", "--dest", "4"},
		{"--groups", "3", "--dest", "some"},
		{"--dest", "2"},
		{"--groups", "3", "--nodes", "8"},
	} {
		_, err := runSimArgs(append([]string{"--protocol", "wbcast", "--ops", "10"}, args...)...)
		var ee *exitError
		require.True(t, errors.As(err, &ee), "%v: %v", args, err)
		require.Equal(t, 2, ee.code, "%v", args)
	}
}

package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
)

// localOnly is a broken "protocol" for the tests: each replica executes the
// commands submitted to it and replicates nothing, so gets at different
// replicas disagree and the linearizability check must fail.
type localOnly struct{ env protocols.Env }

func (p localOnly) Submit(c protocols.Command)             { p.env.Execute(c) }
func (localOnly) Step(protocols.NodeID, protocols.Message) {}
func (localOnly) Tick()                                    {}

type noCodec struct{}

func (noCodec) Marshal([]byte, protocols.Message) ([]byte, error) {
	return nil, errors.New("no messages")
}
func (noCodec) Unmarshal([]byte) (protocols.Message, error) { return nil, errors.New("no messages") }

func init() {
	protocols.Register("test-local-only", func(cfg protocols.Config) (protocols.Protocol, error) {
		return localOnly{env: cfg.Env}, nil
	}, noCodec{})
}

func runSimArgs(args ...string) (string, error) {
	cmd := newSimCmd()
	var out bytes.Buffer
	cmd.SetOut(&out)
	cmd.SetErr(&out)
	cmd.SetArgs(args)
	err := cmd.Execute()
	return out.String(), err
}

func TestSimBadFlagsExitTwo(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--protocol", "nope"}, "unknown protocol"},
		{[]string{"--nodes", "0"}, "--nodes 0"},
		{[]string{"--f", "3"}, "--f 3"},
		{[]string{"--f", "0"}, "--f 0"},
		{[]string{"--nodes", "3", "--f", "2"}, "need 1 <= f <= 1"},
		{[]string{"--latency", "warp:9"}, "unknown model"},
		{[]string{"--latency", "uniform:5-1"}, "below minimum"},
		{[]string{"--faults", "meteor"}, "unknown fault"},
		{[]string{"--faults", "loss=2"}, "outside [0, 1]"},
		{[]string{"--latency", "planet:gcp", "--sites", "mars-north1"}, "unknown gcp region"},
		{[]string{"--conflict", "101"}, "--conflict 101"},
		{[]string{"--conflict", "-1"}, "--conflict -1"},
		{[]string{"--reads", "150"}, "--reads 150"},
		{[]string{"--clients", "0"}, "--clients 0"},
	} {
		_, err := runSimArgs(tc.args...)
		require.Error(t, err, "%v", tc.args)
		var ee *exitError
		require.True(t, errors.As(err, &ee), "%v: %v", tc.args, err)
		require.Equal(t, 2, ee.code, "%v: %v", tc.args, err)
		require.Contains(t, err.Error(), tc.want, "%v", tc.args)
	}
}

func TestSimCheckJSON(t *testing.T) {
	t.Parallel()
	out, err := runSimArgs("--ops", "300", "--clients", "6", "--faults", "swarm", "--seed", "3", "--check", "--check-determinism", "--json")
	require.NoError(t, err, out)
	var rep map[string]any
	require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
	for _, k := range []string{"protocol", "seed", "digest", "ops", "linearizable", "mean_latency_ms", "p50_latency_ms",
		"p99_latency_ms", "throughput_ops_s", "fast_paths", "slow_paths", "messages_per_command", "per_site"} {
		require.Contains(t, rep, k)
	}
	require.Equal(t, true, rep["linearizable"])
	require.Equal(t, true, rep["deterministic"])
	require.Len(t, rep["per_site"], 5)
}

func TestSimTextOutputNamesSeedAndDigest(t *testing.T) {
	t.Parallel()
	out, err := runSimArgs("--ops", "200", "--clients", "4", "--seed", "11", "--latency", "planet:aws", "--nodes", "3")
	require.NoError(t, err)
	require.Contains(t, out, "seed        11")
	require.Contains(t, out, "digest")
	require.Contains(t, out, "ap-southeast-1")
}

func TestSimCheckFailureExitsOneAndNamesSeed(t *testing.T) {
	t.Parallel()
	report := filepath.Join(t.TempDir(), "violation.html")
	out, err := runSimArgs("--protocol", "test-local-only", "--ops", "200", "--clients", "4", "--conflict", "100",
		"--keys", "1", "--seed", "77", "--check", "--report", report)
	require.Error(t, err)
	var ee *exitError
	require.True(t, errors.As(err, &ee))
	require.Equal(t, 1, ee.code)
	require.Contains(t, err.Error(), "seed 77")
	require.Contains(t, err.Error(), "linearizability")
	require.Contains(t, out, "FAILED")
	st, statErr := os.Stat(report)
	require.NoError(t, statErr)
	require.Positive(t, st.Size())
}

// TestSimCheckerChoice: a run whose puts write unique values is checked by
// the polynomial unique-values checker, and by Porcupine with --porcupine;
// both catch the broken protocol, and the default still writes Porcupine's
// drawing of the failing key.
func TestSimCheckerChoice(t *testing.T) {
	t.Parallel()
	out, err := runSimArgs("--ops", "200", "--clients", "4", "--seed", "5", "--check")
	require.NoError(t, err, out)
	require.Contains(t, out, "linearizable ok (")
	require.Contains(t, out, ", unique-values)")
	out, err = runSimArgs("--ops", "200", "--clients", "4", "--seed", "5", "--check", "--porcupine")
	require.NoError(t, err, out)
	require.Contains(t, out, ", porcupine)")

	for _, porcupine := range []bool{false, true} {
		args := []string{"--protocol", "test-local-only", "--ops", "200", "--clients", "4", "--conflict", "100",
			"--keys", "1", "--seed", "78", "--check"}
		if porcupine {
			args = append(args, "--porcupine")
		}
		out, err := runSimArgs(args...)
		require.Error(t, err, "porcupine %v", porcupine)
		require.Contains(t, err.Error(), "linearizability check failed (illegal)")
		report := filepath.Join(os.TempDir(), "blossom-sim-test-local-only-seed-78.html")
		t.Cleanup(func() { os.Remove(report) })
		require.Contains(t, out, "report written to "+report)
		st, statErr := os.Stat(report)
		require.NoError(t, statErr)
		require.Positive(t, st.Size())
	}
}

func init() {
	protocols.RegisterContract("test-local-only-weak", protocols.Weak, func(cfg protocols.Config) (protocols.Protocol, error) {
		return localOnly{env: cfg.Env}, nil
	}, noCodec{})
}

// TestSimChecksTheDeclaredContract runs the weak and sequential strategies
// with --check: each is checked against its declared contract (not
// linearizability) and passes; a protocol that declares the weak contract
// but replicates nothing fails it (no convergence) with exit status 1.
func TestSimChecksTheDeclaredContract(t *testing.T) {
	t.Parallel()
	for _, p := range []string{"weak", "sequential"} {
		out, err := runSimArgs("--protocol", p, "--ops", "300", "--clients", "6", "--keys", "3", "--conflict", "70", "--faults", "swarm", "--seed", "3", "--check", "--json")
		require.NoError(t, err, out)
		var rep map[string]any
		require.NoError(t, json.Unmarshal([]byte(out), &rep), out)
		require.Equal(t, p, rep["contract"], out)
		require.NotContains(t, rep, "linearizable", "%s was checked for linearizability", p)
		require.NotContains(t, rep, "errors", out)
	}
	out, err := runSimArgs("--protocol", "test-local-only-weak", "--ops", "300", "--clients", "6", "--keys", "3", "--conflict", "70", "--seed", "3", "--check")
	var ee *exitError
	require.ErrorAs(t, err, &ee, out)
	require.Equal(t, 1, ee.code)
	require.Contains(t, err.Error()+out, "weak contract check failed")
}

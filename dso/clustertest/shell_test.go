package clustertest

import (
	"bytes"
	"context"
	"math/rand/v2"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"
)

// cliTimeout bounds one run of the blossom command.
const cliTimeout = 60 * time.Second

// TestShellFlow runs the command-line flow of persistent objects on three
// servers with --rf 3: increments of a persistent counter through
// `blossom counter --persistent -n tally increment` with BLOSSOM_ENDPOINTS,
// kill -9 of one server, more increments, its restart, more increments
// (and, to show that the restarted server is a working replica again, with
// another server killed), and the final tally, which must equal the number
// of acknowledged increments. Each increment must succeed (a majority is
// always up) and print the count so far.
func TestShellFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("real-process cluster test; skipped under -short")
	}
	for _, protocol := range []string{"atlas", "paxos"} {
		t.Run(protocol, func(t *testing.T) {
			rng := rand.New(rand.NewPCG(testSeed(t), 2))
			c := startCluster(t, clusterSpec{protocol: protocol, n: 3, rf: 3})
			env := append(os.Environ(), "BLOSSOM_ENDPOINTS="+strings.Join(c.addrs, ","))
			acked, unknown := 0, 0
			increments := func(phase string, n int) {
				t.Helper()
				for range n {
					out, err := runCLI(t, c.bin, env, "counter", "--persistent", "-n", "tally", "increment")
					if err != nil {
						unknown++
						t.Errorf("%s: blossom counter --persistent -n tally increment: %v\n%s", phase, err, out)
						continue
					}
					v, perr := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
					if perr != nil {
						t.Errorf("%s: increment printed %q, not a number", phase, out)
					} else if unknown == 0 && v != int64(acked+1) {
						t.Errorf("%s: increment printed %d after %d acknowledged increments, want %d", phase, v, acked, acked+1)
					}
					acked++
				}
			}
			increments("all servers up", 5)
			victim := rng.IntN(3)
			c.kill9(victim)
			t.Logf("kill -9 server %d (%s)", victim+1, c.addrs[victim])
			increments("server "+strconv.Itoa(victim+1)+" killed", 5)
			c.restart(victim)
			t.Logf("restarted server %d", victim+1)
			increments("server "+strconv.Itoa(victim+1)+" restarted", 3)
			other := (victim + 1 + rng.IntN(2)) % 3
			c.kill9(other)
			t.Logf("kill -9 server %d (%s)", other+1, c.addrs[other])
			increments("server "+strconv.Itoa(other+1)+" killed", 3)
			c.restart(other)
			t.Logf("restarted server %d", other+1)

			// The final tally, asked of each server in turn.
			for i, a := range c.addrs {
				out, err := runCLI(t, c.bin, append(os.Environ(), "BLOSSOM_ENDPOINTS="+a), "counter", "--persistent", "-n", "tally", "tally")
				if err != nil {
					t.Fatalf("tally through server %d: %v\n%s", i+1, err, out)
				}
				v, err := strconv.ParseInt(strings.TrimSpace(out), 10, 64)
				switch {
				case err != nil:
					t.Errorf("tally through server %d printed %q, not a number", i+1, out)
				case unknown == 0 && v != int64(acked):
					t.Errorf("tally through server %d: %d, want the %d acknowledged increments", i+1, v, acked)
				case v < int64(acked) || v > int64(acked+unknown):
					t.Errorf("tally through server %d: %d, want %d acknowledged increments plus at most %d unknown", i+1, v, acked, unknown)
				}
			}
			t.Logf("%s: acknowledged increments %d, unknown %d, final tally checked through every server", protocol, acked, unknown)
			for _, e := range c.unexpectedExits() {
				t.Errorf("unexpected exit: %s", e)
			}
		})
	}
}

// runCLI runs the blossom binary with args and env, and returns its
// standard output (and its standard error, if it fails).
func runCLI(t *testing.T, bin string, env []string, args ...string) (string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cliTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = env
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return stdout.String() + stderr.String(), err
	}
	return stdout.String(), nil
}

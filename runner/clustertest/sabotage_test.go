//go:build failpoint

package clustertest

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blossom-dso/blossom/lincheck"
)

// ackBeforeWrite enables runner's sabotage failpoint in a replica process.
const ackBeforeWrite = "GO_FAILPOINTS=" + runnerPkg + "/ackBeforeWrite=return(true)"

// failpointBinary returns a blossom binary whose runner package has its
// failpoint markers rewritten: $BLOSSOM_FAILPOINT_BIN, or one built with
// the checkout's bin/failpoint-toolexec (`make tools`).
//
// The build rewrites the runner package only, through a wrapper toolexec
// that hands failpoint-toolexec the compile of runner and runs every other
// tool as is: failpoint-toolexec replaces a file without declarations (a
// doc.go) that follows a rewritten file of the same package with an empty
// one (its Rewriter keeps the previous file's "rewritten" flag), which
// breaks the build of such a package. Since the compiler's cache keys do
// not tell rewritten from plain compiles, the build keeps a cache of its
// own, .cache/failpoint-clustertest (a rewrite-everything cache such as
// the Makefile's .cache/failpoint must never see a plain compile), and a
// TMPDIR of this test run's own (failpoint-toolexec writes each rewritten
// package into one folder under TMPDIR, which another failpoint build of
// the checkout at the same time would clobber).
func failpointBinary(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("BLOSSOM_FAILPOINT_BIN"); p != "" {
		return p
	}
	return buildOnce(t, "failpoint", func(root, out string) *exec.Cmd {
		fptool := filepath.Join(root, "bin", "failpoint-toolexec")
		if _, err := os.Stat(fptool); err != nil {
			t.Fatalf("%s is missing (make tools installs it): %v", fptool, err)
		}
		tmp := filepath.Join(binDir, "fptmp")
		if err := os.MkdirAll(tmp, 0o755); err != nil {
			t.Fatal(err)
		}
		wrapper := filepath.Join(binDir, "toolexec-runner-only.sh")
		script := fmt.Sprintf(`#!/bin/sh
# Rewrite the failpoints of %[1]s only.
prev=
for a in "$@"; do
	if [ "$prev" = "-p" ] && [ "$a" = "%[1]s" ]; then exec %[2]q "$@"; fi
	prev=$a
done
exec "$@"
`, runnerPkg, fptool)
		if err := os.WriteFile(wrapper, []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("go", "build", "-p", "1", "-toolexec="+wrapper, "-o", out, "./cmd/blossom")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "GOCACHE="+filepath.Join(root, ".cache", "failpoint-clustertest"), "TMPDIR="+tmp)
		return cmd
	})
}

// runnerPkg is the package whose ackBeforeWrite failpoint the sabotage
// enables.
const runnerPkg = "github.com/blossom-dso/blossom/runner"

// TestSabotageAckBeforeWrite runs TestClusterKillAllAtOnce's paxos run on
// replicas whose ackBeforeWrite failpoint counts records as durable at
// once and writes them 200ms later: killing every replica right after a
// burst of acknowledged puts must then lose some of them, and the checks
// must say so (writes lost > 0, or a history that is not linearizable).
func TestSabotageAckBeforeWrite(t *testing.T) {
	if testing.Short() {
		t.Skip("real-process cluster test; skipped under -short")
	}
	// Checkpoints are rare here: a checkpoint taken after the sabotaged
	// "sync" would save lost records' effects through the snapshot.
	sp := spec{protocol: "paxos", n: 3, f: 1, bin: failpointBinary(t), compactEvery: 100000, env: []string{ackBeforeWrite}}
	s := killAllScenario(sp, 7)
	o := s.run(t)
	t.Log(o.summary(s))
	for _, w := range o.check.lostWhy {
		t.Log("lost: ", w)
	}
	if len(o.exits) > 0 {
		t.Fatalf("replicas exited on their own: %s", strings.Join(o.exits, "; "))
	}
	caught := o.check.lost > 0 || o.check.verdict == lincheck.Illegal
	if !caught {
		t.Fatalf("the sabotage went unnoticed: %s", fmt.Sprint(o.summary(s)))
	}
	t.Logf("sabotage caught: writes lost %d, lincheck %s", o.check.lost, o.check.verdict)
}

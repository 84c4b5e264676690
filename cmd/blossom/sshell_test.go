package main

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/blossom-dso/blossom/dso/server"
	"github.com/blossom-dso/blossom/executor"
)

// TestMain lets the test binary serve as the executables the serverless
// shell starts: object commands by name, workers, detached runners.
func TestMain(m *testing.M) {
	dispatch()
	os.Exit(m.Run())
}

// notifyWriter is a syncBuffer that closes seen when its content first
// contains want.
type notifyWriter struct {
	syncBuffer
	want string
	once sync.Once
	seen chan struct{}
}

func (w *notifyWriter) Write(p []byte) (int, error) {
	n, err := w.syncBuffer.Write(p)
	if strings.Contains(w.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return n, err
}

// runSshell runs `blossom sshell ARGS` against endpoints.
func runSshell(ctx context.Context, endpoints string, stdout, stderr *syncBuffer, args ...string) error {
	cmd := newSshellCmd()
	cmd.SetOut(stdout)
	cmd.SetErr(stderr)
	cmd.SetArgs(append([]string{"--endpoints", endpoints}, args...))
	return cmd.ExecuteContext(ctx)
}

func exitCode(err error) int {
	var ee *exitError
	if errors.As(err, &ee) {
		return ee.code
	}
	if err != nil {
		return -1
	}
	return 0
}

// TestSshellStreamsOutputWhileItRuns: the first line arrives while the
// command waits on a latch that only the test counts down, so it was
// streamed, not returned at the end; then the rest, stderr and the exit
// status follow.
func TestSshellStreamsOutputWhileItRuns(t *testing.T) {
	eps := startClusterCmd(t, 1)
	for _, backend := range []string{"local", "process"} {
		t.Run(backend, func(t *testing.T) {
			latch := "stream-" + backend
			out := &notifyWriter{want: "first\n", seen: make(chan struct{})}
			var errw syncBuffer
			done := make(chan error, 1)
			go func() {
				done <- runSshell(context.Background(), eps, &out.syncBuffer, &errw, "--executor", backend,
					"echo first; latch -n "+latch+" --count 1 await; echo second; echo oops >&2; exit 4")
			}()
			// out.syncBuffer is written, not out: watch it.
			deadline := time.After(2 * time.Minute) // a bound on liveness, not a speed check
			for !strings.Contains(out.String(), "first\n") {
				select {
				case err := <-done:
					t.Fatalf("sshell ended before the latch was counted down: %v; stdout %q, stderr %q", err, out.String(), errw.String())
				case <-deadline:
					t.Fatalf("the first line did not arrive while the command ran; stdout %q, stderr %q", out.String(), errw.String())
				case <-time.After(10 * time.Millisecond):
				}
			}
			if s := out.String(); s != "first\n" {
				t.Fatalf("stdout before the latch: %q", s)
			}
			if o, err := runObjectCmd(t, eps, "latch", "-n", latch, "--count", "1", "countDown"); err != nil {
				t.Fatalf("countDown: %q, %v", o, err)
			}
			err := <-done
			if exitCode(err) != 4 {
				t.Fatalf("exit status: %v (stderr %q)", err, errw.String())
			}
			if s := out.String(); s != "first\nsecond\n" {
				t.Fatalf("stdout: %q", s)
			}
			if !strings.Contains(errw.String(), "oops\n") {
				t.Fatalf("stderr: %q", errw.String())
			}
		})
	}
}

// TestSshellPipeBetweenFunctions: each stage of a pipeline is its own
// function (it sees its own stage number), the data crosses a DSO pipe,
// many chunks of it, an early exit downstream ends upstream, and the
// pipes are deleted afterwards.
func TestSshellPipeBetweenFunctions(t *testing.T) {
	eps := startClusterCmd(t, 2)
	srv := httptest.NewServer(executor.HTTPHandler("http"))
	defer srv.Close()
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--executor", "process", `echo from-$BLOSSOM_SSHELL_STAGE | { cat; echo to-$BLOSSOM_SSHELL_STAGE; }`}, "from-0\nto-1\n"},
		{[]string{"--executor", "http", "--endpoint", srv.URL + "/", `echo from-$BLOSSOM_SSHELL_STAGE | { cat; echo to-$BLOSSOM_SSHELL_STAGE; }`}, "from-0\nto-1\n"},
		{[]string{"--no-split", `echo from-$BLOSSOM_SSHELL_STAGE | { cat; echo to-$BLOSSOM_SSHELL_STAGE; }`}, "from-0\nto-0\n"},
		{[]string{"seq 1 300000 | tr 0 x | wc -l"}, "300000\n"},
		{[]string{"seq 1 100000000 | head -n 2"}, "1\n2\n"},
		{[]string{"map -n words mergeAll a=1 b=2 | cat; map -n words entries"}, "2\n{\"a\":1,\"b\":2}\n"},
	} {
		var out, errw syncBuffer
		err := runSshell(context.Background(), eps, &out, &errw, tc.args...)
		if err != nil || out.String() != tc.want {
			t.Fatalf("sshell %q: %q, %v (stderr %q); want %q", tc.args, out.String(), err, errw.String(), tc.want)
		}
	}
	c, err := client.Dial(context.Background(), strings.Split(eps, ",")...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	objs, err := c.ListAll(context.Background(), "Pipe")
	if err != nil || len(objs) != 0 {
		t.Fatalf("pipes left behind: %v, %v", objs, err)
	}
}

// TestSshellBarrierCrossedByAsyncFunctions is deliverable Figure 10: N-1
// detached sshell --async runs and one synchronous run meet at a barrier
// of N parties; the synchronous run returns only when all have arrived.
func TestSshellBarrierCrossedByAsyncFunctions(t *testing.T) {
	eps := startClusterCmd(t, 2)
	const jobs = 4
	id := regexp.MustCompile(`^[0-9a-f]{16}\n$`)
	for range jobs - 1 {
		var out, errw syncBuffer
		err := runSshell(context.Background(), eps, &out, &errw, "--async", "--executor", "process",
			"barrier", "-n", "gathering", "await", "-p", "4", ";", "counter", "-n", "crossed", "increment")
		if err != nil || !id.MatchString(out.String()) {
			t.Fatalf("sshell --async: %q, %v (stderr %q)", out.String(), err, errw.String())
		}
	}
	var out, errw syncBuffer
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // liveness bound
	defer cancel()
	if err := runSshell(ctx, eps, &out, &errw, "barrier", "-n", "gathering", "await", "-p", "4"); err != nil {
		t.Fatalf("sshell barrier: %v (stderr %q)", err, errw.String())
	}
	if out.String() != "0\n" {
		t.Fatalf("the barrier's generation: %q", out.String())
	}
	// The detached runs go on after the barrier: wait for their counts.
	for {
		o, err := runObjectCmd(t, eps, "counter", "-n", "crossed", "tally")
		if err == nil && o == "3\n" {
			break
		}
		if ctx.Err() != nil {
			t.Fatalf("the async runs did not all cross: %q, %v", o, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestSshellFile: -f copies a file into the working directory.
func TestSshellFile(t *testing.T) {
	eps := startClusterCmd(t, 1)
	p := filepath.Join(t.TempDir(), "input.txt")
	if err := os.WriteFile(p, []byte("one two three\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var out, errw syncBuffer
	err := runSshell(context.Background(), eps, &out, &errw, "-f", p, "wc -w < input.txt")
	if err != nil || strings.TrimSpace(out.String()) != "3" {
		t.Fatalf("sshell -f: %q, %v (stderr %q)", out.String(), err, errw.String())
	}
}

// TestSshellFunctionsPresentTheCredentials: against a cluster that
// requires mutual TLS and a token, the functions (and the object commands
// they run) present the credentials given to sshell by flags; without
// them the run fails.
func TestSshellFunctionsPresentTheCredentials(t *testing.T) {
	dir := t.TempDir()
	if err := dsotest.WriteCerts(dir, []string{"127.0.0.1", "localhost"}, time.Hour); err != nil {
		t.Fatal(err)
	}
	stls, err := dsotest.ServerTLS(filepath.Join(dir, dsotest.ServerCertFile), filepath.Join(dir, dsotest.ServerKeyFile), filepath.Join(dir, dsotest.CACertFile))
	if err != nil {
		t.Fatal(err)
	}
	tokens, err := server.ParseTokens(strings.NewReader("sh-token write\n"))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := dsotest.StartCluster(1, dsotest.Options{TLS: stls, Tokens: tokens})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	eps := strings.Join(cl.Endpoints, ",")
	// sshell exports its flags into the environment; restore it afterwards.
	for _, env := range []string{client.EnvToken, client.EnvTLSCA, client.EnvTLSCert, client.EnvTLSKey} {
		t.Setenv(env, "")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out, errw syncBuffer
	if err := runSshell(ctx, eps, &out, &errw, "--timeout", "10s", "echo never"); err == nil {
		t.Fatalf("sshell without credentials ran on a secured cluster: %q", out.String())
	}
	creds := []string{"--token", "sh-token", "--tls-ca", filepath.Join(dir, dsotest.CACertFile),
		"--tls-cert", filepath.Join(dir, dsotest.ClientCertFile), "--tls-key", filepath.Join(dir, dsotest.ClientKeyFile)}
	for i, backend := range []string{"local", "process"} {
		var out, errw syncBuffer
		args := append(append([]string{"--executor", backend}, creds...), "counter -n secured increment -i 5 >/dev/null; counter -n secured tally")
		if err := runSshell(ctx, eps, &out, &errw, args...); err != nil || out.String() != fmt.Sprintf("%d\n", 5*(i+1)) {
			t.Fatalf("%s: %q, %v (stderr %q)", backend, out.String(), err, errw.String())
		}
	}
}

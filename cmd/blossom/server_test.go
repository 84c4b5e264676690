package main

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParsePeersAcceptsIdsOrPlainEndpoints(t *testing.T) {
	t.Parallel()
	eps, ids, err := parsePeers("1=h1:7400, 2=h2:7400,3=h3:7400")
	if err != nil || len(eps) != 3 || ids["2"] != "h2:7400" {
		t.Fatalf("got %v %v %v", eps, ids, err)
	}
	eps, ids, err = parsePeers("a:1,b:2")
	if err != nil || len(eps) != 2 || ids["2"] != "b:2" {
		t.Fatalf("got %v %v %v", eps, ids, err)
	}
	for _, bad := range []string{"nohostport", "1=a:1,1=b:2"} {
		if _, _, err := parsePeers(bad); err == nil {
			t.Fatalf("%q accepted", bad)
		}
	}
}

func TestServerCommandServesAndStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cmd := newServerCmd()
	out := &syncBuffer{}
	cmd.SetOut(out)
	cmd.SetErr(out)
	cmd.SetArgs([]string{"--listen", "127.0.0.1:0", "--log-level", "error"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	var addr string
	for deadline := time.Now().Add(30 * time.Second); addr == "" && time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if a, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "blossom server listening on "); ok {
			addr = a
		}
	}
	if addr == "" {
		t.Fatalf("no address in %q", out.String())
	}
	got, err := runObjectCmd(t, addr, "counter", "-n", "c", "increment", "-i", "5")
	if err != nil || got != "5\n" {
		t.Fatalf("increment: %q %v", got, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("server did not stop")
	}
	// Peers without an identity are refused.
	cmd = newServerCmd()
	cmd.SetOut(out)
	cmd.SetErr(out)
	cmd.SetArgs([]string{"--listen", "127.0.0.1:0", "--peers", "a:1,b:2"})
	if err := cmd.Execute(); err == nil {
		t.Fatal("--peers without --id accepted")
	}
}

// startServerCmd runs `blossom server` with args on a free port until ctx
// is canceled; it returns the address and the command's result channel.
func startServerCmd(t *testing.T, ctx context.Context, args ...string) (string, chan error) {
	t.Helper()
	cmd := newServerCmd()
	out := &syncBuffer{}
	cmd.SetOut(out)
	cmd.SetErr(out)
	cmd.SetArgs(append([]string{"--listen", "127.0.0.1:0", "--log-level", "error"}, args...))
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if a, ok := strings.CutPrefix(strings.TrimSpace(out.String()), "blossom server listening on "); ok {
			return a, done
		}
		select {
		case err := <-done:
			t.Fatalf("server exited: %v: %s", err, out.String())
		default:
		}
	}
	t.Fatalf("no address in %q", out.String())
	return "", nil
}

func TestServerCommandPmemStorageKeepsObjectsAcrossRestarts(t *testing.T) {
	heap := filepath.Join(t.TempDir(), "node.heap")
	for round, want := range []string{"3\n", "6\n"} {
		ctx, cancel := context.WithCancel(context.Background())
		addr, done := startServerCmd(t, ctx, "--storage", "pmem:"+heap, "--storage-size", "8388608")
		got, err := runObjectCmd(t, addr, "counter", "-n", "c", "increment", "-i", "3")
		if err != nil || got != want {
			t.Fatalf("round %d: increment: %q %v", round, got, err)
		}
		if _, err := runObjectCmd(t, addr, "barrier", "-n", "b", "await", "-p", "2"); err == nil ||
			!strings.Contains(err.Error(), "cannot be kept in pmem storage") {
			t.Fatalf("barrier with pmem storage: %v", err)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	cmd := newServerCmd()
	cmd.SetOut(&syncBuffer{})
	cmd.SetErr(&syncBuffer{})
	cmd.SetArgs([]string{"--listen", "127.0.0.1:0", "--storage", "disk:/x"})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "want memory or pmem:PATH") {
		t.Fatalf("bad --storage: %v", err)
	}
}

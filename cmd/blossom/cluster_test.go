package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuffer is a bytes.Buffer safe for a writer and a concurrent reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// startClusterCmd runs `blossom cluster` in this process on free ports and
// returns its endpoints; the cluster stops when the test ends.
func startClusterCmd(t *testing.T, nodes int, extra ...string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := newClusterCmd()
	out := &syncBuffer{}
	cmd.SetOut(out)
	cmd.SetErr(out)
	cmd.SetArgs(append([]string{"--nodes", fmt.Sprint(nodes), "--base-port", "0"}, extra...))
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("cluster: %v", err)
			}
		case <-time.After(30 * time.Second):
			t.Error("cluster did not stop")
		}
	})
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		for _, line := range strings.Split(out.String(), "\n") {
			if eps, ok := strings.CutPrefix(line, "BLOSSOM_ENDPOINTS="); ok {
				return eps
			}
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("cluster printed no endpoints: %q", out.String())
	return ""
}

// runObjectCmd runs one object command and returns its output.
func runObjectCmd(t *testing.T, endpoints string, args ...string) (string, error) {
	t.Helper()
	var spec *dsoObjectSpec
	for i := range dsoObjectSpecs {
		if dsoObjectSpecs[i].use == args[0] {
			spec = &dsoObjectSpecs[i]
		}
	}
	if spec == nil {
		t.Fatalf("no object command %s", args[0])
	}
	cmd := newObjectCmd(*spec)
	out := &syncBuffer{}
	cmd.SetOut(out)
	cmd.SetErr(out)
	cmd.SetArgs(append(args[1:], "--endpoints", endpoints))
	err := cmd.ExecuteContext(context.Background())
	return out.String(), err
}

func TestClusterCommandServesObjectCommandsOverTheRing(t *testing.T) {
	eps := startClusterCmd(t, 3)
	if n := len(strings.Split(eps, ",")); n != 3 {
		t.Fatalf("want 3 endpoints, got %q", eps)
	}
	// Clients that know a single endpoint discover the ring.
	first := strings.Split(eps, ",")[0]
	for i := 0; i < 2; i++ {
		if _, err := runObjectCmd(t, first, "counter", "-n", "c", "increment", "-i", "5"); err != nil {
			t.Fatal(err)
		}
	}
	out, err := runObjectCmd(t, eps, "counter", "-n", "c", "tally")
	if err != nil || out != "10\n" {
		t.Fatalf("tally: %q %v", out, err)
	}
	// Ten background barrier commands cross together.
	var wg sync.WaitGroup
	errs := make(chan error, 10)
	for i := 0; i < 10; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := runObjectCmd(t, eps, "barrier", "-n", "b", "await", "-p", "10")
			errs <- err
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	// Objects of many names spread over the three nodes.
	owners := map[string]bool{}
	for i := 0; i < 30; i++ {
		if _, err := runObjectCmd(t, eps, "long", "-n", fmt.Sprint("x", i), "incrementAndGet"); err != nil {
			t.Fatal(err)
		}
	}
	cmd := newObjectsCmd()
	out2 := &syncBuffer{}
	cmd.SetOut(out2)
	cmd.SetArgs([]string{"ls", "AtomicLong", "--endpoints", eps})
	if err := cmd.Execute(); err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out2.String()), "\n")
	for _, l := range lines {
		f := strings.Split(l, "\t") // type, key, kind, replicas
		if len(f) != 4 || f[2] != "ephemeral" {
			t.Fatalf("line %q: want type, key, ephemeral, owner", l)
		}
		owners[f[3]] = true
	}
	if len(lines) != 30 || len(owners) != 3 {
		t.Fatalf("want 30 objects on 3 nodes, got %d on %d:\n%s", len(lines), len(owners), out2.String())
	}
}

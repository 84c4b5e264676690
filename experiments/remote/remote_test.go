package remote

import (
	"context"
	"flag"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/blossom-dso/blossom/experiments"
	"github.com/blossom-dso/blossom/protocols"
	_ "github.com/blossom-dso/blossom/protocols/paxos" // registers paxos, fpaxos
	"github.com/blossom-dso/blossom/runner"
)

// TestMain doubles as the replica binary the agents start: with
// REMOTE_TEST_REPLICA=1 the test binary runs `replica FLAGS` (the flags
// blossom replica takes) until interrupted.
func TestMain(m *testing.M) {
	if os.Getenv("REMOTE_TEST_REPLICA") == "1" {
		os.Exit(replicaMain(os.Args[2:]))
	}
	os.Exit(m.Run())
}

func replicaMain(args []string) int {
	fs := flag.NewFlagSet("replica", flag.ContinueOnError)
	id := fs.Uint("id", 1, "")
	peers := fs.String("peers", "", "")
	var cfg runner.Config
	fs.StringVar(&cfg.Protocol, "protocol", "paxos", "")
	fs.IntVar(&cfg.F, "f", 1, "")
	fs.StringVar(&cfg.ClientAddr, "client-addr", "", "")
	fs.StringVar(&cfg.DataDir, "data-dir", "", "")
	fs.String("log-level", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cfg.ID = protocols.NodeID(*id)
	cfg.Peers = map[protocols.NodeID]string{}
	for p := range strings.SplitSeq(*peers, ",") {
		k, v, _ := strings.Cut(p, "=")
		n, _ := strconv.Atoi(k)
		cfg.Peers[protocols.NodeID(n)] = v
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := runner.Start(cfg)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	<-ctx.Done()
	r.Close()
	return 0
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// Three agents on loopback, each starting a replica process, driven
// through one point of the planet experiment: the driver's metrics carry
// every site's mean and the operations of all of them.
func TestDriverRunsPlanetPointOnAgents(t *testing.T) {
	if testing.Short() {
		t.Skip("starts replica processes")
	}
	t.Setenv("REMOTE_TEST_REPLICA", "1")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	sites := []string{"site-a", "site-b", "site-c"}
	drv := &Driver{}
	for i, s := range sites {
		ag := &Agent{Site: s, Binary: exe, DataDir: filepath.Join(t.TempDir(), s), ClientPort: freePort(t)}
		srv := httptest.NewServer(ag)
		t.Cleanup(func() { srv.Close(); ag.Close() })
		drv.Nodes = append(drv.Nodes, Node{
			ID: uint32(i + 1), Site: s, Agent: strings.TrimPrefix(srv.URL, "http://"),
			Peer: fmt.Sprintf("127.0.0.1:%d", freePort(t)),
		})
	}
	planet, err := experiments.Lookup("planet")
	if err != nil {
		t.Fatal(err)
	}
	p := experiments.Point{{Name: "sites", Value: "3"}, {Name: "protocol", Value: "paxos"}, {Name: "f", Value: "1"}}
	if !drv.Fits(p) || drv.Fits(experiments.Point{{Name: "sites", Value: "5"}}) {
		t.Fatal("Fits: want 3 sites to fit on 3 nodes and 5 not")
	}
	ms, err := drv.Measure(planet, p, 0, experiments.Quick)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, m := range ms {
		got[m.Name] = m.Value
	}
	// 3 sites × 2 clients × 50 operations, 5 warm-up operations per client.
	if got["ops_measured"]+got["errors"] < 3*2*45 || got["ops_measured"] < 200 {
		t.Errorf("measured %v operations with %v errors, want about 270", got["ops_measured"], got["errors"])
	}
	for _, s := range sites {
		if v, ok := got["site_mean_ms@"+s]; !ok || !(v > 0) {
			t.Errorf("no mean for %s: %v", s, got)
		}
	}
	if !(got["mean_ms"] > 0 && got["p50_ms"] <= got["p99_ms"]) {
		t.Errorf("metrics %v", got)
	}
	for _, nd := range drv.Nodes {
		var st map[string]any
		if err := drv.call(context.Background(), nd, "/stop", struct{}{}, &st); err != nil || st["status"] != "stopped" {
			t.Errorf("stop %s: %v %v", nd.Site, st, err)
		}
	}
}

// The agent refuses bad requests with a clear error and starts nothing.
func TestAgentRefusesBadRequests(t *testing.T) {
	ag := &Agent{Site: "x", Binary: "/nonexistent", DataDir: t.TempDir(), ClientPort: freePort(t)}
	srv := httptest.NewServer(ag)
	defer srv.Close()
	drv := &Driver{Nodes: []Node{{ID: 1, Site: "x", Agent: strings.TrimPrefix(srv.URL, "http://")}}}
	for _, tc := range []struct {
		path string
		body any
		want string
	}{
		{"/start", StartRequest{ID: 1, Peers: map[uint32]string{1: "127.0.0.1:1"}, Protocol: "nope"}, "nope"},
		{"/start", StartRequest{ID: 2, Peers: map[uint32]string{1: "127.0.0.1:1"}, Protocol: "paxos"}, "not among the peers"},
		{"/start", map[string]any{"id": 1, "bogus": true}, "unknown field"},
		{"/load", LoadRequest{Clients: 0, Ops: 1, Keys: 1}, "bad load"},
	} {
		err := drv.call(context.Background(), drv.Nodes[0], tc.path, tc.body, nil)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s %v: err %v, want %q", tc.path, tc.body, err, tc.want)
		}
	}
	if ag.cmd != nil {
		t.Error("a replica was started")
	}
	if _, err := drv.Measure(&experiments.Experiment{Name: "multicast"}, nil, 0, experiments.Quick); err == nil {
		t.Error("Measure accepted an experiment without a remote measurement")
	}
}

// Any body given to /start decodes to a request or a clear error, and a
// decoded request's peers render as --peers or a clear error: no panic.
func FuzzStartRequest(f *testing.F) {
	f.Add([]byte(`{"id":1,"peers":{"1":"10.0.0.1:7500","2":"10.0.0.2:7500"},"protocol":"paxos","f":1}`))
	f.Add([]byte(`{"id":3,"peers":{"1":"a:1"},"protocol":"atlas"}`))
	f.Add([]byte(`{"id":1,"peers":{"1":"nocolon"}}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		var req StartRequest
		if err := decode(strings.NewReader(string(body)), &req); err != nil {
			if !strings.Contains(err.Error(), "bad request") {
				t.Fatalf("error %v does not say bad request", err)
			}
			return
		}
		flag, err := peersFlag(req)
		if err != nil {
			return
		}
		if len(strings.Split(flag, ",")) != len(req.Peers) || !strings.Contains(flag, fmt.Sprintf("%d=0.0.0.0:", req.ID)) {
			t.Fatalf("peers %v rendered as %q", req.Peers, flag)
		}
	})
}

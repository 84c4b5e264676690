// Package remote runs experiments on deployed machines (package
// deploy/aws): the agent that every machine runs (`blossom exp agent`, the
// systemd unit of the deployment's user data), which starts and stops a
// `blossom replica` process and drives closed-loop clients against it; and
// the driver on the operator's side, which measures an experiment's point
// by calling the agents of the first n nodes and turns their answers into
// the experiment's metrics, the same metric names as the simulated run.
package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/runner/kvclient"
)

// StartRequest asks an agent to start its replica.
type StartRequest struct {
	// ID is the replica's id; Peers every replica's peer address by id
	// (the agent listens on its own entry's port on every interface).
	ID    uint32            `json:"id"`
	Peers map[uint32]string `json:"peers"`
	// Protocol and F are the replica's --protocol and --f.
	Protocol string `json:"protocol"`
	F        int    `json:"f"`
}

// LoadRequest asks an agent to run closed-loop clients against its
// replica.
type LoadRequest struct {
	// Clients closed-loop clients make Ops operations each, a read or a put
	// of a 16-byte value at random (Reads percent reads) over Keys keys
	// private to the site (no conflicts).
	Clients int `json:"clients"`
	Ops     int `json:"ops"`
	Reads   int `json:"reads"`
	Keys    int `json:"keys"`
	// Warmup is the share of each client's first operations left out of
	// the statistics.
	Warmup float64 `json:"warmup"`
	// Seed draws the operations.
	Seed uint64 `json:"seed"`
}

// LoadResult is an agent's answer to a LoadRequest.
type LoadResult struct {
	Site string `json:"site"`
	// Count operations after warm-up; their mean, p50 and p99 latency in
	// ms; the latencies themselves, in the clients' order.
	Count       int       `json:"count"`
	MeanMs      float64   `json:"mean_ms"`
	P50Ms       float64   `json:"p50_ms"`
	P99Ms       float64   `json:"p99_ms"`
	LatenciesMs []float64 `json:"latencies_ms"`
	// Errors counts the operations that failed (outcome unknown or
	// refused), warm-up included.
	Errors int `json:"errors"`
	// WallSeconds is the load's duration; Throughput its completed
	// operations per second.
	WallSeconds float64 `json:"wall_seconds"`
	Throughput  float64 `json:"throughput_ops_s"`
}

// Agent serves the agent's HTTP API: POST /start (a StartRequest), POST
// /load (a LoadRequest, answered with a LoadResult when done), POST /stop,
// GET /status. One replica at a time; /start while one runs stops it first.
type Agent struct {
	// Site names the agent's site in its results (its region).
	Site string
	// Binary is the blossom binary to run replicas with.
	Binary string
	// DataDir holds the replica's data; it is emptied on every start.
	DataDir string
	// ClientPort is the replica's HTTP client API port on 127.0.0.1.
	ClientPort int
	// Logger receives the agent's logs (nil: discarded).
	Logger *slog.Logger

	mu  sync.Mutex
	cmd *exec.Cmd
}

func (a *Agent) log() *slog.Logger {
	if a.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return a.Logger
}

// ServeHTTP implements the agent's API.
func (a *Agent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reply := func(v any, err error) {
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(v)
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == "/status":
		a.mu.Lock()
		running := a.cmd != nil
		a.mu.Unlock()
		reply(map[string]any{"site": a.Site, "replica_running": running}, nil)
	case r.Method == http.MethodPost && r.URL.Path == "/start":
		var req StartRequest
		if err := decode(r.Body, &req); err != nil {
			reply(nil, err)
			return
		}
		reply(map[string]string{"status": "started"}, a.start(req))
	case r.Method == http.MethodPost && r.URL.Path == "/load":
		var req LoadRequest
		if err := decode(r.Body, &req); err != nil {
			reply(nil, err)
			return
		}
		res, err := a.load(r.Context(), req)
		reply(res, err)
	case r.Method == http.MethodPost && r.URL.Path == "/stop":
		reply(map[string]string{"status": "stopped"}, a.stop())
	default:
		http.NotFound(w, r)
	}
}

func decode(r io.Reader, v any) error {
	dec := json.NewDecoder(io.LimitReader(r, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("remote: bad request: %w", err)
	}
	return nil
}

// peersFlag renders req's peers as --peers, the agent's own entry on every
// interface (an instance cannot bind its public address).
func peersFlag(req StartRequest) (string, error) {
	self, ok := req.Peers[req.ID]
	if !ok {
		return "", fmt.Errorf("remote: replica %d is not among the peers", req.ID)
	}
	_, port, ok := strings.Cut(self, ":")
	if !ok {
		return "", fmt.Errorf("remote: peer address %q has no port", self)
	}
	ids := make([]uint32, 0, len(req.Peers))
	for id := range req.Peers {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	parts := make([]string, len(ids))
	for i, id := range ids {
		addr := req.Peers[id]
		if id == req.ID {
			addr = "0.0.0.0:" + port
		}
		parts[i] = fmt.Sprintf("%d=%s", id, addr)
	}
	return strings.Join(parts, ","), nil
}

func (a *Agent) start(req StartRequest) error {
	if _, err := protocols.Lookup(req.Protocol); err != nil {
		return err
	}
	peers, err := peersFlag(req)
	if err != nil {
		return err
	}
	if err := a.stop(); err != nil {
		return err
	}
	if err := os.RemoveAll(a.DataDir); err != nil {
		return err
	}
	if err := os.MkdirAll(a.DataDir, 0o755); err != nil {
		return err
	}
	cmd := exec.Command(a.Binary, "replica", "--id", strconv.FormatUint(uint64(req.ID), 10),
		"--peers", peers, "--protocol", req.Protocol, "--f", strconv.Itoa(req.F),
		"--client-addr", fmt.Sprintf("127.0.0.1:%d", a.ClientPort), "--data-dir", filepath.Join(a.DataDir, "replica"),
		"--log-level", "warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		return err
	}
	a.log().Info("replica started", "pid", cmd.Process.Pid, "args", cmd.Args)
	a.mu.Lock()
	a.cmd = cmd
	a.mu.Unlock()
	// Answer once the replica's client API is up (its peers may still be
	// starting: the load's clients retry, and its warm-up is excluded).
	status := fmt.Sprintf("http://127.0.0.1:%d/status", a.ClientPort)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if resp, err := http.Get(status); err == nil {
			resp.Body.Close()
			return nil
		}
	}
	return fmt.Errorf("remote: the replica's client API %s did not answer within 30 s", status)
}

func (a *Agent) stop() error {
	a.mu.Lock()
	cmd := a.cmd
	a.cmd = nil
	a.mu.Unlock()
	if cmd == nil {
		return nil
	}
	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
	a.log().Info("replica stopped", "pid", cmd.Process.Pid)
	return nil
}

// load runs req's clients against the local replica.
func (a *Agent) load(ctx context.Context, req LoadRequest) (*LoadResult, error) {
	if req.Clients < 1 || req.Ops < 1 || req.Keys < 1 || req.Reads < 0 || req.Reads > 100 || req.Warmup < 0 || req.Warmup >= 1 {
		return nil, fmt.Errorf("remote: bad load %+v", req)
	}
	endpoint := map[protocols.NodeID]string{1: fmt.Sprintf("127.0.0.1:%d", a.ClientPort)}
	lat := make([][]float64, req.Clients)
	errs := make([]int, req.Clients)
	start := time.Now()
	var wg sync.WaitGroup
	for c := range req.Clients {
		wg.Go(func() {
			cl := kvclient.New(endpoint, kvclient.Options{})
			rng := rand.New(rand.NewPCG(req.Seed, uint64(c)))
			for i := range req.Ops {
				key := fmt.Sprintf("%s-%d", a.Site, rng.IntN(req.Keys))
				t0 := time.Now()
				var err error
				if rng.IntN(100) < req.Reads {
					_, err = cl.Get(ctx, key)
				} else {
					err = cl.Put(ctx, key, []byte(fmt.Sprintf("%016d", i)))
				}
				if err != nil {
					errs[c]++
					if ctx.Err() != nil {
						return
					}
					continue
				}
				lat[c] = append(lat[c], float64(time.Since(t0).Microseconds())/1000)
			}
		})
	}
	wg.Wait()
	res := &LoadResult{Site: a.Site, WallSeconds: time.Since(start).Seconds()}
	for c := range req.Clients {
		res.Errors += errs[c]
		skip := int(math.Ceil(float64(len(lat[c])) * req.Warmup))
		res.LatenciesMs = append(res.LatenciesMs, lat[c][min(skip, len(lat[c])):]...)
	}
	if len(res.LatenciesMs) == 0 {
		return nil, fmt.Errorf("remote: no operation completed (%d errors)", res.Errors)
	}
	res.Count = len(res.LatenciesMs)
	res.MeanMs, res.P50Ms, res.P99Ms = summary(res.LatenciesMs)
	res.Throughput = float64(req.Clients*req.Ops-res.Errors) / res.WallSeconds
	return res, nil
}

// summary returns the mean, p50 and p99 of xs (not empty).
func summary(xs []float64) (mean, p50, p99 float64) {
	s := slices.Sorted(slices.Values(xs))
	sum := 0.0
	for _, x := range s {
		sum += x
	}
	q := func(p float64) float64 { return s[min(len(s)-1, int(p*float64(len(s))))] }
	return sum / float64(len(s)), q(0.5), q(0.99)
}

// Close stops the replica, if one runs.
func (a *Agent) Close() error { return a.stop() }

package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"sort"
	"strconv"
	"sync"
	"time"

	"github.com/blossom-dso/blossom/experiments"
)

// Node is a deployed machine as the driver sees it.
type Node struct {
	// ID is its replica id (1..); Site its region.
	ID   uint32
	Site string
	// Agent is its agent's host:port; Peer the host:port its replica
	// listens on for replica traffic.
	Agent, Peer string
}

// Driver measures experiments' points on deployed nodes through their
// agents.
type Driver struct {
	// Nodes are the deployed nodes in id order; a point with n sites runs on
	// the first n.
	Nodes []Node
	// HTTP is the client of the agents (nil: a client with a 10-minute
	// timeout).
	HTTP *http.Client
	// DryRun, if set, receives each agent call as "POST URL BODY" instead
	// of making it; Measure then returns no metrics.
	DryRun func(format string, args ...any)
}

// Supported lists the experiments the driver can measure remotely.
func Supported() []string { return []string{"planet"} }

// Measure measures point p of experiment e (repetition rep) on the nodes.
func (d *Driver) Measure(e *experiments.Experiment, p experiments.Point, rep int, size experiments.Size) ([]experiments.Metric, error) {
	switch e.Name {
	case "planet":
		return d.planet(p, rep, size)
	}
	return nil, fmt.Errorf("remote: experiment %s has no remote measurement (remote: %v)", e.Name, Supported())
}

// Fits reports whether p fits on the deployment (its sites ≤ the nodes).
func (d *Driver) Fits(p experiments.Point) bool {
	n, err := strconv.Atoi(p.Get("sites"))
	return err == nil && n <= len(d.Nodes)
}

// planet runs one point of the planet experiment: a replica of the point's
// protocol on each of the first n nodes, then on each node at once
// closed-loop clients with the simulated run's workload shape (50% reads,
// no conflicts, the first experiments.WarmupFraction of each client's
// operations excluded), then stops the replicas. The metrics have the
// simulated run's names (without mean_all_ms, which the agents do not
// report).
func (d *Driver) planet(p experiments.Point, rep int, size experiments.Size) ([]experiments.Metric, error) {
	n, err := strconv.Atoi(p.Get("sites"))
	if err != nil || n < 1 || n > len(d.Nodes) {
		return nil, fmt.Errorf("remote: %s needs %s nodes, %d deployed", p, p.Get("sites"), len(d.Nodes))
	}
	f, _ := strconv.Atoi(p.Get("f"))
	if p.Get("f") == "" {
		f = (n - 1) / 2
	}
	nodes := d.Nodes[:n]
	peers := map[uint32]string{}
	for _, nd := range nodes {
		peers[nd.ID] = nd.Peer
	}
	perClient, perSite := 50, 2
	if size == experiments.Full {
		perClient, perSite = 200, 8
	}
	ctx := context.Background()
	if err := d.each(ctx, nodes, func(nd Node) error {
		return d.call(ctx, nd, "/start", StartRequest{ID: nd.ID, Peers: peers, Protocol: p.Get("protocol"), F: f}, nil)
	}); err != nil {
		d.each(ctx, nodes, func(nd Node) error { return d.call(ctx, nd, "/stop", struct{}{}, nil) })
		return nil, err
	}
	results := make([]LoadResult, len(nodes))
	loadErr := d.each(ctx, nodes, func(nd Node) error {
		req := LoadRequest{Clients: perSite, Ops: perClient, Reads: 50, Keys: 10, Warmup: experiments.WarmupFraction, Seed: uint64(rep + 1)}
		return d.call(ctx, nd, "/load", req, &results[nd.ID-nodes[0].ID])
	})
	stopErr := d.each(ctx, nodes, func(nd Node) error { return d.call(ctx, nd, "/stop", struct{}{}, nil) })
	if loadErr != nil {
		return nil, loadErr
	}
	if stopErr != nil {
		return nil, stopErr
	}
	if d.DryRun != nil {
		return nil, nil
	}
	return planetMetrics(results), nil
}

// planetMetrics combines the sites' results: the mean, p50 and p99 over
// every site's measured operations, their count, the failed operations,
// and each site's mean.
func planetMetrics(results []LoadResult) []experiments.Metric {
	var all []float64
	errs := 0
	sites := map[string]float64{}
	for _, r := range results {
		all = append(all, r.LatenciesMs...)
		errs += r.Errors
		sites[r.Site] = r.MeanMs
	}
	mean, p50, p99 := summary(all)
	ms := []experiments.Metric{
		{Name: "mean_ms", Value: mean}, {Name: "p50_ms", Value: p50}, {Name: "p99_ms", Value: p99},
		{Name: "ops_measured", Value: float64(len(all))}, {Name: "errors", Value: float64(errs)},
	}
	names := make([]string, 0, len(sites))
	for s := range sites {
		names = append(names, s)
	}
	sort.Strings(names)
	for _, s := range names {
		ms = append(ms, experiments.Metric{Name: "site_mean_ms@" + s, Value: sites[s]})
	}
	return ms
}

// each calls fn for every node at once and returns the first error.
func (d *Driver) each(_ context.Context, nodes []Node, fn func(Node) error) error {
	errs := make([]error, len(nodes))
	if d.DryRun != nil { // sequential: a readable, stable listing
		for i, nd := range nodes {
			errs[i] = fn(nd)
		}
	} else {
		var wg sync.WaitGroup
		for i, nd := range nodes {
			wg.Go(func() { errs[i] = fn(nd) })
		}
		wg.Wait()
	}
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

// call POSTs req as JSON to a node's agent and decodes the answer into out
// (if not nil).
func (d *Driver) call(ctx context.Context, nd Node, path string, req, out any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	url := "http://" + nd.Agent + path
	if d.DryRun != nil {
		d.DryRun("%s agent POST %s %s\n", nd.Site, url, body)
		return nil
	}
	hc := d.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 10 * time.Minute}
	}
	hreq, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	hreq.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(hreq)
	if err != nil {
		return fmt.Errorf("remote: node %d (%s): %w", nd.ID, nd.Site, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("remote: node %d (%s): %w", nd.ID, nd.Site, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("remote: node %d (%s) %s: %s: %s", nd.ID, nd.Site, path, resp.Status, bytes.TrimSpace(data))
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("remote: node %d (%s) %s: %w", nd.ID, nd.Site, path, err)
		}
	}
	return nil
}

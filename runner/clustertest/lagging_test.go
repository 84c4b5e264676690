package clustertest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/runner/kvclient"
)

// TestClusterLaggingReplicaCatchesUp kills one follower, has the other
// replicas choose more commands than paxos retains for catch-up
// (paxos.DefaultRetain = 1024 slots), restarts the follower and reads at
// it. The restarted replica misses slots its peers compacted (under load,
// ~800 commands/s on loopback, about 1.3 s of downtime is enough): paxos
// and fpaxos bring it up to date by state transfer (see protocols/paxos/
// doc.go), epaxos and atlas by their own catch-up.
func TestClusterLaggingReplicaCatchesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("real-process cluster test; skipped under -short")
	}
	bin := blossomBinary(t)
	for _, protocol := range []string{"paxos", "fpaxos", "epaxos", "atlas"} {
		t.Run(protocol, func(t *testing.T) {
			c := startCluster(t, spec{protocol: protocol, n: 3, f: 1, bin: bin, compactEvery: 50})
			c.kill9(3)
			live := map[protocols.NodeID]string{1: c.clients[1], 2: c.clients[2]}
			var wg sync.WaitGroup
			errs := make(chan error, 8)
			for k := range 8 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					cl := kvclient.New(live, kvclient.Options{})
					for i := range 250 {
						ctx, cancel := context.WithTimeout(context.Background(), callTimeout)
						err := cl.Put(ctx, fmt.Sprintf("k%d", i%5), []byte(fmt.Sprintf("c%d-%d", k, i)))
						cancel()
						if err != nil {
							errs <- err
							return
						}
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatalf("put with replica 3 down: %v", err)
			}
			c.restart(3)
			only := kvclient.New(map[protocols.NodeID]string{3: c.clients[3]}, kvclient.Options{})
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			defer cancel()
			if _, err := only.Get(ctx, "k0"); err != nil {
				t.Fatalf("%s: a replica restarted 2000 commands behind cannot serve a read: %v", protocol, err)
			}
		})
	}
}

package clustertest

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/runner/kvclient"
)

// TestClusterLaggingReplicaCatchesUp kills one follower, has the other
// replicas choose more commands than paxos retains for catch-up
// (paxos.DefaultRetain = 1024 slots), restarts the follower and reads at
// it. Paxos and fpaxos have no state transfer: the restarted replica
// stays behind for good and the read times out (see the catch-up rule in
// protocols/paxos/doc.go). Under load (~800 commands/s on loopback) that
// takes about 1.3 s of downtime, so TestClusterKill9 paces its sessions.
// Their runs are skipped unless BLOSSOM_CLUSTERTEST_KNOWN_BUGS=1 until they
// can transfer a snapshot; epaxos and atlas catch up and always run.
func TestClusterLaggingReplicaCatchesUp(t *testing.T) {
	if testing.Short() {
		t.Skip("real-process cluster test; skipped under -short")
	}
	bin := blossomBinary(t)
	for _, protocol := range []string{"paxos", "fpaxos", "epaxos", "atlas"} {
		t.Run(protocol, func(t *testing.T) {
			if (protocol == "paxos" || protocol == "fpaxos") && os.Getenv("BLOSSOM_CLUSTERTEST_KNOWN_BUGS") == "" {
				t.Skip("known bug: a paxos/fpaxos replica more than Retain slots behind never catches up; set BLOSSOM_CLUSTERTEST_KNOWN_BUGS=1 to run")
			}
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

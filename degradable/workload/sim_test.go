package workload

import (
	"errors"
	"testing"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/degradable/check"
	_ "github.com/blossom-dso/blossom/protocols/paxos"
	_ "github.com/blossom-dso/blossom/protocols/sequential"
	_ "github.com/blossom-dso/blossom/protocols/weak"
)

// TestSim runs every simulator workload at every level, a short run each
// checked by its level's checker (Sim fails otherwise).
func TestSim(t *testing.T) {
	for _, typ := range SimTypes {
		for _, l := range degradable.Levels() {
			res, err := Sim(SimConfig{Type: typ, Level: l, Nodes: 3, Clients: 4, Ops: 120, Seed: 1, Users: 20, TimelineCap: 5})
			if typ == "queue" && l == degradable.Weak {
				if !errors.Is(err, ErrNotOffered) {
					t.Errorf("weak queue: %v, want ErrNotOffered", err)
				}
				continue
			}
			if err != nil {
				t.Errorf("%s at %v: %v", typ, l, err)
				continue
			}
			if res.Ops != 120 || res.OpsPerSec <= 0 || res.P99 < res.P50 {
				t.Errorf("%s at %v: %+v", typ, l, res)
			}
			t.Logf("%s at %v over %s: %.0f ops/s, p50 %v, p99 %v", typ, l, res.Protocol, res.OpsPerSec, res.P50, res.P99)
		}
	}
}

// TestSimSabotage plants replicas that drop one client's counter adds:
// the checker of every level must catch it, and Retwis's end-state check
// too.
func TestSimSabotage(t *testing.T) {
	for _, typ := range []string{"counter", "retwis"} {
		for _, l := range degradable.Levels() {
			_, err := Sim(SimConfig{Type: typ, Level: l, Nodes: 3, Clients: 4, Ops: 120, Seed: 1, Users: 20, TimelineCap: 5, bug: bugDropAdd})
			if err == nil {
				t.Errorf("%s at %v: a lost add passed the check", typ, l)
				continue
			}
			if typ == "counter" && !errors.Is(err, check.ErrViolation) {
				t.Errorf("%s at %v: %v, want a violation", typ, l, err)
			}
			t.Logf("%s at %v: caught: %v", typ, l, err)
		}
	}
}

package workload

import (
	"bytes"
	"errors"
	"testing"

	"github.com/blossom-dso/blossom/degradable"
	"github.com/blossom-dso/blossom/degradable/check"
	"github.com/blossom-dso/blossom/internal/fuzzseed"
	"github.com/blossom-dso/blossom/protocols"
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

// simSeeds are the seed inputs of FuzzSimMachine: a command of each kind
// and a snapshot.
func simSeeds() [][]byte {
	var out [][]byte
	for _, op := range []byte{opAdd, opValue, opSetAdd, opSetRem, opContains, opMembers, opPut, opDel, opGet, opEnq, opDeq, opPost, opLatest} {
		out = append(out, encode(op, 3, 2))
	}
	m := newSimMachine(0)
	m.Counters["c"], m.Sets["s"], m.Timelines["t"] = 4, map[int64]bool{7: true}, []int64{9, 8}
	snap, _ := m.Snapshot()
	return append(out, snap, []byte{opPost, 1})
}

// TestSimMachineSeeds keeps FuzzSimMachine's checked-in corpus in step.
func TestSimMachineSeeds(t *testing.T) { fuzzseed.Check(t, "FuzzSimMachine", simSeeds()) }

// FuzzSimMachine applies arbitrary bytes as a command to the simulator's
// state machine and restores them as a snapshot: neither panics, a
// command is answered once, a snapshot that restores is taken again to the
// same state, and a bad snapshot is an error that leaves the state alone.
func FuzzSimMachine(f *testing.F) {
	for _, s := range simSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m := newSimMachine(0)
		var a countAnswers
		m.Apply(protocols.Command{ID: protocols.CommandID{Client: 1, Seq: 1}, Keys: []string{"k"}, Payload: b}, &a)
		m.Apply(protocols.Command{ID: protocols.CommandID{Client: 1, Seq: 2}, Payload: b}, &a)
		if a != 2 {
			t.Fatalf("%d answers to 2 commands", a)
		}
		before, err := m.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		if err := m.Restore(b); err != nil {
			if after, _ := m.Snapshot(); !bytes.Equal(before, after) {
				t.Fatalf("a failed restore changed the state: %s -> %s", before, after)
			}
			return
		}
		s1, err := m.Snapshot()
		if err != nil {
			t.Fatal(err)
		}
		n := newSimMachine(0)
		if err := n.Restore(s1); err != nil {
			t.Fatalf("a snapshot does not restore: %v", err)
		}
		if s2, _ := n.Snapshot(); !bytes.Equal(s1, s2) {
			t.Fatalf("snapshot round trip: %s -> %s", s1, s2)
		}
	})
}

// countAnswers counts the answers it gets.
type countAnswers int

func (a *countAnswers) Answer(protocols.CommandID, []byte) { *a++ }

package simnet

import (
	"errors"
	"testing"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/replica"
)

// echoWorkload is a Workload whose machines answer every command with its
// payload; each client issues n commands, then finishes.
type echoWorkload struct {
	n     int
	left  map[int]int
	done  []int
	nodes []protocols.NodeID
}

func (w *echoWorkload) Machine(node protocols.NodeID) replica.StateMachine {
	w.nodes = append(w.nodes, node)
	return echoMachine{}
}
func (*echoWorkload) ReadOnly(c protocols.Command) bool { return c.Payload[0] == 'r' }
func (w *echoWorkload) Next(c int) (string, []byte, bool) {
	if w.left[c] == w.n {
		return "", nil, false
	}
	w.left[c]++
	return "k", []byte{"rw"[w.left[c]%2], byte(c), byte(w.left[c])}, true
}
func (w *echoWorkload) Done(c int, _ []byte, ok bool) {
	if ok {
		w.done[c]++
	}
}

type echoMachine struct{}

func (echoMachine) Apply(c protocols.Command, a replica.Answers) { a.Answer(c.ID, c.Payload) }
func (echoMachine) Snapshot() ([]byte, error)                    { return nil, nil }
func (echoMachine) Restore([]byte) error                         { return nil }

// TestWorkload checks a run with a Config.Workload: its clients finish when
// Next says so (before Ops), every answer reaches the history and Done,
// and a Workload with groups is a configuration error.
func TestWorkload(t *testing.T) {
	w := &echoWorkload{n: 5, left: map[int]int{}, done: make([]int, 3)}
	res, err := Run(Config{Protocol: "toy-seq", Nodes: 3, Clients: 3, Ops: 100, Seed: 1, Workload: w})
	if err != nil {
		t.Fatal(err)
	}
	if err := res.LivenessError(); err != nil {
		t.Fatal(err)
	}
	if len(res.History) != 15 || len(w.nodes) != 3 {
		t.Fatalf("%d operations, %d machines; want 15 and 3", len(res.History), len(w.nodes))
	}
	for _, op := range res.History {
		if len(op.Result) != 3 || int(op.Result[1]) != op.Client || op.Put != (op.Result[0] == 'w') {
			t.Fatalf("operation %+v: its answer is not its command", op)
		}
	}
	for c, n := range w.done {
		if n != 5 {
			t.Fatalf("client %d: %d answers given to Done, want 5", c, n)
		}
	}
	if _, err := Run(Config{Protocol: "toy-seq", Groups: 1, Ops: 1, Workload: w}); !errors.Is(err, ErrConfig) {
		t.Fatalf("a Workload with groups: %v, want ErrConfig", err)
	}
}

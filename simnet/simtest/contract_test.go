package simtest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/simnet"
)

// hist builds a Result from operations; each client's operations get the
// sequence numbers 1, 2, ... in order, as in simnet.
type hist struct {
	res simnet.Result
	seq map[int]uint64
	ids map[uint64]protocols.CommandID // put value -> command id
}

func newHist(nodes int) *hist {
	h := &hist{seq: map[int]uint64{}, ids: map[uint64]protocols.CommandID{}}
	for i := 1; i <= nodes; i++ {
		h.res.PerNode = append(h.res.PerNode, simnet.NodeStats{Node: protocols.NodeID(i), Up: true, State: map[string]uint64{}})
	}
	return h
}

// op appends a completed operation of client c at node n at time t: a put
// of v when put, else a get that returned v.
func (h *hist) op(c int, n protocols.NodeID, key string, put bool, v uint64, t int64) protocols.CommandID {
	h.seq[c]++
	id := protocols.CommandID{Client: uint64(c) + 1, Seq: h.seq[c]}
	o := simnet.Op{Client: c, Node: n, Key: key, Put: put, Call: t, Return: t + 1, Outcome: simnet.OutcomeOK}
	if put {
		o.Value = v
		h.ids[v] = id
	} else {
		o.Output = v
	}
	h.res.History = append(h.res.History, o)
	return id
}

// exec makes node n (1-based) execute the puts of the given values, in
// order, in one incarnation, and leaves the last value of each key as its
// state.
func (h *hist) exec(n int, values ...uint64) {
	st := &h.res.PerNode[n-1]
	var ids []protocols.CommandID
	for _, v := range values {
		ids = append(ids, h.ids[v])
		for _, o := range h.res.History {
			if o.Put && o.Value == v {
				st.State[o.Key] = v
			}
		}
	}
	st.Executions = append(st.Executions, ids)
}

func TestCheckSequential(t *testing.T) {
	// A correct history: client 1 reads an old value at first, then the
	// newer, never back.
	ok := func() *hist {
		h := newHist(2)
		h.op(0, 1, "k", true, 1, 10)
		h.op(0, 1, "k", true, 2, 20)
		h.op(1, 2, "k", false, 0, 5)
		h.op(1, 2, "k", false, 1, 30)
		h.op(1, 2, "k", false, 2, 40)
		h.exec(1, 1, 2)
		h.exec(2, 1, 2)
		return h
	}
	require.NoError(t, CheckSequential(&ok().res))

	cases := map[string]func(h *hist){
		"stale read after a newer one": func(h *hist) { h.op(1, 2, "k", false, 1, 50) },
		"own write not seen": func(h *hist) {
			h.op(1, 2, "k", true, 3, 50)
			h.op(1, 2, "k", false, 2, 60)
			for i := range h.res.PerNode {
				h.res.PerNode[i].Executions = [][]protocols.CommandID{{h.ids[1], h.ids[2], h.ids[3]}}
			}
		},
		"value never written": func(h *hist) { h.op(1, 2, "k", false, 9, 50) },
		"different update orders": func(h *hist) {
			h.res.PerNode[1].Executions = [][]protocols.CommandID{{h.ids[2], h.ids[1]}}
		},
		"answered put not executed": func(h *hist) { h.op(0, 1, "k", true, 7, 50) },
		"put ordered before a state the client saw": func(h *hist) {
			h.op(2, 1, "j", false, 0, 1)
			h.op(2, 1, "k", false, 2, 2)
			h.op(2, 1, "j", true, 5, 3)
			for i := range h.res.PerNode {
				h.res.PerNode[i].Executions = [][]protocols.CommandID{{h.ids[1], h.ids[5], h.ids[2]}}
			}
		},
	}
	for name, plant := range cases {
		h := ok()
		plant(h)
		err := CheckSequential(&h.res)
		require.ErrorIs(t, err, ErrContract, name)
		t.Logf("%s: %v", name, err)
	}
}

func TestCheckWeak(t *testing.T) {
	// A correct history: two writers cross; node 1 executes 1 then 2,
	// node 2 executes 2 and skips 1 (arbitrated before); reads see either,
	// never back.
	ok := func() *hist {
		h := newHist(2)
		h.op(0, 1, "k", true, 1, 10)
		h.op(1, 2, "k", true, 2, 10)
		h.op(0, 1, "k", false, 1, 12)
		h.op(0, 1, "k", false, 2, 30)
		h.op(1, 2, "k", false, 2, 31)
		h.exec(1, 1, 2)
		h.exec(2, 2)
		return h
	}
	require.NoError(t, CheckWeak(&ok().res))

	cases := map[string]func(h *hist){
		"read of a value never issued": func(h *hist) { h.op(2, 1, "k", false, 9, 50) },
		"read of a value issued later": func(h *hist) { h.op(2, 1, "j", false, 8, 1); h.op(3, 1, "j", true, 8, 60) },
		"conflicting arbitration":      func(h *hist) { h.res.PerNode[1].Executions = [][]protocols.CommandID{{h.ids[2], h.ids[1]}} },
		"own write not read":           func(h *hist) { h.op(1, 2, "k", false, 0, 40) },
		"read goes back":               func(h *hist) { h.op(0, 1, "k", false, 1, 40) },
		"no convergence":               func(h *hist) { h.res.PerNode[1].State["k"] = 1 },
		"lost update": func(h *hist) {
			h.op(1, 2, "k", true, 3, 50)
			h.res.PerNode[0].Executions[0] = append(h.res.PerNode[0].Executions[0], h.ids[3])
		},
		"executed twice": func(h *hist) {
			h.res.OrderViolations = []simnet.OrderViolation{{Kind: "duplicate", Commands: []protocols.CommandID{h.ids[1]}, Nodes: []string{"node 1 incarnation 0"}}}
		},
	}
	for name, plant := range cases {
		h := ok()
		plant(h)
		err := CheckWeak(&h.res)
		require.ErrorIs(t, err, ErrContract, name)
		t.Logf("%s: %v", name, err)
	}
}

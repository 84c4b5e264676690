package simnet

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/blossom-dso/blossom/protocols"
)

// Toy protocols for simnet's own tests.
//
//   - toy-seq is a correct leader sequencer: replicas forward commands to
//     node 1, which persists a slot for each and broadcasts it; replicas
//     execute in slot order and catch up by asking node 1. It tolerates
//     everything but node 1 crashing for good.
//   - toy-arrival is broken on purpose: every replica broadcasts the
//     commands it receives and executes commands in arrival order, so
//     conflicting commands execute in different orders.
//   - toy-probe persists a record for every submitted command and sends a
//     message to node 2 after it; it records what it recovered and what it
//     received, for the persistence tests.

func init() {
	protocols.Register("toy-seq", newToySeq, toyCodec{})
	protocols.Register("toy-seq-nopersist", func(cfg protocols.Config) (protocols.Protocol, error) {
		p, err := newToySeq(cfg)
		p.(*toySeq).noPersist = true
		return p, err
	}, toyCodec{})
	protocols.Register("toy-arrival", newToyArrival, toyCodec{})
	protocols.Register("toy-probe", newToyProbe, toyCodec{})
}

type fwdMsg struct{ Cmd protocols.Command }
type orderMsg struct {
	Slot uint64
	Cmd  protocols.Command
}
type needMsg struct{ Next uint64 }
type bcastMsg struct{ Cmd protocols.Command }

func appendCmd(b []byte, c protocols.Command) []byte {
	b = binary.AppendUvarint(b, c.ID.Client)
	b = binary.AppendUvarint(b, c.ID.Seq)
	b = binary.AppendUvarint(b, uint64(len(c.Keys)))
	for _, k := range c.Keys {
		b = binary.AppendUvarint(b, uint64(len(k)))
		b = append(b, k...)
	}
	b = binary.AppendUvarint(b, uint64(len(c.Payload)))
	return append(b, c.Payload...)
}

var errShort = errors.New("toy: truncated")

func readUvarint(b []byte) (uint64, []byte, error) {
	v, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, nil, errShort
	}
	return v, b[n:], nil
}

func readCmd(b []byte) (protocols.Command, []byte, error) {
	var c protocols.Command
	var err error
	if c.ID.Client, b, err = readUvarint(b); err != nil {
		return c, nil, err
	}
	if c.ID.Seq, b, err = readUvarint(b); err != nil {
		return c, nil, err
	}
	nk, b, err := readUvarint(b)
	if err != nil || nk > uint64(len(b)) {
		return c, nil, errShort
	}
	for range nk {
		var l uint64
		if l, b, err = readUvarint(b); err != nil || l > uint64(len(b)) {
			return c, nil, errShort
		}
		c.Keys = append(c.Keys, string(b[:l]))
		b = b[l:]
	}
	pl, b, err := readUvarint(b)
	if err != nil || pl > uint64(len(b)) {
		return c, nil, errShort
	}
	c.Payload = append([]byte(nil), b[:pl]...)
	return c, b[pl:], nil
}

type toyCodec struct{}

func (toyCodec) Marshal(b []byte, m protocols.Message) ([]byte, error) {
	switch m := m.(type) {
	case fwdMsg:
		return appendCmd(append(b, 1), m.Cmd), nil
	case orderMsg:
		return appendCmd(binary.AppendUvarint(append(b, 2), m.Slot), m.Cmd), nil
	case needMsg:
		return binary.AppendUvarint(append(b, 3), m.Next), nil
	case bcastMsg:
		return appendCmd(append(b, 4), m.Cmd), nil
	case probeMsg:
		return appendCmd(append(b, 5), protocols.Command{ID: m.ID}), nil
	}
	return nil, fmt.Errorf("toy: cannot marshal %T", m)
}

func (toyCodec) Unmarshal(b []byte) (protocols.Message, error) {
	if len(b) == 0 {
		return nil, errShort
	}
	tag, b := b[0], b[1:]
	switch tag {
	case 1, 4, 5:
		c, rest, err := readCmd(b)
		if err != nil || len(rest) != 0 {
			return nil, errShort
		}
		switch tag {
		case 1:
			return fwdMsg{Cmd: c}, nil
		case 4:
			return bcastMsg{Cmd: c}, nil
		}
		return probeMsg{ID: c.ID}, nil
	case 2:
		slot, b, err := readUvarint(b)
		if err != nil {
			return nil, err
		}
		c, rest, err := readCmd(b)
		if err != nil || len(rest) != 0 {
			return nil, errShort
		}
		return orderMsg{Slot: slot, Cmd: c}, nil
	case 3:
		v, rest, err := readUvarint(b)
		if err != nil || len(rest) != 0 {
			return nil, errShort
		}
		return needMsg{Next: v}, nil
	}
	return nil, fmt.Errorf("toy: unknown tag %d", tag)
}

// toySeq is the correct leader sequencer.
type toySeq struct {
	cfg protocols.Config
	env protocols.Env
	// leader state (node 1)
	log      []protocols.Command
	assigned map[protocols.CommandID]uint64
	// replica state
	next    uint64 // next slot to execute
	buf     map[uint64]protocols.Command
	pending []protocols.Command // submitted here, not executed yet
	// noPersist is the planted bug of toy-seq-nopersist: the leader does
	// not persist its slot assignments, so after a restart it reuses slots.
	noPersist bool
}

const toyLeader = 1

func newToySeq(cfg protocols.Config) (protocols.Protocol, error) {
	p := &toySeq{cfg: cfg, env: cfg.Env, assigned: map[protocols.CommandID]uint64{}, buf: map[uint64]protocols.Command{}}
	for _, rec := range cfg.Recovered {
		c, _, err := readCmd(rec)
		if err != nil {
			return nil, err
		}
		p.assigned[c.ID] = uint64(len(p.log))
		p.log = append(p.log, c)
	}
	return p, nil
}

func (p *toySeq) Submit(c protocols.Command) {
	p.pending = append(p.pending, c)
	p.env.Send(toyLeader, fwdMsg{Cmd: c})
}

func (p *toySeq) Step(from protocols.NodeID, m protocols.Message) {
	switch m := m.(type) {
	case fwdMsg:
		p.handleFwd(from, m.Cmd)
	case orderMsg:
		p.handleOrder(m.Slot, m.Cmd)
	case needMsg:
		for s := m.Next; s < uint64(len(p.log)) && s < m.Next+64; s++ {
			p.env.Send(from, orderMsg{Slot: s, Cmd: p.log[s]})
		}
	}
}

func (p *toySeq) handleFwd(from protocols.NodeID, c protocols.Command) {
	if p.cfg.Self != toyLeader {
		return
	}
	if s, ok := p.assigned[c.ID]; ok {
		p.env.Send(from, orderMsg{Slot: s, Cmd: c})
		return
	}
	s := uint64(len(p.log))
	p.log = append(p.log, c)
	p.assigned[c.ID] = s
	if !p.noPersist {
		p.env.Persist(appendCmd(nil, c))
	}
	for _, peer := range p.cfg.Peers {
		p.env.Send(peer, orderMsg{Slot: s, Cmd: c})
	}
}

func (p *toySeq) handleOrder(slot uint64, c protocols.Command) {
	if slot < p.next {
		return
	}
	p.buf[slot] = c
	for {
		c, ok := p.buf[p.next]
		if !ok {
			return
		}
		delete(p.buf, p.next)
		p.next++
		p.env.Execute(c)
		for i, q := range p.pending {
			if q.ID == c.ID {
				p.pending = append(p.pending[:i], p.pending[i+1:]...)
				break
			}
		}
	}
}

func (p *toySeq) Tick() {
	for _, c := range p.pending {
		p.env.Send(toyLeader, fwdMsg{Cmd: c})
	}
	p.env.Send(toyLeader, needMsg{Next: p.next})
}

// toyArrival executes in arrival order: broken on purpose.
type toyArrival struct {
	cfg  protocols.Config
	seen map[protocols.CommandID]bool
}

func newToyArrival(cfg protocols.Config) (protocols.Protocol, error) {
	return &toyArrival{cfg: cfg, seen: map[protocols.CommandID]bool{}}, nil
}

func (p *toyArrival) Submit(c protocols.Command) {
	for _, peer := range p.cfg.Peers {
		p.cfg.Env.Send(peer, bcastMsg{Cmd: c})
	}
}

func (p *toyArrival) Step(_ protocols.NodeID, m protocols.Message) {
	if b, ok := m.(bcastMsg); ok && !p.seen[b.Cmd.ID] {
		p.seen[b.Cmd.ID] = true
		p.cfg.Env.Execute(b.Cmd)
	}
}

func (p *toyArrival) Tick() {}

// toy-probe: see above.
type probeMsg struct{ ID protocols.CommandID }

type probeEvent struct {
	node      protocols.NodeID
	recovered []string // on start
	got       *protocols.CommandID
}

var probeLog []probeEvent

type toyProbe struct{ cfg protocols.Config }

func newToyProbe(cfg protocols.Config) (protocols.Protocol, error) {
	ev := probeEvent{node: cfg.Self, recovered: []string{}}
	for _, r := range cfg.Recovered {
		ev.recovered = append(ev.recovered, string(r))
	}
	probeLog = append(probeLog, ev)
	return &toyProbe{cfg: cfg}, nil
}

func (p *toyProbe) Submit(c protocols.Command) {
	p.cfg.Env.Persist([]byte(c.ID.String()))
	p.cfg.Env.Send(2, probeMsg{ID: c.ID})
}

func (p *toyProbe) Step(_ protocols.NodeID, m protocols.Message) {
	if pm, ok := m.(probeMsg); ok {
		probeLog = append(probeLog, probeEvent{node: p.cfg.Self, got: &pm.ID})
	}
}

func (p *toyProbe) Tick() {}

func newRand(seed uint64) *rand.Rand { return rand.New(rand.NewPCG(seed, seed)) }

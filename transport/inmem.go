package transport

import (
	"fmt"
	"sync"

	"github.com/blossom-dso/blossom/protocols"
)

// NetworkOptions configures an in-memory Network.
type NetworkOptions struct {
	// Codec, if set, makes every message between two different nodes
	// round-trip through it: encoded in Send, decoded before delivery, as
	// on a real network. Messages a node sends itself are not encoded.
	Codec protocols.Codec
	// QueueLen is the length of each node's inbox (default 4096 messages).
	// A full inbox drops its oldest message.
	QueueLen int
}

// Network is an in-memory network for tests, in the spirit of
// hashicorp/raft's InmemTransport: nodes Join it and exchange messages
// without sockets. Deliveries are asynchronous (one goroutine and one
// bounded inbox per node) and FIFO per pair of nodes; links can be cut and
// healed. The zero Network is not usable; call NewNetwork.
type Network struct {
	opts NetworkOptions

	mu    sync.RWMutex
	nodes map[protocols.NodeID]*InmemTransport
	cut   map[[2]protocols.NodeID]bool // symmetric: key has the lower id first
}

// NewNetwork returns an empty network with default options.
func NewNetwork() *Network { return NewNetworkWithOptions(NetworkOptions{}) }

// NewNetworkWithOptions returns an empty network.
func NewNetworkWithOptions(opts NetworkOptions) *Network {
	if opts.QueueLen <= 0 {
		opts.QueueLen = DefaultQueueLen
	}
	return &Network{
		opts:  opts,
		nodes: map[protocols.NodeID]*InmemTransport{},
		cut:   map[[2]protocols.NodeID]bool{},
	}
}

func link(a, b protocols.NodeID) [2]protocols.NodeID {
	if b < a {
		a, b = b, a
	}
	return [2]protocols.NodeID{a, b}
}

// Join attaches node id with handler h and returns its transport (an
// *InmemTransport). Joining an id that is joined and not closed panics; a
// closed node may join again (a restart). Partitions involving id persist
// across a restart.
func (n *Network) Join(id protocols.NodeID, h Handler) Transport {
	t := &InmemTransport{net: n, id: id, h: h, q: newQueue[envelope](n.opts.QueueLen), done: make(chan struct{})}
	n.mu.Lock()
	if _, dup := n.nodes[id]; dup {
		n.mu.Unlock()
		panic(fmt.Sprintf("transport: node %d joined the network twice", id))
	}
	n.nodes[id] = t
	n.mu.Unlock()
	t.wg.Add(1)
	go t.deliver()
	return t
}

// Partition cuts the link between a and b in both directions. Messages
// already in b's or a's inbox are still delivered.
func (n *Network) Partition(a, b protocols.NodeID) {
	if a == b {
		return
	}
	n.mu.Lock()
	n.cut[link(a, b)] = true
	n.mu.Unlock()
}

// Heal restores the link between a and b.
func (n *Network) Heal(a, b protocols.NodeID) {
	n.mu.Lock()
	delete(n.cut, link(a, b))
	n.mu.Unlock()
}

// Isolate cuts the links between id and every other node currently joined,
// as Partition does for each; Heal restores them one by one and HealAll at
// once. A node can always reach itself.
func (n *Network) Isolate(id protocols.NodeID) {
	n.mu.Lock()
	for other := range n.nodes {
		if other != id {
			n.cut[link(id, other)] = true
		}
	}
	n.mu.Unlock()
}

// HealAll restores every link.
func (n *Network) HealAll() {
	n.mu.Lock()
	clear(n.cut)
	n.mu.Unlock()
}

// Stats returns the counters of node id's current transport (zero if id is
// not joined).
func (n *Network) Stats(id protocols.NodeID) Stats {
	n.mu.RLock()
	t := n.nodes[id]
	n.mu.RUnlock()
	if t == nil {
		return Stats{}
	}
	return t.Stats()
}

// Close closes every joined node's transport.
func (n *Network) Close() error {
	n.mu.RLock()
	ts := make([]*InmemTransport, 0, len(n.nodes))
	for _, t := range n.nodes {
		ts = append(ts, t)
	}
	n.mu.RUnlock()
	for _, t := range ts {
		t.Close()
	}
	return nil
}

// envelope is one message in an inbox: m, or its encoding b if encoded.
type envelope struct {
	from    protocols.NodeID
	m       protocols.Message
	b       []byte
	encoded bool
}

// InmemTransport is one node's Transport on a Network.
type InmemTransport struct {
	net  *Network
	id   protocols.NodeID
	h    Handler
	q    *queue[envelope]
	st   counters
	wg   sync.WaitGroup
	once sync.Once
	done chan struct{}
}

var _ Transport = (*InmemTransport)(nil)

// Send queues m in the inbox of node to, unless to is not joined, the link
// is cut or m cannot be encoded; those drops, and the oldest message of a
// full inbox, are counted in this node's Stats.Dropped. It never blocks.
func (t *InmemTransport) Send(to protocols.NodeID, m protocols.Message) {
	select {
	case <-t.done:
		t.st.dropped.Add(1)
		return
	default:
	}
	n := t.net
	n.mu.RLock()
	dst := n.nodes[to]
	cut := to != t.id && n.cut[link(t.id, to)]
	n.mu.RUnlock()
	if dst == nil || cut {
		t.st.dropped.Add(1)
		return
	}
	e := envelope{from: t.id, m: m}
	if n.opts.Codec != nil && to != t.id {
		b, err := n.opts.Codec.Marshal(nil, m)
		if err != nil {
			t.st.dropped.Add(1)
			return
		}
		e = envelope{from: t.id, b: b, encoded: true}
	}
	if dst.q.push(e) {
		t.st.dropped.Add(1)
	}
	t.st.sent.Add(1)
}

// Close leaves the network and stops the delivery goroutine; undelivered
// messages are discarded.
func (t *InmemTransport) Close() error {
	t.once.Do(func() {
		t.net.mu.Lock()
		if t.net.nodes[t.id] == t {
			delete(t.net.nodes, t.id)
		}
		t.net.mu.Unlock()
		close(t.done)
		t.wg.Wait()
	})
	return nil
}

// Stats returns the node's counters: Sent counts messages queued at a
// receiver, Received messages handed to the Handler.
func (t *InmemTransport) Stats() Stats { return t.st.snapshot() }

func (t *InmemTransport) deliver() {
	defer t.wg.Done()
	var batch []envelope
	for {
		select {
		case <-t.q.notify:
		case <-t.done:
			return
		}
		batch = t.q.drain(batch[:0])
		for _, e := range batch {
			select {
			case <-t.done:
				return
			default:
			}
			m := e.m
			if e.encoded {
				var err error
				if m, err = t.net.opts.Codec.Unmarshal(e.b); err != nil {
					t.st.decodeErrors.Add(1)
					continue
				}
			}
			t.st.received.Add(1)
			t.h(e.from, m)
		}
		clear(batch)
	}
}

package simnet

import "github.com/blossom-dso/blossom/protocols"

// inject delivers one forged message (Config.Inject) and schedules the
// next while the fault window is open.
func (s *sim) inject() {
	if s.now >= s.window || s.done {
		return
	}
	s.q.push(event{at: s.now + s.cfg.InjectEvery, kind: evInject})
	r := s.injectRand
	from := protocols.NodeID(1 + r.IntN(s.n))
	to := protocols.NodeID(1 + r.IntN(s.n))
	m := s.cfg.Inject(r, from, to)
	nd := s.nodes[to-1]
	if m == nil || !nd.up {
		return
	}
	s.injected++
	nd.core.Step(from, m)
	if nd.core.Ready().Empty() {
		s.injectIgnored++
	}
	nd.drain()
	if s.ack != nil {
		s.afterRelease(nd)
	}
}

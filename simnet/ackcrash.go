package simnet

import (
	"math/rand/v2"
	"slices"
	"strconv"

	"github.com/blossom-dso/blossom/protocols"
)

// ackCrash is the state of the ack-crash fault (FaultSpec.AckCrash), aimed
// at the class of bugs where a replica answers before persisting what it
// promised or accepted. Such a bug hides as long as the replica keeps its
// memory: the answer counts towards a quorum, and the replica still holds
// what it answered for. It shows once the replica crashes after the answer
// left and a quorum without the proposer decides what happened. An
// episode therefore
//
//  1. crashes the answering node (not a leader) right after its input
//     released a message to a peer (the message is already on the
//     network) and restarts it at once from its synced records; with
//     probability 1/2 every other node but that peer does the same, so
//     that no copy the peer sent them survives in memory only;
//  2. crashes the peer, losing its unsynced tail, right after it next
//     answers a client (or after two to four one-way delays and disk
//     syncs if it answers none), for two to four suspicion timeouts: the messages it
//     sent and that had not arrived yet are lost, so the others recover
//     without the peer from what they made durable, while the client has
//     its answer.
//
// An episode starts only while fewer than F nodes are down. A correct
// protocol survives every episode: an instant restart loses nothing that
// was answered for, lost messages are a fault like any, and
// the peer's crash keeps at most F nodes down (while the fault is on, no
// crash starts that would take more than F nodes down). A node's messages
// to itself from before a crash are never delivered to its next
// incarnation. The fault draws from a random stream of its own (derived
// from the seed, not from the run's master stream), so that the other
// faults of a seed, swarm's draws included, are those of the same seed
// without it.
type ackCrash struct {
	rand  *rand.Rand
	p     float64 // probability that an eligible release starts an episode
	left  int     // episodes left in this run
	quiet int64   // no episode starts before this time (the first: a
	// random time in the first third of the fault window)
	lag int64 // when the peer crashes at the latest, after the answer:
	// four one-way delays and four syncs
	down int64 // one suspicion timeout

	peer    int    // node index of the armed peer, -1 if none
	episode uint64 // number of the current episode
}

// newAckCrash draws the ack-crash parameters of a run.
func newAckCrash(rc *resolved) *ackCrash {
	r := rand.New(rand.NewPCG(rc.Seed, 0x61636b2d63726173)) // "ack-cras"
	return &ackCrash{
		rand:  r,
		quiet: r.Int64N(max(1, rc.FaultWindow/3)),
		p:     0.01 + 0.09*r.Float64(),
		left:  2 + r.IntN(4),
		lag:   4*max(rc.links.maxOneWay, 1) + 4*rc.DiskDelay,
		down:  int64(rc.SuspectTicks) * rc.TickInterval,
		peer:  -1,
	}
}

// downCount is the number of nodes down now.
func (s *sim) downCount() int {
	d := 0
	for _, nd := range s.nodes {
		if !nd.up {
			d++
		}
	}
	return d
}

// lostInFlight reports whether a message from node index from, sent by its
// incarnation inc, is lost with that incarnation (see ackCrash).
func (s *sim) lostInFlight(from, to int, inc uint32) bool {
	snd := s.nodes[from]
	if inc == snd.inc {
		return false
	}
	return from == to || slices.Contains(snd.lossyIncs, inc)
}

// afterRelease runs after an input of nd whose outputs the driver carried
// out: an armed peer that answered a client crashes; otherwise, if the
// input released a message to another node, an episode may start.
func (s *sim) afterRelease(nd *node) {
	a := s.ack
	to, answered := nd.sentTo, nd.answered
	nd.sentTo, nd.answered = 0, false
	if a.peer == nd.idx {
		if answered {
			s.ackPeerCrash(a.episode)
		}
		return
	}
	if to == 0 || !s.faulty || !nd.up || a.left == 0 || a.peer >= 0 || s.now < a.quiet || s.downCount() >= s.cfg.F {
		return
	}
	if lr, ok := nd.core.Protocol().(protocols.LeaderReporter); ok && lr.Leader() == nd.id {
		return // aimed at acceptors: a leader's sends are proposals
	}
	peer := s.nodes[to-1]
	if !peer.up || a.rand.Float64() >= a.p {
		return
	}
	a.left--
	a.episode++
	a.peer = peer.idx
	all := a.rand.IntN(2) == 0
	who := "it"
	if all {
		who = "every node but " + strconv.Itoa(int(to))
	}
	s.logf("ack-crash: node %d answered node %d; lost-tail restart of %s; node %d crashes after its next client answer", nd.id, to, who, to)
	for _, x := range s.nodes {
		if x == peer || !x.up || (!all && x != nd) {
			continue
		}
		x.crash(CrashLostTail)
		if err := x.restart(); err != nil {
			s.err = err
			return
		}
	}
	s.q.push(event{at: s.now + a.lag/2 + a.rand.Int64N(a.lag/2+1), kind: evAckCrash, a: a.episode})
}

// ackPeerCrash crashes the armed peer of episode ep, if it is still armed.
func (s *sim) ackPeerCrash(ep uint64) {
	a := s.ack
	if a.peer < 0 || a.episode != ep {
		return
	}
	p := s.nodes[a.peer]
	a.peer = -1
	end := s.now + a.down*(2+a.rand.Int64N(3))
	a.quiet = end
	if !p.up || !s.faulty || s.downCount() >= s.cfg.F {
		s.logf("ack-crash of node %d skipped", p.id)
		return
	}
	p.lossyIncs = append(p.lossyIncs, p.inc)
	p.crash(CrashLostTail)
	s.logf("ack-crash: node %d crashes, its messages in flight are lost, until %.3fms", p.id, float64(end)/1000)
	i := len(s.plan)
	s.plan = append(s.plan, fault{kind: fkCrash, crash: CrashLostTail, node: p.idx, start: s.now, end: end})
	s.q.push(event{at: end, kind: evFaultEnd, a: uint64(i)})
}

package wbcast

import (
	"fmt"
	"maps"
	"slices"

	"github.com/pingcap/failpoint"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/mcast"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// ckptVersion is the first byte of a checkpoint (format 1; see the package
// doc).
const ckptVersion byte = 1

// maxTombstones bounds the ids of forgotten messages a process keeps (the
// retention of the package doc).
const maxTombstones = 1 << 16

var _ protocols.Compactor = (*Replica)(nil)

// Checkpoint implements protocols.Compactor. It first forgets what the
// checkpoint need not carry (see "Compaction" in the package doc): the
// deliveries every member of the group announced, and the delivered
// messages that a majority of every destination group announced (their ids
// stay as tombstones). It then encodes the rest. It makes no Env call. From
// the first call on, the process announces its own progress (Progress).
func (r *Replica) Checkpoint() []byte {
	r.compacting = true
	r.prune()
	b := make([]byte, 1, 64+len(r.tombEnc)+64*(len(r.delivered)+len(r.done)+len(r.msgs)))
	b[0] = ckptVersion
	return r.appendCheckpoint(b)
}

// mark is a delivery position in the order of mcast.Before.
type mark struct {
	gts mcast.TS
	id  protocols.CommandID
}

func (a mark) before(b mark) bool { return mcast.Before(a.gts, a.id, b.gts, b.id) }

// progress returns what member p of some group announced, or this
// process's own progress for p == self.
func (r *Replica) progress(p protocols.NodeID) (Progress, bool) {
	if p == r.self {
		return Progress{Count: r.count(), GTS: r.lastGTS, ID: r.lastID}, true
	}
	pr, ok := r.prog[p]
	return pr, ok
}

// stableMark returns the largest mark that a majority of group g announced
// having delivered up to, if a majority announced anything.
func (r *Replica) stableMark(g protocols.GroupID) (mark, bool) {
	var ms []mark
	for _, p := range r.cfg.Groups[g] {
		if pr, ok := r.progress(p); ok && pr.Count > 0 {
			ms = append(ms, mark{pr.GTS, pr.ID})
		}
	}
	maj := len(r.cfg.Groups[g])/2 + 1
	if len(ms) < maj {
		return mark{}, false
	}
	slices.SortFunc(ms, func(a, b mark) int { // decreasing
		if b.before(a) {
			return -1
		}
		if a.before(b) {
			return 1
		}
		return 0
	})
	return ms[maj-1], true
}

// prune forgets, at a checkpoint, the deliveries every member of the group
// holds and the delivered messages no group can ask about any more.
func (r *Replica) prune() {
	// The delivery sequence: up to the smallest count any member of the
	// group announced (a member that announced nothing pins it), and never
	// past what was executed here.
	cut := r.replayed
	for _, p := range r.members {
		pr, ok := r.progress(p)
		if !ok {
			cut = 0
			break
		}
		cut = min(cut, pr.Count)
	}
	if cut > r.base {
		r.delivered = slices.Clone(r.since(cut))
		r.base = cut
	}

	// Delivered messages: once a majority of every destination group
	// delivered a message, every future leader of those groups holds its
	// delivery, so no group orders it again and asks for this group's
	// ACCEPT. Its id stays as a tombstone, so that a late copy is ignored.
	marks := map[protocols.GroupID]mark{}
	for g := range r.cfg.Groups {
		if m, ok := r.stableMark(g); ok {
			marks[g] = m
		}
	}
	ownOnly := false
	failpoint.Inject("pruneOnOwnGroupOnly", func() {
		// Planted bug for the sabotage test: forget a delivered message
		// once the own group announced it, while another destination
		// group may still need this group's ACCEPT.
		ownOnly = true
	})
	var gone []protocols.CommandID
	for id, d := range r.done {
		stable := true
		for _, g := range d.dest {
			if ownOnly && g != r.group {
				continue
			}
			m, ok := marks[g]
			if !ok || m.before(mark{d.gts, id}) {
				stable = false
				break
			}
		}
		if stable {
			gone = append(gone, id)
		}
	}
	slices.SortFunc(gone, cmpID)
	for _, id := range gone {
		delete(r.done, id)
		r.bury(id)
	}
}

// bury keeps id as a tombstone. Beyond maxTombstones it drops the oldest
// eighth, so that the encoding of the rest (tombEnc, kept for checkpoints)
// is rebuilt rarely.
func (r *Replica) bury(id protocols.CommandID) {
	if _, ok := r.tomb[id]; ok {
		return
	}
	r.tomb[id] = struct{}{}
	r.tombQ = append(r.tombQ, id)
	r.tombEnc = wire.AppendCommandID(r.tombEnc, id)
	if len(r.tombQ) > maxTombstones {
		n := maxTombstones / 8
		for _, old := range r.tombQ[:n] {
			delete(r.tomb, old)
		}
		r.tombQ = slices.Clone(r.tombQ[n:])
		r.tombEnc = r.tombEnc[:0]
		for _, id := range r.tombQ {
			r.tombEnc = wire.AppendCommandID(r.tombEnc, id)
		}
	}
}

func cmpID(a, b protocols.CommandID) int {
	if a.Less(b) {
		return -1
	}
	if b.Less(a) {
		return 1
	}
	return 0
}

// appendCheckpoint encodes the state the durable records made (format in
// the package doc).
func (r *Replica) appendCheckpoint(b []byte) []byte {
	b = wire.AppendBallot(b, r.cballot)
	b = wire.AppendBallot(b, r.aballot)
	b = wire.AppendUvarint(b, r.clock)
	b = wire.AppendUvarint(b, r.base)
	b = wire.AppendUvarint(b, r.replayed)
	b = mcast.AppendTS(b, r.lastGTS)
	b = wire.AppendCommandID(b, r.lastID)
	b = appendDelivered(b, r.delivered)

	ids := slices.SortedFunc(maps.Keys(r.done), cmpID)
	b = wire.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		d := r.done[id]
		b = mcast.AppendTS(b, d.ownLTS)
		b = appendRecord(b, vectorRecord(d.cmd, d.have, d.lts, d.bals, d.gts))
	}

	var recs []Record
	for _, id := range r.sortedIDs() {
		m := r.msgs[id]
		have := slices.Clone(m.have)
		if slices.Contains(have, false) {
			// An own-group ACCEPT is durable only once the message is
			// accepted from every group (an accept record); the others
			// are kept as if received again.
			have[slices.Index(m.dest, r.group)] = false
		}
		if !slices.Contains(have, true) {
			continue
		}
		recs = append(recs, vectorRecord(m.cmd, have, m.lts, m.bals, m.gts))
	}
	b = appendRecords(b, recs)

	b = wire.AppendUvarint(b, uint64(len(r.tombQ)))
	return append(b, r.tombEnc...)
}

// vectorRecord is a Record of the entries of have; the others are zero.
func vectorRecord(c protocols.Command, have []bool, lts []mcast.TS, bals []ballot.Ballot, gts mcast.TS) Record {
	rec := Record{Cmd: c, LTS: slices.Clone(lts), Bals: slices.Clone(bals), GTS: gts}
	for k := range have {
		if !have[k] {
			rec.LTS[k], rec.Bals[k] = mcast.TS{}, ballot.Ballot{}
		}
	}
	return rec
}

// checkVector validates a decoded Record against the destinations of its
// command: one entry per destination group, each ballot owned by a member
// of that group (or zero), this process's group among them.
func (r *Replica) checkVector(rec Record) ([]protocols.GroupID, error) {
	dest := r.dests(rec.Cmd)
	if !slices.Contains(dest, r.group) {
		return nil, fmt.Errorf("message %v not addressed to group %d", rec.Cmd.ID, r.group)
	}
	if len(rec.LTS) != len(dest) || len(rec.Bals) != len(dest) {
		return nil, fmt.Errorf("message %v: vector of %d/%d for %d groups", rec.Cmd.ID, len(rec.LTS), len(rec.Bals), len(dest))
	}
	for k, bl := range rec.Bals {
		if g, ok := r.groupOf[bl.Node]; !bl.IsZero() && (!ok || g != dest[k]) {
			return nil, fmt.Errorf("message %v: ballot %v for group %d", rec.Cmd.ID, bl, dest[k])
		}
	}
	return dest, nil
}

// restore installs a checkpoint; malformed input is an error.
func (r *Replica) restore(b []byte) error {
	if len(b) == 0 || b[0] != ckptVersion {
		return fmt.Errorf("wbcast: checkpoint: not a version %d checkpoint", ckptVersion)
	}
	err := r.readCheckpoint(wire.NewReader(b[1:]))
	if err != nil {
		return fmt.Errorf("wbcast: checkpoint: %w", err)
	}
	return nil
}

func (r *Replica) readCheckpoint(rd *wire.Reader) error {
	r.cballot, r.aballot = rd.Ballot(), rd.Ballot()
	r.clock, r.base, r.replayed = rd.Uvarint(), rd.Uvarint(), rd.Uvarint()
	r.lastGTS, r.lastID = mcast.ReadTS(rd), rd.CommandID()
	r.delivered = readDelivered(rd)
	if err := rd.Err(); err != nil {
		return err
	}
	if r.replayed < r.base || r.replayed > r.count() || r.count() < r.base {
		return fmt.Errorf("executed %d of deliveries %d..%d", r.replayed, r.base+1, r.count())
	}
	if r.cballot.Less(r.aballot) {
		return fmt.Errorf("ballot %v below adopted %v", r.cballot, r.aballot)
	}
	for _, bl := range []ballot.Ballot{r.cballot, r.aballot} {
		if r.groupOf[bl.Node] != r.group || !slices.Contains(r.members, bl.Node) {
			return fmt.Errorf("ballot %v not of group %d", bl, r.group)
		}
	}
	for _, d := range r.delivered {
		r.clock = max(r.clock, d.GTS.Counter)
	}

	n := rd.Count(16)
	for range n {
		own := mcast.ReadTS(rd)
		rec := readRecord(rd)
		if err := rd.Err(); err != nil {
			return err
		}
		dest, err := r.checkVector(rec)
		if err != nil {
			return err
		}
		if _, dup := r.done[rec.Cmd.ID]; dup {
			return fmt.Errorf("message %v delivered twice", rec.Cmd.ID)
		}
		d := &done{cmd: rec.Cmd, ownLTS: own, dest: dest, gts: rec.GTS, lts: rec.LTS, bals: rec.Bals, have: make([]bool, len(dest))}
		for k := range d.bals {
			d.have[k] = !d.bals[k].IsZero()
		}
		r.done[rec.Cmd.ID] = d
		r.clock = max(r.clock, d.gts.Counter)
	}

	for _, rec := range readRecords(rd) {
		if _, err := r.checkVector(rec); err != nil {
			return err
		}
		if _, dup := r.done[rec.Cmd.ID]; dup {
			return fmt.Errorf("message %v both delivered and pending", rec.Cmd.ID)
		}
		r.adopt(r.get(rec.Cmd), rec)
		for _, t := range rec.LTS {
			r.clock = max(r.clock, t.Counter)
		}
	}

	n = rd.Count(2)
	for range n {
		id := rd.CommandID()
		if rd.Err() != nil {
			break
		}
		if r.finished(id) {
			return fmt.Errorf("tombstone %v twice or delivered", id)
		}
		if _, ok := r.msgs[id]; ok {
			return fmt.Errorf("tombstone %v pending", id)
		}
		r.bury(id)
	}
	return rd.Done()
}

// announce sends this process's delivery progress to every other replica
// (Progress), once it compacts: when its count changed and the last
// announcement is SuspectTicks old, and every 4*SuspectTicks regardless, so
// that lost announcements and restarted peers catch up.
func (r *Replica) announce() {
	if !r.compacting {
		return
	}
	age := r.ticks - r.progAt
	if !(r.count() != r.progSent && age >= r.suspect || age >= 4*r.suspect) {
		return
	}
	r.progSent, r.progAt = r.count(), r.ticks
	p := Progress{Count: r.count(), GTS: r.lastGTS, ID: r.lastID}
	for _, q := range r.cfg.Peers {
		if _, ok := r.groupOf[q]; ok && q != r.self {
			r.env.Send(q, p)
		}
	}
}

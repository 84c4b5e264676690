package wbcast

import (
	"fmt"
	"slices"

	"github.com/blossom-dso/blossom/protocols/ballot"
	"github.com/blossom-dso/blossom/protocols/mcast"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// Durable records. A process persists its current ballot before it answers
// a NEWLEADER, the adopted leader state (a sync record, then the records of
// the adopted messages) before it acknowledges a NEWLEADER_SYNC, and every
// accepted message before it sends an ACCEPT_ACK for it, and every delivery
// (replayed, and executed again, after a restart).
const (
	recBallot byte = iota + 1
	recSync
	recAccept
	recDeliver
)

func deliverRecord(pos uint64, d Delivered) []byte {
	return appendDelivered(wire.AppendUvarint([]byte{recDeliver}, pos), []Delivered{d})
}

func ballotRecord(b ballot.Ballot) []byte {
	return wire.AppendBallot([]byte{recBallot}, b)
}

func syncRecord(b ballot.Ballot, clock uint64) []byte {
	return wire.AppendUvarint(wire.AppendBallot([]byte{recSync}, b), clock)
}

func acceptRecord(m *msg) []byte {
	rec := Record{Cmd: m.cmd, LTS: slices.Clone(m.lts), Bals: slices.Clone(m.bals), GTS: m.gts}
	for k := range m.have {
		if !m.have[k] {
			rec.Bals[k], rec.LTS[k] = ballot.Ballot{}, mcast.TS{}
		}
	}
	b := appendRecords([]byte{recAccept}, []Record{rec})
	return b
}

// recover replays the records in order.
func (r *Replica) recover(recs [][]byte) error {
	for i, raw := range recs {
		if len(raw) == 0 {
			return fmt.Errorf("wbcast: record %d: empty", i)
		}
		rd := wire.NewReader(raw[1:])
		switch raw[0] {
		case recBallot:
			b := rd.Ballot()
			if rd.Err() == nil {
				r.cballot = ballot.Max(r.cballot, b)
			}
		case recSync:
			b, clock := rd.Ballot(), rd.Uvarint()
			if rd.Err() == nil {
				r.cballot, r.aballot = ballot.Max(r.cballot, b), b
				r.clock = max(r.clock, clock)
				r.forgetOwn()
			}
		case recAccept:
			rs := readRecords(rd)
			if rd.Err() == nil {
				if len(rs) != 1 {
					return fmt.Errorf("wbcast: record %d: %d messages", i, len(rs))
				}
				rec := rs[0]
				if r.finished(rec.Cmd.ID) {
					// Not written by this version (a delivered message is
					// never accepted again); ignored like a late ACCEPT.
					break
				}
				m := r.get(rec.Cmd)
				if len(rec.Bals) != len(m.dest) || len(rec.LTS) != len(m.dest) {
					return fmt.Errorf("wbcast: record %d: vector of %d for %d groups", i, len(rec.Bals), len(m.dest))
				}
				r.adopt(m, rec)
				for _, t := range rec.LTS {
					r.clock = max(r.clock, t.Counter)
				}
			}
		case recDeliver:
			pos, ds := rd.Uvarint(), readDelivered(rd)
			if rd.Err() == nil {
				if len(ds) != 1 {
					return fmt.Errorf("wbcast: record %d: %d deliveries", i, len(ds))
				}
				switch {
				case pos > r.count()+1 || pos == 0:
					return fmt.Errorf("wbcast: record %d: delivery %d after %d", i, pos, r.count())
				case pos == r.count()+1:
					d := ds[0]
					r.delivered = append(r.delivered, d)
					r.lastGTS, r.lastID = d.GTS, d.Cmd.ID
					dn := &done{gts: d.GTS, cmd: d.Cmd, ownLTS: d.LTS}
					if m, ok := r.msgs[d.Cmd.ID]; ok {
						dn.dest, dn.have, dn.lts, dn.bals = m.dest, m.have, m.lts, m.bals
						delete(r.msgs, d.Cmd.ID)
					} else {
						dn.dest = r.dests(d.Cmd)
						dn.have, dn.lts, dn.bals = make([]bool, len(dn.dest)), make([]mcast.TS, len(dn.dest)), make([]ballot.Ballot, len(dn.dest))
					}
					r.done[d.Cmd.ID] = dn
					r.clock = max(r.clock, d.GTS.Counter)
				}
			}
		default:
			return fmt.Errorf("wbcast: record %d: unknown type %d", i, raw[0])
		}
		if err := rd.Done(); err != nil {
			return fmt.Errorf("wbcast: record %d: %w", i, err)
		}
	}
	return nil
}

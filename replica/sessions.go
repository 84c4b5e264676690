package replica

import (
	"cmp"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// session is what one key remembers of one client: every sequence number
// below floor is answered (and was executed, if it ever will be, before
// the command that raised floor), and seqs lists the sequence numbers at
// or above floor executed on the key, sorted. res[i] is the result of
// seqs[i] if it is kept: on the command's first session key only, once the
// state machine answered it; otherwise nil (a kept result is never nil).
// Kept results are copies in buf, which is reused once the session keeps
// none (a closed-loop client's next command acknowledges the last one), so
// that keeping a result allocates nothing in the steady state; a kept
// result is therefore read or copied at once, never held.
type session struct {
	floor uint64
	seqs  []uint64
	res   [][]byte
	buf   []byte
	used  uint64 // keySessions.clock at the last use, for eviction
}

// keySessions are the sessions of one key.
type keySessions struct {
	clients map[uint64]*session
	clock   uint64
	// last is the session of client lastID, the one found last (nil if
	// none): a key of one client (a closed-loop client's own key) finds
	// its session without a map lookup.
	lastID uint64
	last   *session
}

// session returns the session of client id, nil if none.
func (ks *keySessions) session(id uint64) *session {
	if ks.last != nil && ks.lastID == id {
		return ks.last
	}
	se := ks.clients[id]
	if se != nil {
		ks.lastID, ks.last = id, se
	}
	return se
}

// sessions is the core's exactly-once table (see the package doc).
type sessions struct {
	max  int
	keys map[string]*keySessions
	// pending maps each executed command that the state machine has not
	// answered yet to its first session key, where its result goes.
	pending map[protocols.CommandID]string
}

func newSessions(max int) *sessions {
	if max <= 0 {
		max = DefaultMaxSessionsPerKey
	}
	return &sessions{max: max, keys: map[string]*keySessions{}, pending: map[protocols.CommandID]string{}}
}

// sessionKeys are the keys whose sessions a command consults: its keys, or
// the empty key for a command without keys.
func sessionKeys(c protocols.Command) []string {
	if len(c.Keys) == 0 {
		return []string{""}
	}
	return c.Keys
}

// admit reports whether c is new, and if so records it as executed and
// returns its session on its first session key.
func (s *sessions) admit(c protocols.Command) (*session, bool) {
	if len(c.Keys) <= 1 {
		// One session key: it is looked up once.
		k := ""
		if len(c.Keys) == 1 {
			k = c.Keys[0]
		}
		ks := s.keys[k]
		var se *session
		if ks != nil {
			if se = ks.session(c.ID.Client); se != nil && se.executed(c.ID.Seq) {
				return nil, false
			}
		}
		return s.recordIn(k, ks, se, c), true
	}
	for _, k := range c.Keys {
		if ks := s.keys[k]; ks != nil {
			if se := ks.session(c.ID.Client); se != nil && se.executed(c.ID.Seq) {
				return nil, false
			}
		}
	}
	var first *session
	for i, k := range c.Keys {
		se := s.record(k, c)
		if i == 0 {
			first = se
		}
	}
	return first, true
}

// executed reports whether the session shows seq executed.
func (se *session) executed(seq uint64) bool {
	if seq < se.floor {
		return true
	}
	_, found := slices.BinarySearch(se.seqs, seq)
	return found
}

// record notes c as executed on key k and raises the client's floor to its
// acknowledgement watermark; it returns the client's session on k.
func (s *sessions) record(k string, c protocols.Command) *session {
	ks := s.keys[k]
	var se *session
	if ks != nil {
		se = ks.session(c.ID.Client)
	}
	return s.recordIn(k, ks, se, c)
}

// recordIn is record with the key's sessions ks (nil if none) and the
// client's session se (nil if none) already looked up.
func (s *sessions) recordIn(k string, ks *keySessions, se *session, c protocols.Command) *session {
	if ks == nil {
		ks = &keySessions{clients: map[uint64]*session{}}
		s.keys[k] = ks
	}
	ks.clock++
	if se == nil {
		if len(ks.clients) >= s.max {
			ks.evict()
		}
		se = &session{}
		ks.clients[c.ID.Client] = se
		ks.lastID, ks.last = c.ID.Client, se
	}
	se.used = ks.clock
	if c.Acked > se.floor {
		// The client was answered below Acked: those seqs and their
		// results are forgotten.
		se.floor = c.Acked
		if n := len(se.seqs); n > 0 && se.seqs[n-1] < se.floor {
			// All forgotten (a closed-loop client's usual case).
			clear(se.res)
			se.seqs, se.res = se.seqs[:0], se.res[:0]
		} else {
			i, _ := slices.BinarySearch(se.seqs, se.floor)
			se.seqs = slices.Delete(se.seqs, 0, i)
			se.res = slices.Delete(se.res, 0, i)
		}
		if len(se.seqs) == 0 {
			se.buf = se.buf[:0]
		}
	}
	if c.ID.Seq >= se.floor {
		if n := len(se.seqs); n == 0 || se.seqs[n-1] < c.ID.Seq {
			// The highest seq yet (the usual case): appended.
			se.seqs = append(se.seqs, c.ID.Seq)
			se.res = append(se.res, nil)
		} else if i, found := slices.BinarySearch(se.seqs, c.ID.Seq); !found {
			se.seqs = slices.Insert(se.seqs, i, c.ID.Seq)
			se.res = slices.Insert(se.res, i, nil)
		}
	}
	return se
}

// keep stores a copy of the result of command id in its session on key k,
// if the session still exists and still lists id's seq (at or above the
// client's floor).
func (s *sessions) keep(k string, id protocols.CommandID, result []byte) {
	ks := s.keys[k]
	if ks == nil {
		return
	}
	ks.session(id.Client).keep(id.Seq, result)
}

// keep stores a copy of the result of seq if the session lists it.
func (se *session) keep(seq uint64, result []byte) {
	if se == nil {
		return
	}
	if i, found := slices.BinarySearch(se.seqs, seq); found {
		se.res[i] = se.store(result)
	}
}

// store copies result into buf and returns the copy, never nil. A full buf
// is replaced by one twice the size of the results still kept, which are
// moved into it, so that buf holds at most about twice the kept bytes.
func (se *session) store(result []byte) []byte {
	if se.buf == nil || cap(se.buf)-len(se.buf) < len(result) {
		live := len(result)
		for _, r := range se.res {
			live += len(r)
		}
		buf := make([]byte, 0, max(2*live, 16))
		for i, r := range se.res {
			if r != nil {
				k := len(buf)
				buf = append(buf, r...)
				se.res[i] = buf[k:len(buf):len(buf)]
			}
		}
		se.buf = buf
	}
	k := len(se.buf)
	se.buf = append(se.buf, result...)
	return se.buf[k:len(se.buf):len(se.buf)]
}

// retry is what the sessions know of c, a command found executed before:
// its kept result (kept), or that it awaits its answer (pending). Neither
// means its result is gone (its seq is below the client's floor). It
// changes nothing, so a replica may ask it about a retry only it received.
func (s *sessions) retry(c protocols.Command) (result []byte, kept, pending bool) {
	if ks := s.keys[sessionKeys(c)[0]]; ks != nil {
		if se := ks.clients[c.ID.Client]; se != nil { // not session: retry changes nothing
			if i, found := slices.BinarySearch(se.seqs, c.ID.Seq); found && se.res[i] != nil {
				return se.res[i], true, false
			}
		}
	}
	_, pending = s.pending[c.ID]
	return nil, false, pending
}

// evict forgets the least recently used session of the key (ties by the
// smaller client id, so that every replica evicts the same one).
func (ks *keySessions) evict() {
	var victim uint64
	var best *session
	for id, se := range ks.clients {
		if best == nil || se.used < best.used || (se.used == best.used && id < victim) {
			victim, best = id, se
		}
	}
	delete(ks.clients, victim)
	if ks.lastID == victim {
		ks.last = nil
	}
}

// appendTo encodes the sessions in a deterministic order: keys, clients
// and pending ids sorted.
func (s *sessions) appendTo(b []byte) []byte {
	keys := slices.Sorted(maps.Keys(s.keys))
	b = binary.AppendUvarint(b, uint64(len(keys)))
	for _, k := range keys {
		ks := s.keys[k]
		b = wire.AppendString(b, k)
		b = binary.AppendUvarint(b, ks.clock)
		ids := slices.Sorted(maps.Keys(ks.clients))
		b = binary.AppendUvarint(b, uint64(len(ids)))
		for _, id := range ids {
			se := ks.clients[id]
			b = binary.AppendUvarint(b, id)
			b = binary.AppendUvarint(b, se.floor)
			b = binary.AppendUvarint(b, se.used)
			b = binary.AppendUvarint(b, uint64(len(se.seqs)))
			for i, q := range se.seqs {
				b = binary.AppendUvarint(b, q)
				b = wire.AppendBool(b, se.res[i] != nil)
				if se.res[i] != nil {
					b = wire.AppendBytes(b, se.res[i])
				}
			}
		}
	}
	ids := slices.SortedFunc(maps.Keys(s.pending), func(a, b protocols.CommandID) int {
		return cmp.Or(cmp.Compare(a.Client, b.Client), cmp.Compare(a.Seq, b.Seq))
	})
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = wire.AppendCommandID(b, id)
		b = wire.AppendString(b, s.pending[id])
	}
	return b
}

// errSessions is a decoded session that breaks the table's invariants.
var errSessions = errors.New("sequence numbers not sorted above the floor")

// readSessions decodes what appendTo wrote. Results are copied out of r's
// input.
func readSessions(r *wire.Reader, max int) (*sessions, error) {
	s := newSessions(max)
	var bad error
	nk := r.Count(2)
	for range nk {
		k := r.String()
		ks := &keySessions{clients: map[uint64]*session{}, clock: r.Uvarint()}
		nc := r.Count(4)
		for range nc {
			id := r.Uvarint()
			se := &session{floor: r.Uvarint(), used: r.Uvarint()}
			nq := r.Count(2)
			if nq > 0 {
				se.seqs = make([]uint64, nq)
				se.res = make([][]byte, nq)
				for i := range se.seqs {
					se.seqs[i] = r.Uvarint()
					if r.Bool() {
						se.res[i] = se.store(r.Bytes())
					}
					if se.seqs[i] < se.floor || i > 0 && se.seqs[i] <= se.seqs[i-1] {
						bad = errSessions
					}
				}
			}
			if r.Err() != nil || bad != nil {
				break
			}
			ks.clients[id] = se
		}
		s.keys[k] = ks
		if r.Err() != nil || bad != nil {
			break
		}
	}
	if r.Err() == nil && bad == nil {
		np := r.Count(3)
		for range np {
			id := r.CommandID()
			k := r.String()
			if r.Err() != nil {
				break
			}
			s.pending[id] = k
		}
	}
	if err := cmp.Or(r.Err(), bad); err != nil {
		return nil, fmt.Errorf("%w: sessions: %w", ErrState, err)
	}
	return s, nil
}

// state encodes the sessions and the state machine's snapshot.
func (c *Core) state() ([]byte, error) {
	sm, err := c.sm.Snapshot()
	if err != nil {
		return nil, err
	}
	b := c.sess.appendTo(nil)
	return wire.AppendBytes(b, sm), nil
}

// restore decodes what state wrote into the sessions and the state machine.
func (c *Core) restore(st []byte) error {
	r := wire.NewReader(st)
	s, err := readSessions(r, c.sess.max)
	if err != nil {
		return err
	}
	sm := r.Bytes()
	if err := r.Done(); err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	if err := c.sm.Restore(sm); err != nil {
		return fmt.Errorf("%w: state machine: %w", ErrState, err)
	}
	c.sess = s
	return nil
}

// MarshalBinary encodes a snapshot: index, checkpoint, state.
func (s *Snapshot) MarshalBinary() ([]byte, error) {
	b := binary.AppendUvarint(nil, s.Index)
	b = wire.AppendBytes(b, s.Checkpoint)
	return wire.AppendBytes(b, s.State), nil
}

// UnmarshalBinary decodes what MarshalBinary wrote; malformed input is an
// error wrapping ErrState.
func (s *Snapshot) UnmarshalBinary(b []byte) error {
	r := wire.NewReader(b)
	s.Index = r.Uvarint()
	s.Checkpoint = r.Bytes()
	s.State = r.Bytes()
	if err := r.Done(); err != nil {
		return fmt.Errorf("%w: %w", ErrState, err)
	}
	return nil
}

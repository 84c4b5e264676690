package epaxos

import (
	"fmt"

	"github.com/blossom-dso/blossom/protocols/wire"
)

// Durable records. A replica persists the whole durable state of an
// instance (bal, abal, phase, value, deps, initial value and deps) every
// time it changes and before any message vouches for it; on restart it
// replays the records in order, the last one of an instance winning.
const recInstance byte = 1

// maxRecoveredInstances bounds what a (possibly corrupt) log may create.
const maxRecoveredInstances = 1 << 24

func instanceRecord(in *instance) []byte {
	rec, _ := instanceRecordWith(in, encodedDeps{})
	return rec
}

// encodedDeps is the encoding (appendDots) of the deps slice of, a piece of
// a record already persisted, which is never modified.
type encodedDeps struct {
	of  []Dot
	enc []byte
}

// instanceRecordWith is instanceRecord, copying the deps encoding from e
// when in.deps is the slice e encodes (an instance persisted again with the
// deps it had, as at Commit after PreAccept); it returns the record and the
// encoding of in.deps in it (of nil when deps are empty). The record is
// allocated once at its exact size. deps and initDeps are most often the
// same slice (the fast path): they are encoded once and copied.
func instanceRecordWith(in *instance, e encodedDeps) ([]byte, encodedDeps) {
	same := sameDots(in.deps, in.initDeps)
	cached := e.of != nil && sameSlice(e.of, in.deps)
	var dl int
	if cached {
		dl = len(e.enc)
	} else {
		dl = dotsLen(in.deps)
	}
	il := dl
	if !same {
		il = dotsLen(in.initDeps)
	}
	b := make([]byte, 0, 1+dotLen(in.dot)+wire.BallotLen(in.bal)+wire.BallotLen(in.abal)+1+
		valueLen(in.val)+dl+valueLen(in.init)+il)
	b = appendDot(append(b, recInstance), in.dot)
	b = wire.AppendBallot(b, in.bal)
	b = wire.AppendBallot(b, in.abal)
	b = append(b, byte(in.phase))
	b = appendValue(b, in.val)
	start := len(b)
	if cached {
		b = append(b, e.enc...)
	} else {
		b = appendDots(b, in.deps)
	}
	end := len(b)
	out := encodedDeps{}
	if len(in.deps) > 0 {
		out = encodedDeps{of: in.deps, enc: b[start:end:end]}
	}
	b = appendValue(b, in.init)
	if same {
		return append(b, b[start:end]...), out
	}
	return appendDots(b, in.initDeps), out
}

// sameSlice reports whether a and b are the same slice: same elements in
// memory, same length. Dependency sets are never modified in place, so the
// same slice holds the same dots.
func sameSlice(a, b []Dot) bool {
	return len(a) == len(b) && (len(a) == 0 || &a[0] == &b[0])
}

// decodeInstance decodes what instanceRecord wrote.
func decodeInstance(rec []byte) (*instance, error) {
	if len(rec) == 0 {
		return nil, fmt.Errorf("empty")
	}
	if rec[0] != recInstance {
		return nil, fmt.Errorf("unknown type %d", rec[0])
	}
	rd := wire.NewReader(rec[1:])
	bad := false
	in := &instance{dot: readDot(rd)}
	in.bal, in.abal = rd.Ballot(), rd.Ballot()
	in.phase = readPhase(rd, &bad)
	in.val = readValue(rd, &bad)
	in.deps = readDots(rd)
	in.init = readValue(rd, &bad)
	in.initDeps = readDots(rd)
	if err := rd.Done(); err != nil {
		return nil, err
	}
	if bad || !valid(in.dot) || in.bal.Less(in.abal) {
		return nil, fmt.Errorf("%w: inconsistent instance", wire.ErrMalformed)
	}
	return in, nil
}

// recover rebuilds instances from the records (after the checkpoint, if
// any), the last record of an instance winning.
func (r *Replica) recover(recs [][]byte) error {
	for i, rec := range recs {
		in, err := decodeInstance(rec)
		if err == nil {
			err = r.load(in)
		}
		if err != nil {
			return fmt.Errorf("epaxos: record %d: %w", i, err)
		}
	}
	return nil
}

// Package mcast holds what the atomic multicast protocols (wbcast and
// skeen) share: Skeen timestamps with their order and encoding, and the
// destination groups of a command.
package mcast

import (
	"slices"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/wire"
)

// TS is a timestamp: a clock counter and the group that assigned it,
// ordered lexicographically. Equal global timestamps tie-break on command
// ids (Before).
type TS struct {
	Counter uint64
	Group   protocols.GroupID
}

// Less orders timestamps by counter, then group.
func (t TS) Less(u TS) bool {
	if t.Counter != u.Counter {
		return t.Counter < u.Counter
	}
	return t.Group < u.Group
}

// Before is the delivery order of Skeen's algorithm: by global timestamp,
// then by command id.
func Before(t TS, id protocols.CommandID, u TS, jd protocols.CommandID) bool {
	if t != u {
		return t.Less(u)
	}
	return id.Less(jd)
}

// AppendTS appends a timestamp: counter, then group, as varints.
func AppendTS(b []byte, t TS) []byte {
	return wire.AppendUvarint(wire.AppendUvarint(b, t.Counter), uint64(t.Group))
}

// ReadTS reads a timestamp written by AppendTS; a group id above 32 bits is
// an error of r.
func ReadTS(r *wire.Reader) TS {
	c := r.Uvarint()
	return TS{Counter: c, Group: protocols.GroupID(r.NodeID())}
}

// Destinations returns the destination groups of c, sorted: the groups of
// its keys that exist in cfg.Groups, or own if none does.
func Destinations(cfg *protocols.Config, own protocols.GroupID, c protocols.Command) []protocols.GroupID {
	var out []protocols.GroupID
	for _, k := range c.Keys {
		g := cfg.GroupOf(k)
		if _, ok := cfg.Groups[g]; ok && !slices.Contains(out, g) {
			out = append(out, g)
		}
	}
	if len(out) == 0 {
		out = append(out, own)
	}
	slices.Sort(out)
	return out
}

// Groups returns the multicast groups of a deployment of groups groups of
// per replicas each, by consecutive ids: group g holds replicas g*per+1 ..
// g*per+per. The simulator and `blossom replica` lay groups out this way.
func Groups(groups, per int) map[protocols.GroupID][]protocols.NodeID {
	out := make(map[protocols.GroupID][]protocols.NodeID, groups)
	for g := range groups {
		for i := range per {
			out[protocols.GroupID(g)] = append(out[protocols.GroupID(g)], protocols.NodeID(g*per+i+1))
		}
	}
	return out
}

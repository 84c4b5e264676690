package epaxos_test

import (
	"fmt"
	"slices"
	"sync"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/epaxos"
)

// checkedName is epaxos registered once more, for the sweeps: every replica
// it builds is collected so that the agreement and visibility invariants
// (PROTOCOL-NOTES §1.7) can be checked over all replicas of a run, crashed
// incarnations included, once the run is over.
const checkedName = "epaxos-checked"

// collector groups replicas by run: the simulator hands every replica of a
// run the same Peers slice, and the collected replicas keep it alive, so
// the address of its first element names the run.
var collector = struct {
	sync.Mutex
	groups map[*protocols.NodeID][]*epaxos.Replica
	order  []*protocols.NodeID
}{groups: map[*protocols.NodeID][]*epaxos.Replica{}}

func init() {
	protocols.Register(checkedName, func(cfg protocols.Config) (protocols.Protocol, error) {
		r, err := epaxos.New(cfg)
		if err != nil {
			return nil, err
		}
		collector.Lock()
		defer collector.Unlock()
		k := &cfg.Peers[0]
		if _, ok := collector.groups[k]; !ok {
			collector.order = append(collector.order, k)
		}
		collector.groups[k] = append(collector.groups[k], r)
		return r, nil
	}, epaxos.Codec{})
}

// drainInvariants checks every collected run and forgets them; it returns
// one error per run that breaks an invariant.
func drainInvariants() (runs int, errs []error) {
	collector.Lock()
	defer collector.Unlock()
	for _, k := range collector.order {
		if err := checkInvariants(collector.groups[k]); err != nil {
			errs = append(errs, err)
		}
	}
	runs = len(collector.order)
	collector.groups = map[*protocols.NodeID][]*epaxos.Replica{}
	collector.order = nil
	return runs, errs
}

// checkInvariants checks, over the replicas (every incarnation) of one run,
// and over the commits that became durable:  abal <= bal; no replica saw two different commits of one instance;
// Agreement (every replica that committed an instance holds the same value
// and deps); Visibility (of two committed, conflicting, non-Nop instances,
// one is in the other's deps).
func checkInvariants(reps []*epaxos.Replica) error {
	type commit struct {
		node protocols.NodeID
		s    epaxos.InstanceState
	}
	all := map[epaxos.Dot]commit{}
	var dots []epaxos.Dot
	for i, r := range reps {
		if r.Violations > 0 {
			return fmt.Errorf("replica #%d saw %d disagreeing commits", i, r.Violations)
		}
		for _, d := range r.Dots() {
			s, _ := r.Instance(d)
			if s.Bal.Less(s.Abal) {
				return fmt.Errorf("replica #%d %v: abal %v above bal %v", i, d, s.Abal, s.Bal)
			}
			if s.Phase != epaxos.Committed || !s.Durable {
				continue // a commit lost with an unsynced tail never happened
			}
			prev, ok := all[d]
			if !ok {
				all[d] = commit{node: protocols.NodeID(i), s: s}
				dots = append(dots, d)
				continue
			}
			if prev.s.Val.Nop != s.Val.Nop || prev.s.Val.Cmd.ID != s.Val.Cmd.ID || !slices.Equal(prev.s.Deps, s.Deps) {
				return fmt.Errorf("agreement: %v committed as %+v %v and as %+v %v", d, prev.s.Val, prev.s.Deps, s.Val, s.Deps)
			}
		}
	}
	slices.SortFunc(dots, epaxos.Dot.Compare)
	byKey := map[string][]epaxos.Dot{}
	var keys []string
	for _, d := range dots {
		s := all[d].s
		if s.Val.Nop || !s.Val.Known {
			continue
		}
		for _, k := range s.Val.Cmd.Keys {
			if _, ok := byKey[k]; !ok {
				keys = append(keys, k)
			}
			byKey[k] = append(byKey[k], d)
		}
	}
	has := func(ds []epaxos.Dot, d epaxos.Dot) bool {
		_, ok := slices.BinarySearchFunc(ds, d, epaxos.Dot.Compare)
		return ok
	}
	for _, k := range keys {
		ds := byKey[k]
		for i, a := range ds {
			for _, b := range ds[i+1:] {
				if !has(all[a].s.Deps, b) && !has(all[b].s.Deps, a) {
					return fmt.Errorf("visibility: %v and %v (key %q) are committed and neither depends on the other", a, b, k)
				}
			}
		}
	}
	return nil
}

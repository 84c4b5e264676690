package simnet

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/blossom-dso/blossom/protocols"
)

// ErrFaults is wrapped by every error of ParseFaults.
var ErrFaults = errors.New("simnet: bad fault spec")

// FaultSpec says which faults a run injects. Faults are active only during
// the fault window (Config.FaultWindow); when it closes every partition and
// clog heals, message faults stop and every crashed node that may restart
// restarts.
type FaultSpec struct {
	// Swarm draws the fault mix and intensities from the seed; the other
	// fields are then ignored (Result.Faults reports what was drawn).
	Swarm bool
	// Loss is the probability that a message between distinct nodes is lost.
	Loss float64
	// Dup is the probability that such a message is delivered twice.
	Dup float64
	// Reorder is the probability that such a message gets an extra random
	// delay of up to twice the greatest one-way delay, reordering it.
	Reorder float64
	// Partition injects symmetric and one-way partitions that heal.
	Partition bool
	// Clog injects long extra delays on single links for a while.
	Clog bool
	// CrashStop crashes up to F nodes for good.
	CrashStop bool
	// CrashRestart crashes nodes and restarts them with every record they
	// persisted, synced or not (a process crash).
	CrashRestart bool
	// LostTail crashes nodes and restarts them with only the records whose
	// sync completed (a machine crash that loses the disk's unsynced tail).
	LostTail bool
	// AckCrash aims at replicas that answer before persisting: right after
	// a node that is not the leader releases a message to a peer (a vote,
	// an ack), it crashes and restarts at once with only its synced
	// records (sometimes every node but that peer does), and a moment
	// later the peer it answered (the proposer, the coordinator) crashes
	// for a few suspicion timeouts, so that the others recover without it
	// from what they made durable. See ackcrash.go. It combines with
	// Swarm ("swarm,ack-crash"): swarm draws the other faults as without
	// it, and AckCrash draws from a stream of its own.
	AckCrash bool
}

// None reports whether s injects no fault.
func (s FaultSpec) None() bool { return s == FaultSpec{} }

// ParseFaults parses a fault spec: "none", "swarm", or a comma list of
//
//	loss[=P]        message loss probability P (default 0.05)
//	dup[=P]         duplication probability P (default 0.01)
//	reorder[=P]     probability P of an extra reordering delay (default 0.2)
//	partition       symmetric and one-way partitions with heal times
//	clog            long extra delays on single links for a while
//	crash-stop      up to F nodes crash for good
//	crash-restart   nodes crash and restart with all persisted records
//	lost-tail       nodes crash and restart without their unsynced records
//	ack-crash       a node crashes right after it answers a peer, then that
//	                peer crashes (FaultSpec.AckCrash)
//
// Probabilities are in [0, 1] or a percentage such as 5%. "swarm" combines
// with ack-crash only: "swarm,ack-crash".
func ParseFaults(s string) (FaultSpec, error) {
	var f FaultSpec
	spec := strings.TrimSpace(s)
	switch spec {
	case "", "none":
		return f, nil
	case "swarm":
		return FaultSpec{Swarm: true}, nil
	}
	for _, item := range strings.Split(spec, ",") {
		item = strings.TrimSpace(item)
		name, val, hasVal := strings.Cut(item, "=")
		prob := func(def float64) (float64, error) {
			if !hasVal {
				return def, nil
			}
			return parseProb(val)
		}
		flag := func(p *bool) error {
			if hasVal {
				return fmt.Errorf("%q takes no value", name)
			}
			*p = true
			return nil
		}
		var err error
		switch name {
		case "loss":
			f.Loss, err = prob(0.05)
		case "dup":
			f.Dup, err = prob(0.01)
		case "reorder":
			f.Reorder, err = prob(0.2)
		case "partition":
			err = flag(&f.Partition)
		case "clog":
			err = flag(&f.Clog)
		case "crash-stop":
			err = flag(&f.CrashStop)
		case "crash-restart":
			err = flag(&f.CrashRestart)
		case "lost-tail":
			err = flag(&f.LostTail)
		case "ack-crash":
			err = flag(&f.AckCrash)
		case "swarm":
			err = flag(&f.Swarm)
		case "none":
			err = fmt.Errorf("%q cannot be combined with other faults", name)
		default:
			err = fmt.Errorf("unknown fault %q (known: loss, dup, reorder, partition, clog, crash-stop, crash-restart, lost-tail, ack-crash, or none, swarm)", name)
		}
		if err != nil {
			return FaultSpec{}, fmt.Errorf("%w: %q: %v", ErrFaults, s, err)
		}
	}
	if f.Swarm && f != (FaultSpec{Swarm: true, AckCrash: true}) {
		return FaultSpec{}, fmt.Errorf("%w: %q: swarm combines with ack-crash only", ErrFaults, s)
	}
	return f, nil
}

func parseProb(s string) (float64, error) {
	t := strings.TrimSpace(s)
	scale := 1.0
	if p, ok := strings.CutSuffix(t, "%"); ok {
		t, scale = p, 100
	}
	v, err := strconv.ParseFloat(t, 64)
	if err != nil {
		return 0, fmt.Errorf("probability %q is not a number", s)
	}
	v /= scale
	if !(v >= 0 && v <= 1) {
		return 0, fmt.Errorf("probability %q is outside [0, 1]", s)
	}
	return v, nil
}

// String formats s in the syntax ParseFaults accepts.
func (s FaultSpec) String() string {
	if s.Swarm {
		if s.AckCrash {
			return "swarm,ack-crash"
		}
		return "swarm"
	}
	var items []string
	p := func(name string, v float64) {
		if v > 0 {
			items = append(items, name+"="+strconv.FormatFloat(v, 'g', 4, 64))
		}
	}
	b := func(name string, v bool) {
		if v {
			items = append(items, name)
		}
	}
	p("loss", s.Loss)
	p("dup", s.Dup)
	p("reorder", s.Reorder)
	b("partition", s.Partition)
	b("clog", s.Clog)
	b("crash-stop", s.CrashStop)
	b("crash-restart", s.CrashRestart)
	b("lost-tail", s.LostTail)
	b("ack-crash", s.AckCrash)
	if len(items) == 0 {
		return "none"
	}
	return strings.Join(items, ",")
}

// drawSwarm draws a fault mix from r: each kind is on with probability 1/2,
// with intensities drawn too.
func drawSwarm(r *rand.Rand) FaultSpec {
	var f FaultSpec
	coin := func() bool { return r.IntN(2) == 0 }
	if coin() {
		f.Loss = 0.001 + 0.099*r.Float64()
	}
	if coin() {
		f.Dup = 0.001 + 0.049*r.Float64()
	}
	if coin() {
		f.Reorder = 0.05 + 0.45*r.Float64()
	}
	f.Partition = coin()
	f.Clog = coin()
	f.CrashStop = coin()
	f.CrashRestart = coin()
	f.LostTail = coin()
	return f
}

// CrashKind says how a node crashes.
type CrashKind uint8

// The crash kinds.
const (
	// CrashStop: the node never comes back.
	CrashStop CrashKind = iota + 1
	// CrashRestart: the node restarts with every record it persisted.
	CrashRestart
	// CrashLostTail: the node restarts with only its synced records.
	CrashLostTail
)

func (k CrashKind) String() string {
	switch k {
	case CrashStop:
		return "crash-stop"
	case CrashRestart:
		return "crash-restart"
	case CrashLostTail:
		return "lost-tail"
	}
	return "crash?"
}

// Crash is one scripted crash (Config.Crashes). Scripted crashes are not
// bound by the fault window or by F.
type Crash struct {
	// At is the virtual time of the crash in microseconds.
	At int64
	// Node crashes.
	Node protocols.NodeID
	// Kind is how it crashes.
	Kind CrashKind
	// RestartAt is when it restarts (not for CrashStop); 0 means at the end
	// of the fault window, or right away if that has passed.
	RestartAt int64
}

// faultKind is the kind of a planned fault event.
type faultKind uint8

const (
	fkCrash faultKind = iota + 1
	fkRestart
	fkPartition
	fkHeal
	fkClog
	fkUnclog
)

// fault is one planned fault; a start and an end event refer to it.
type fault struct {
	kind  faultKind // fkCrash, fkPartition, fkClog
	crash CrashKind
	node  int    // crash: node index
	cut   []bool // partition: n*n links cut (from*n+to)
	extra int64  // clog: extra delay on the links in cut
	start int64
	end   int64 // restart/heal time; -1 for never
	// scripted crashes (Config.Crashes) ignore the fault window
	scripted bool
}

// planFaults draws the timed faults (partitions, clogs, crashes) of spec
// within [0, window) from r. It never crash-stops more than f nodes and
// never has more than f nodes down at once.
func planFaults(r *rand.Rand, spec FaultSpec, n, f int, window, unit int64) []fault {
	var out []fault
	if window <= 0 || n < 2 {
		return out
	}
	span := func() (int64, int64) {
		start := r.Int64N(window * 8 / 10)
		d := window/20 + r.Int64N(window/5+1)
		return start, min(start+d, window)
	}
	if spec.Partition {
		for range 1 + r.IntN(3) {
			start, end := span()
			side := make([]bool, n)
			for {
				any0, any1 := false, false
				for i := range side {
					side[i] = r.IntN(2) == 0
					any0 = any0 || !side[i]
					any1 = any1 || side[i]
				}
				if any0 && any1 {
					break
				}
			}
			oneWay := r.IntN(2) == 0
			cut := make([]bool, n*n)
			for i := range n {
				for j := range n {
					if side[i] != side[j] && (!oneWay || side[i]) {
						cut[i*n+j] = true
					}
				}
			}
			out = append(out, fault{kind: fkPartition, cut: cut, start: start, end: end})
		}
	}
	if spec.Clog {
		for range 1 + r.IntN(3) {
			start, end := span()
			i := r.IntN(n)
			j := (i + 1 + r.IntN(n-1)) % n
			cut := make([]bool, n*n)
			cut[i*n+j] = true
			if r.IntN(2) == 0 {
				cut[j*n+i] = true
			}
			out = append(out, fault{kind: fkClog, cut: cut, extra: unit * int64(2+r.IntN(20)), start: start, end: end})
		}
	}
	if f < 1 {
		return out
	}
	var kinds []CrashKind
	if spec.CrashStop {
		for range 1 + r.IntN(f) {
			kinds = append(kinds, CrashStop)
		}
	}
	if spec.CrashRestart {
		for range 1 + r.IntN(3) {
			kinds = append(kinds, CrashRestart)
		}
	}
	if spec.LostTail {
		for range 1 + r.IntN(3) {
			kinds = append(kinds, CrashLostTail)
		}
	}
	r.Shuffle(len(kinds), func(i, j int) { kinds[i], kinds[j] = kinds[j], kinds[i] })
	var crashes []fault
	for _, k := range kinds {
		for range 20 { // attempts
			start, end := span()
			if k == CrashStop {
				end = -1
			}
			c := fault{kind: fkCrash, crash: k, node: r.IntN(n), start: start, end: end}
			if crashFits(crashes, c, f) {
				crashes = append(crashes, c)
				break
			}
		}
	}
	return append(out, crashes...)
}

// overlaps reports whether crash intervals a and b overlap (end -1 is
// forever).
func overlaps(a, b fault) bool {
	aEnd, bEnd := a.end, b.end
	return (aEnd < 0 || b.start < aEnd) && (bEnd < 0 || a.start < bEnd)
}

// crashFits reports whether c can join the accepted crashes: its node is up
// throughout, and at no instant are more than f nodes down.
func crashFits(accepted []fault, c fault, f int) bool {
	points := []int64{c.start}
	for _, a := range accepted {
		if !overlaps(a, c) {
			continue
		}
		if a.node == c.node {
			return false
		}
		if a.start > c.start {
			points = append(points, a.start)
		}
	}
	for _, p := range points {
		down := 1
		for _, a := range accepted {
			if a.start <= p && (a.end < 0 || p < a.end) {
				down++
			}
		}
		if down > f {
			return false
		}
	}
	return true
}

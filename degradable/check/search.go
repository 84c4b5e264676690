package check

import (
	"encoding/binary"
	"fmt"
	"slices"
	"strings"
)

// scOp is one operation of a client's program for the exact search of a
// sequentially consistent order: step applies it to a state and reports
// whether the result recorded for it is what the sequential specification
// returns there. A read never changes the state.
type scOp[S any] struct {
	read bool
	at   int64 // invocation, to try the operations in a likely order first
	name string
	step func(S) (bool, S)
}

// searchSC decides whether the programs (one per client, in program order)
// can be interleaved into one order in which every operation returns what
// it recorded, starting from init. It is a depth-first search over
// (frontier, state), memoised on key(state) and the frontier, that takes
// every enabled read at once (a read that can return its result now can be
// moved to now in any witness, as it changes nothing). It visits at most
// budget states, and returns an error wrapping ErrUndecided beyond. If
// viable is not nil, a state (with the frontier pos: the next operation of
// each client) for which it returns false is known to lead nowhere and is
// not explored.
func searchSC[S any](progs [][]scOp[S], init S, key func(S) string, viable func(S, []int) bool, budget int) error {
	s := &searcher[S]{progs: progs, key: key, viable: viable, pos: make([]int, len(progs)), seen: make(map[string]struct{}), budget: budget}
	found, err := s.dfs(init)
	switch {
	case err != nil:
		return err
	case found:
		return nil
	}
	var stuck []string
	for c, p := range s.progs {
		if i := s.bestPos[c]; i < len(p) {
			stuck = append(stuck, fmt.Sprintf("client %d at %s", c, p[i].name))
		}
	}
	const show = 4
	if len(stuck) > show {
		stuck = append(stuck[:show], fmt.Sprintf("and %d more", len(stuck)-show))
	}
	return violation("no order of the operations consistent with every client's program order explains every result (searched %d states); the longest prefix found takes %d of %d operations, then none of these can go next: %s",
		len(s.seen), s.best, s.total(), strings.Join(stuck, ", "))
}

type searcher[S any] struct {
	progs   [][]scOp[S]
	key     func(S) string
	viable  func(S, []int) bool
	pos     []int
	seen    map[string]struct{}
	budget  int
	best    int
	bestPos []int
	buf     []byte
}

func (s *searcher[S]) total() int {
	n := 0
	for _, p := range s.progs {
		n += len(p)
	}
	return n
}

func (s *searcher[S]) dfs(st S) (bool, error) {
	var taken []int
	defer func() {
		for _, c := range taken {
			s.pos[c]--
		}
	}()
	for progress := true; progress; {
		progress = false
		for c, p := range s.progs {
			for s.pos[c] < len(p) && p[s.pos[c]].read {
				if ok, _ := p[s.pos[c]].step(st); !ok {
					break
				}
				s.pos[c]++
				taken = append(taken, c)
				progress = true
			}
		}
	}
	done, n := true, 0
	for c, p := range s.progs {
		done = done && s.pos[c] == len(p)
		n += s.pos[c]
	}
	if done {
		return true, nil
	}
	if n > s.best || s.bestPos == nil {
		s.best, s.bestPos = n, slices.Clone(s.pos)
	}
	s.buf = s.buf[:0]
	for _, p := range s.pos {
		s.buf = binary.AppendUvarint(s.buf, uint64(p))
	}
	k := string(s.buf) + s.key(st)
	if _, ok := s.seen[k]; ok {
		return false, nil
	}
	if len(s.seen) >= s.budget {
		return false, undecided("the search for a sequentially consistent order visited %d states without a verdict", len(s.seen))
	}
	s.seen[k] = struct{}{}
	var next []int
	for c, p := range s.progs {
		if s.pos[c] < len(p) && !p[s.pos[c]].read {
			next = append(next, c)
		}
	}
	slices.SortFunc(next, func(a, b int) int {
		return cmpInt(s.progs[a][s.pos[a]].at, s.progs[b][s.pos[b]].at)
	})
	for _, c := range next {
		ok, after := s.progs[c][s.pos[c]].step(st)
		if !ok {
			continue
		}
		s.pos[c]++
		if s.viable != nil && !s.viable(after, s.pos) {
			s.pos[c]--
			continue
		}
		found, err := s.dfs(after)
		s.pos[c]--
		if found || err != nil {
			return found, err
		}
	}
	return false, nil
}

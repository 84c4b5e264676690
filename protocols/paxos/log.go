package paxos

// logPage is the number of entries in one page of the log.
const logPage = 256

// slotLog is the log of slots above the compaction point: entry i is
// slot base+i+1. It grows by pages of logPage entries that never move, so
// that a growing log is neither copied nor allocated twice over, and drops
// whole pages from its front as it is truncated.
type slotLog struct {
	pages []*[logPage]entry
	off   int // index in pages[0] of entry 0
	n     int // number of entries
}

// logOf returns a log holding es (for tests).
func logOf(es ...entry) slotLog {
	var l slotLog
	for _, e := range es {
		*l.grow() = e
	}
	return l
}

// len is the number of entries.
func (l *slotLog) len() int { return l.n }

// at returns entry i, 0 <= i < len.
func (l *slotLog) at(i int) *entry {
	j := l.off + i
	return &l.pages[j/logPage][j%logPage]
}

// grow appends a zero entry and returns it.
func (l *slotLog) grow() *entry {
	j := l.off + l.n
	if j/logPage == len(l.pages) {
		l.pages = append(l.pages, pageStock.get())
	}
	l.n++
	return &l.pages[j/logPage][j%logPage]
}

// dropFront removes the first k entries, k <= len.
func (l *slotLog) dropFront(k int) {
	for i := range k {
		*l.at(i) = entry{}
	}
	l.off += k
	l.n -= k
	if l.n == 0 {
		*l = slotLog{}
		return
	}
	if p := l.off / logPage; p > 0 {
		clear(l.pages[:p])
		l.pages = l.pages[p:]
		l.off %= logPage
	}
}

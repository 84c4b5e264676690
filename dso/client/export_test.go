package client

import (
	"time"

	"github.com/blossom-dso/blossom/internal/sockio"
)

// ProbeClock makes the watchdog of every connection of a Client dialled
// with o check at each tick of tick instead of every ProbeInterval, and
// report each check's outcome ("quiet", "probe" or "fail") to events.
func ProbeClock(o *Options, tick <-chan time.Time, events chan<- string) {
	o.probeTick, o.probeEvents = tick, events
}

// FramesRead returns the number of frames read by c's current connections.
func FramesRead(c *Client) uint64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	var n uint64
	for _, nd := range c.nodes {
		for _, s := range nd.conns {
			s.mu.Lock()
			if s.cn != nil {
				n += s.cn.reads.Load()
			}
			s.mu.Unlock()
		}
	}
	return n
}

// ReadHook makes the read loop of every connection of a Client dialled
// with o call hook with the outcome of each frame read (nil, or the read's
// error) before it acts on it.
func ReadHook(o *Options, hook func(err error)) { o.readHook = hook }

// Pending returns the number of calls waiting for an answer on c's
// current connections.
func Pending(c *Client) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, nd := range c.nodes {
		for _, s := range nd.conns {
			s.mu.Lock()
			if s.cn != nil {
				s.cn.mu.Lock()
				n += len(s.cn.pending)
				s.cn.mu.Unlock()
			}
			s.mu.Unlock()
		}
	}
	return n
}

// SocketReads returns the read system calls made so far by the
// sockio.Sockets of c's current connections, and how many of them have
// one.
func SocketReads(c *Client) (reads int64, conns int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, nd := range c.nodes {
		for _, s := range nd.conns {
			s.mu.Lock()
			if s.cn != nil && s.cn.sock != nil {
				reads += s.cn.sock.Reads()
				conns++
			}
			s.mu.Unlock()
		}
	}
	return reads, conns
}

// SetPlainSocketReads makes connections dialled from now on, by clients
// and servers alike, read through their net.Conn (on) or, on Linux,
// through a sockio.Socket (off, the default).
func SetPlainSocketReads(on bool) { sockio.SetDisabled(on) }

// IdleCheck makes the connections of a Client dialled with o read what
// their server sent while they were idle before a call once they have
// idled for d (negative: never).
func IdleCheck(o *Options, d time.Duration) { o.idleCheck = d }

package client

import "time"

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

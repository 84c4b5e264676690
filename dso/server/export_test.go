package server

import "github.com/blossom-dso/blossom/internal/sockio"

// SetPlainSocketReads makes connections accepted from now on read through
// their net.Conn (on) or, on Linux, through a sockio.Socket (off, the
// default).
func SetPlainSocketReads(on bool) { sockio.SetDisabled(on) }

// SocketReads returns the read system calls made so far by the sockio.Sockets
// of s's open connections, and how many of them have one.
func SocketReads(s *Server) (reads int64, conns int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.sock != nil {
			reads += c.sock.Reads()
			conns++
		}
	}
	return reads, conns
}

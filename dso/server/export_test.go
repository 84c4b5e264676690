package server

// SetPlainSocketReads makes connections accepted from now on read through
// their net.Conn (on) or, on Linux, through sockReader (off, the default).
func SetPlainSocketReads(on bool) { plainSocketReads.Store(on) }

// SocketReads returns the read system calls made so far by the sockReaders
// of s's open connections, and how many of them have one.
func SocketReads(s *Server) (reads int64, conns int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		if c.sock != nil {
			reads += c.sock.reads.Load()
			conns++
		}
	}
	return reads, conns
}

package sshell

import (
	"bytes"
	"io"
	"sync"
)

// pipeBuf is POSIX PIPE_BUF on Linux: a write of at most this many bytes
// to a pipe is not interleaved with other writers'.
const pipeBuf = 4096

// lineWriter writes whole lines to w, at most pipeBuf bytes per write
// when the lines allow, holding a trailing partial line until its newline
// or Flush. Many sshell processes writing to one pipe (deliverable
// Figure 9: sshell ... & in a loop piped to awk) thus interleave whole
// lines, not pieces of lines. mu serializes the writers that share w.
type lineWriter struct {
	mu      *sync.Mutex
	w       io.Writer
	pending []byte
}

func (l *lineWriter) Write(b []byte) {
	l.pending = append(l.pending, b...)
	cut := bytes.LastIndexByte(l.pending, '\n')
	if cut < 0 {
		return
	}
	l.emit(l.pending[:cut+1])
	l.pending = append(l.pending[:0], l.pending[cut+1:]...)
}

// Flush writes the partial line held.
func (l *lineWriter) Flush() {
	if len(l.pending) > 0 {
		l.emit(l.pending)
		l.pending = l.pending[:0]
	}
}

// emit writes b in pieces of whole lines of at most pipeBuf bytes (a
// longer line alone, in pipeBuf pieces).
func (l *lineWriter) emit(b []byte) {
	if l.w == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	for len(b) > 0 {
		n := len(b)
		if n > pipeBuf {
			n = bytes.LastIndexByte(b[:pipeBuf], '\n') + 1
			if n == 0 {
				n = pipeBuf
			}
		}
		l.w.Write(b[:n])
		b = b[n:]
	}
}

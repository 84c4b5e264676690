// Package loopback hands tests loopback addresses for servers that bind
// them later (real processes, or servers started after their peers' lists
// are known).
//
// An address picked by listening on port 0 and closing the listener lies in
// the kernel's ephemeral range, where any outgoing connection made before
// the server binds may take it ("address already in use"). FreeAddrs picks
// ports below that range instead, which the kernel never hands to outgoing
// connections, and never the same port twice in one process.
package loopback

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// The ports FreeAddrs draws from: below Linux's default ephemeral range
// (32768–60999) and above the well-known and common service ports.
const (
	lowPort  = 20000
	highPort = 32000
)

var (
	mu   sync.Mutex
	next = lowPort + rand.IntN(highPort-lowPort)
	used = map[int]bool{}
)

// FreeAddrs returns n loopback addresses (127.0.0.1:port) that were free a
// moment ago and that no outgoing connection can take meanwhile. It fails
// the test if it cannot find them.
func FreeAddrs(t testing.TB, n int) []string {
	t.Helper()
	mu.Lock()
	defer mu.Unlock()
	var out []string
	for tries := 0; len(out) < n; tries++ {
		if tries > highPort-lowPort {
			t.Fatalf("loopback: no free port in %d..%d", lowPort, highPort)
		}
		p := next
		next++
		if next >= highPort {
			next = lowPort
		}
		if used[p] {
			continue
		}
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		l, err := net.Listen("tcp", addr)
		if err != nil {
			continue
		}
		l.Close()
		used[p] = true
		out = append(out, addr)
	}
	return out
}

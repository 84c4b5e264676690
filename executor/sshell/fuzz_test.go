package sshell

import (
	"strings"
	"testing"
)

// FuzzSplitPipeline: any input splits without panicking into non-empty,
// trimmed stages that appear in order in the input, and a command
// without a '|' is never split.
func FuzzSplitPipeline(f *testing.F) {
	for _, s := range []string{"a | b", `echo "$(x | y)" | z`, "{ a; } | b", "a || b", "a 2>&1 | b", "'|'|x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, cmd string) {
		st := SplitPipeline(cmd)
		if len(st) == 0 {
			t.Fatalf("%q: no stages", cmd)
		}
		if len(st) == 1 {
			if st[0] != cmd {
				t.Fatalf("%q: one stage %q is not the command", cmd, st[0])
			}
			return
		}
		rest := cmd
		for _, s := range st {
			if s == "" || s != strings.TrimSpace(s) {
				t.Fatalf("%q: stage %q", cmd, s)
			}
			i := strings.Index(rest, s)
			if i < 0 {
				t.Fatalf("%q: stage %q not in order", cmd, s)
			}
			rest = rest[i+len(s):]
		}
	})
}

// FuzzChunk: a stream value decodes to stdout or stderr bytes or is an
// error, never a panic.
func FuzzChunk(f *testing.F) {
	f.Add(int64(1), []byte("out"), true)
	f.Add(int64(3), []byte{}, false)
	f.Fuzz(func(t *testing.T, fd int64, b []byte, list bool) {
		var v any = []any{fd, b}
		if !list {
			v = b
		}
		gfd, gb, err := chunk(v)
		if err == nil && (!list || gfd != fd || string(gb) != string(b) || (fd != Stdout && fd != Stderr)) {
			t.Fatalf("chunk(%v) = %d, %q", v, gfd, gb)
		}
		if err != nil && list && (fd == Stdout || fd == Stderr) {
			t.Fatalf("chunk(%v): %v", v, err)
		}
	})
}

package sshell

import (
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestSplitPipeline(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"seq 1 10 | wc -l", []string{"seq 1 10", "wc -l"}},
		{"a|b|c", []string{"a", "b", "c"}},
		{"curl -s x | 2>/dev/null zcat -q | grep ^Content-Length ", []string{"curl -s x", "2>/dev/null zcat -q", "grep ^Content-Length"}},
		{`echo 'a|b' | tr a b`, []string{`echo 'a|b'`, "tr a b"}},
		{`echo "x $(echo "a|b") y" | cat`, []string{`echo "x $(echo "a|b") y"`, "cat"}},
		{"echo $(seq 3 | wc -l) | cat", []string{"echo $(seq 3 | wc -l)", "cat"}},
		{"(a; b) | c", []string{"(a; b)", "c"}},
		{`{ sed "/EOF/ q" && kill $! ;} | grep -v x`, []string{`{ sed "/EOF/ q" && kill $! ;}`, "grep -v x"}},
		{"cmd 2>&1 | cat", []string{"cmd 2>&1", "cat"}},
		{"echo a\\|b | cat", []string{"echo a\\|b", "cat"}},
		{"echo `ls | wc -l` | cat", []string{"echo `ls | wc -l`", "cat"}},
		// Not plain pipelines: run whole.
		{"echo a | b; c", nil},
		{"a || b", nil},
		{"a |& b", nil},
		{"a && b | c", nil},
		{"a | b &", nil},
		{"a | b\nc", nil},
		{"a | b # c", nil},
		{"a |", nil},
		{"| a", nil},
		{"a | | b", nil},
		{"echo 'a | b", nil},
		{`echo "a | b`, nil},
		{"echo $(a | b", nil},
		{"a ) | b", nil},
		{"{ a | b; }", nil},
		{"counter -n c increment -i 5", nil},
		{`tail --pid=$$ -f x | { sed "/EOF/ q" && kill $$ ;} | wc -l`, nil},
	} {
		want := tc.want
		if want == nil {
			want = []string{tc.in}
		}
		require.Equal(t, want, SplitPipeline(tc.in), "%q", tc.in)
	}
}

type writes struct{ got []string }

func (w *writes) Write(b []byte) (int, error) { w.got = append(w.got, string(b)); return len(b), nil }

func TestLineWriter(t *testing.T) {
	var w writes
	var mu sync.Mutex
	l := &lineWriter{mu: &mu, w: &w}
	l.Write([]byte("ab"))
	require.Empty(t, w.got, "a partial line waits")
	l.Write([]byte("c\nde\nf"))
	require.Equal(t, []string{"abc\nde\n"}, w.got)
	long := strings.Repeat("x", 3000) + "\n"
	l.Write([]byte(long + long + strings.Repeat("y", 5000) + "\nz"))
	require.Equal(t, []string{"abc\nde\n", "f" + long, long, strings.Repeat("y", 4096), strings.Repeat("y", 5000-4096) + "\n"}, w.got)
	l.Flush()
	require.Equal(t, "z", w.got[len(w.got)-1])
	for _, s := range w.got {
		require.LessOrEqual(t, len(s), 4096)
	}
}

package lincheck

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
)

// hardHistory is not linearizable, but only an exhaustive search shows it:
// n concurrent puts of distinct values may be linearized in n! orders, and a
// get concurrent with all of them returns a value nobody wrote.
func hardHistory(n int) []porcupine.Operation {
	ops := []porcupine.Operation{op(n, 0, 1000, get("x"), got(uint64(n+1)))}
	for i := range n {
		ops = append(ops, op(i, 0, 1000, put("x", uint64(i+1)), nil))
	}
	return ops
}

func TestCheckTimeoutIsUnknownAndNotAPass(t *testing.T) {
	t.Parallel()
	start := time.Now()
	res := Check(KVModel, hardHistory(40), 50*time.Millisecond)
	require.Less(t, time.Since(start), 5*time.Second)
	require.Equal(t, Unknown, res.Verdict)
	require.ErrorIs(t, res.Err(), ErrUnknown)
	require.NotErrorIs(t, res.Err(), ErrIllegal)
	require.Contains(t, res.Err().Error(), "timed out after 50ms on 41 operations")
	require.NoError(t, res.WriteHTML(filepath.Join(t.TempDir(), "unknown.html")))
}

func TestCheckSmallHardHistoryIsIllegal(t *testing.T) {
	t.Parallel()
	res := Check(KVModel, hardHistory(6), testTimeout)
	require.Equal(t, Illegal, res.Verdict)
}

func TestCheckWithoutTimeoutUsesTheDefault(t *testing.T) {
	t.Parallel()
	res := Check(KVModel, nil, 0)
	require.Equal(t, Ok, res.Verdict)
	require.Equal(t, DefaultTimeout, res.Timeout)
	require.NoError(t, res.Err())
}

func TestZeroResultIsNotAPass(t *testing.T) {
	t.Parallel()
	require.ErrorIs(t, Result{}.Err(), ErrUnknown)
	require.Error(t, Result{}.WriteHTML(filepath.Join(t.TempDir(), "zero.html")))
}

func TestIllegalErrNamesTheViolation(t *testing.T) {
	t.Parallel()
	res := Check(KVModel, []porcupine.Operation{
		op(0, 0, 10, put("y", 1), nil),
		op(0, 0, 10, put("x", 1), nil),
		op(0, 20, 30, put("x", 2), nil),
		op(1, 40, 50, get("x"), got(1)),
	}, testTimeout)
	require.Equal(t, Illegal, res.Verdict)
	require.Equal(t, 2, res.Partitions)
	require.Equal(t, 4, res.Operations)
	err := res.Err()
	require.ErrorIs(t, err, ErrIllegal)
	require.EqualError(t, err, "lincheck: history is not linearizable (illegal): 4 operations in 2 partitions; "+
		"partition 1 (3 operations): the longest partial linearization has 2, and cannot be extended with get(x) → 1 (client 1, 40..50)")
}

func TestIllegalErrNamesTheOperationsLeftOver(t *testing.T) {
	t.Parallel()
	res := Check(CASModel, []porcupine.Operation{
		op(0, 0, 10, cas("k", 0, 1), swapped(true)),
		op(1, 5, 15, cas("k", 0, 2), swapped(true)),
		infoOp(2, 3, casWrite("k", 5)),
	}, testTimeout)
	require.Equal(t, Illegal, res.Verdict)
	require.Regexp(t, `partition 0 \(3 operations\): the longest partial linearization has 2, and cannot be extended with `+
		`cas\(k, 0, [12]\) → true \(client [01], [05]\.\.1[05]\)$`, res.Err().Error())
}

func TestWriteHTMLShowsTheHistory(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ops  []porcupine.Operation
		want Verdict
	}{
		{"ok", []porcupine.Operation{
			op(0, 0, 10, put("x", 1), nil),
			op(1, 20, 30, get("x"), got(1)),
			infoOp(2, 5, put("x", 7)),
		}, Ok},
		{"illegal", []porcupine.Operation{
			op(0, 0, 10, put("x", 1), nil),
			op(1, 20, 30, get("x"), got(0)),
			infoOp(2, 5, put("x", 7)),
		}, Illegal},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := Check(KVModel, tc.ops, testTimeout)
			require.Equal(t, tc.want, res.Verdict)
			path := filepath.Join(t.TempDir(), tc.name+".html")
			require.NoError(t, res.WriteHTML(path))
			html, err := os.ReadFile(path)
			require.NoError(t, err)
			page := string(html)
			require.Contains(t, page, "<html")
			require.Contains(t, page, "Porcupine")
			require.Contains(t, page, `"put(x, 1)"`)
			require.Contains(t, page, `"put(x, 7) → ?"`)
			require.Contains(t, page, `"StateDescription":"1"`)
			if tc.want == Ok {
				require.Contains(t, page, `"get(x) → 1"`)
			} else {
				require.Contains(t, page, `"get(x) → 0"`)
			}
		})
	}
}

func TestWriteHTMLReportsAnUnwritablePath(t *testing.T) {
	t.Parallel()
	res := Check(KVModel, nil, testTimeout)
	err := res.WriteHTML(filepath.Join(t.TempDir(), "missing", "dir", "x.html"))
	require.ErrorContains(t, err, "lincheck: write visualization")
}

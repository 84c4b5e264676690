package lincheck

import (
	"compress/gzip"
	"encoding/json"
	"flag"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
)

var porcupineTimeout = flag.Duration("porcupine-timeout", 0,
	"TestHardHistoryReport: also run Porcupine on the hard history with this timeout (0: skip it); BenchmarkHardHistory/porcupine: its timeout (0: DefaultTimeout)")

// hardOp is one operation of testdata/hard-history.json.gz, as
// hardgen_test.go writes it.
type hardOp struct {
	Client int    `json:"client"`
	Key    string `json:"key"`
	Put    bool   `json:"put,omitempty"`
	Value  uint64 `json:"value,omitempty"`
	Call   int64  `json:"call"`
	Return int64  `json:"return"`
	Output uint64 `json:"output,omitempty"`
	Info   bool   `json:"info,omitempty"`
}

// contendedHistory returns the history of `blossom sim --protocol paxos
// --nodes 5 --clients 40 --keys 2 --conflict 100 --ops 3000 --faults swarm
// --seed 1`, recorded as simnet's Result.Operations records it, and its raw
// operations.
func contendedHistory(tb testing.TB) ([]porcupine.Operation, []hardOp) {
	tb.Helper()
	f, err := os.Open("testdata/hard-history.json.gz")
	require.NoError(tb, err)
	defer f.Close()
	zr, err := gzip.NewReader(f)
	require.NoError(tb, err)
	var raw []hardOp
	require.NoError(tb, json.NewDecoder(zr).Decode(&raw))
	require.Len(tb, raw, 3000)
	return recordHard(raw), raw
}

// recordHard turns raw operations into a history, as simnet does.
func recordHard(raw []hardOp) []porcupine.Operation {
	rec := NewRecorder()
	for _, o := range raw {
		id := rec.Invoke(o.Client, KVInput{Key: o.Key, Put: o.Put, Value: o.Value}, o.Call)
		if o.Info {
			rec.Info(id)
		} else {
			rec.Ok(id, KVOutput{Value: o.Output}, o.Return)
		}
	}
	return rec.Operations()
}

// TestHardHistoryReport decides the contended history (40 clients, 2 keys,
// 3,000 operations, all conflicting, swarm faults) with CheckKV, which must
// find it linearizable with the unique-values checker, and a copy with a
// planted stale read, which must be illegal. It logs the times; with
// -porcupine-timeout it also runs Porcupine on the same history and logs
// its verdict and time:
//
//	go test -run TestHardHistoryReport -v -porcupine-timeout=2m ./lincheck/
func TestHardHistoryReport(t *testing.T) {
	ops, raw := contendedHistory(t)
	res := CheckKV(ops, time.Minute)
	require.Equal(t, CheckerUniqueValues, res.Checker)
	require.Equal(t, Ok, res.Verdict, "err: %v", res.Err())
	require.Equal(t, 2, res.Partitions)
	t.Logf("contended history: %d operations, %d keys: %s says %s in %v", res.Operations, res.Partitions, res.Checker, res.Verdict, res.Elapsed)

	// Plant a stale read: a late get reads the first value its key was given.
	bad := slices.Clone(raw)
	first := map[string]uint64{}
	for _, o := range bad {
		if o.Put && first[o.Key] == 0 {
			first[o.Key] = o.Value
		}
	}
	for i := len(bad) - 1; ; i-- {
		if o := &bad[i]; !o.Put && !o.Info && o.Output != first[o.Key] {
			o.Output = first[o.Key]
			break
		}
	}
	start := time.Now()
	bres := CheckKV(recordHard(bad), time.Second) // the timeout bounds Porcupine's drawing of the failing key
	require.Equal(t, Illegal, bres.Verdict)
	require.ErrorContains(t, bres.Err(), "must each take effect before the other")
	t.Logf("with a planted stale read: %s says %s in %v (with Porcupine's drawing of the failing key): %v", bres.Checker, bres.Verdict, time.Since(start), bres.Err())

	if *porcupineTimeout <= 0 {
		t.Logf("Porcupine skipped: pass -porcupine-timeout=2m to compare")
		return
	}
	pres := Check(KVModel, ops, *porcupineTimeout)
	require.NotEqual(t, Illegal, pres.Verdict, "Porcupine disagrees: %v", pres.Err())
	t.Logf("contended history: Porcupine says %s in %v (timeout %v)", pres.Verdict, pres.Elapsed, *porcupineTimeout)
}

// BenchmarkHardHistory times both checkers on the contended history, and
// reports each run's verdict as the metric "ok" (1 for Ok, 0 for Illegal, -1 for
// Unknown). Porcupine runs with -porcupine-timeout (DefaultTimeout if 0):
//
//	go test -run '^$' -bench HardHistory -benchtime 1x -cpu 1 ./lincheck/
func BenchmarkHardHistory(b *testing.B) {
	ops, _ := contendedHistory(b)
	verdict := map[Verdict]float64{Ok: 1, Illegal: 0, Unknown: -1}
	b.Run("unique-values", func(b *testing.B) {
		var res Result
		for b.Loop() {
			res = CheckUniqueKV(ops, time.Minute)
		}
		b.ReportMetric(verdict[res.Verdict], "ok")
	})
	b.Run("porcupine", func(b *testing.B) {
		timeout := *porcupineTimeout
		if timeout <= 0 {
			timeout = DefaultTimeout
		}
		var res Result
		for b.Loop() {
			res = Check(KVModel, ops, timeout)
		}
		b.ReportMetric(verdict[res.Verdict], "ok")
		b.ReportMetric(timeout.Seconds(), "timeout-s")
	})
}

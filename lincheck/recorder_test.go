package lincheck

import (
	"sync"
	"testing"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
)

func TestRecorderOperationsFollowJepsenCompletions(t *testing.T) {
	t.Parallel()
	rec := NewRecorder()
	okID := rec.Invoke(0, put("x", 1), 0)
	failID := rec.Invoke(1, put("x", 2), 5)
	infoID := rec.Invoke(2, put("x", 3), 6)
	infoGet := rec.Invoke(3, get("x"), 7)
	pendingPut := rec.Invoke(4, put("x", 4), 8)
	rec.Invoke(5, get("x"), 9) // pending get
	rec.Ok(okID, nil, 10)
	rec.Fail(failID)
	rec.Info(infoID)
	rec.Info(infoGet)
	_ = pendingPut
	okGet := rec.Invoke(0, get("x"), 20)
	rec.Ok(okGet, got(1), 30)

	end := int64(31) // one past the greatest timestamp
	require.Equal(t, []porcupine.Operation{
		{ClientId: 0, Input: put("x", 1), Call: 0, Output: nil, Return: 10},
		{ClientId: 2, Input: put("x", 3), Call: 6, Output: UnknownOutcome{}, Return: end},
		{ClientId: 4, Input: put("x", 4), Call: 8, Output: UnknownOutcome{}, Return: end},
		{ClientId: 0, Input: get("x"), Call: 20, Output: got(1), Return: 30},
	}, rec.Operations())
	require.Equal(t, Ok, Check(KVModel, rec.Operations(), testTimeout).Verdict)
}

func TestRecorderOperationsIsASnapshot(t *testing.T) {
	t.Parallel()
	rec := NewRecorder()
	id := rec.Invoke(0, put("x", 1), 0)
	before := rec.Operations()
	rec.Ok(id, nil, 10)
	require.Equal(t, UnknownOutcome{}, before[0].Output)
	require.Equal(t, int64(1), before[0].Return)
	require.Equal(t, int64(10), rec.Operations()[0].Return)
}

func TestRecorderIsSafeForConcurrentClients(t *testing.T) {
	t.Parallel()
	rec := NewWallRecorder()
	const clients, perClient = 8, 200
	var wg sync.WaitGroup
	for c := range clients {
		wg.Go(func() {
			for i := range perClient {
				id := rec.Invoke(c, add("n", 1), Now)
				switch i % 4 {
				case 0:
					rec.Fail(id)
				case 1:
					rec.Info(id)
				default:
					rec.Ok(id, val(0), Now)
				}
			}
		})
	}
	wg.Wait()
	ops := rec.Operations()
	require.Len(t, ops, clients*perClient*3/4)
	var latest int64
	for _, o := range ops {
		require.GreaterOrEqual(t, o.Call, int64(0))
		require.GreaterOrEqual(t, o.Return, o.Call)
		latest = max(latest, o.Return)
	}
	for _, o := range ops {
		if o.Output == (UnknownOutcome{}) {
			require.Equal(t, latest, o.Return, "an info op returns after everything")
		} else {
			require.Less(t, o.Return, latest)
		}
	}
}

func TestWallRecorderReadsAMonotonicClock(t *testing.T) {
	t.Parallel()
	rec := NewWallRecorder()
	a := rec.Invoke(0, put("x", 1), Now)
	b := rec.Invoke(1, get("x"), Now)
	rec.Ok(a, nil, Now)
	rec.Ok(b, got(1), -7) // any negative timestamp reads the clock
	ops := rec.Operations()
	require.LessOrEqual(t, ops[0].Call, ops[1].Call)
	require.LessOrEqual(t, ops[1].Call, ops[0].Return)
	require.LessOrEqual(t, ops[0].Return, ops[1].Return)
	require.Equal(t, Ok, Check(KVModel, ops, testTimeout).Verdict)
}

func TestRecorderPanicsOnHarnessBugs(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		bug  func(rec *Recorder, id int)
	}{
		{"ok twice", func(rec *Recorder, id int) { rec.Ok(id, nil, 10); rec.Ok(id, nil, 20) }},
		{"info after fail", func(rec *Recorder, id int) { rec.Fail(id); rec.Info(id) }},
		{"unknown id", func(rec *Recorder, id int) { rec.Ok(id+1, nil, 10) }},
		{"negative id", func(rec *Recorder, _ int) { rec.Fail(-1) }},
		{"return before call", func(rec *Recorder, id int) { rec.Ok(id, nil, 4) }},
		{"Now without a clock", func(rec *Recorder, id int) { rec.Ok(id, nil, Now) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := NewRecorder()
			id := rec.Invoke(0, put("x", 1), 5)
			require.Panics(t, func() { tc.bug(rec, id) })
		})
	}
}

func TestIsUnknownOutcome(t *testing.T) {
	t.Parallel()
	require.True(t, IsUnknownOutcome(UnknownOutcome{}))
	require.True(t, IsUnknownOutcome(KVOutput{Unknown: true}))
	require.True(t, IsUnknownOutcome(CounterOutput{Unknown: true}))
	require.True(t, IsUnknownOutcome(CASOutput{Unknown: true}))
	require.False(t, IsUnknownOutcome(KVOutput{}))
	require.False(t, IsUnknownOutcome(nil))
	require.False(t, IsUnknownOutcome(uint64(0)))
}

func TestPartitionByKeepsOrderWithinKeys(t *testing.T) {
	t.Parallel()
	ops := []porcupine.Operation{
		op(0, 0, 1, put("b", 1), nil),
		op(0, 2, 3, put("a", 2), nil),
		op(0, 4, 5, get("b"), got(1)),
	}
	parts := KVModel.Partition(ops)
	require.Equal(t, [][]porcupine.Operation{{ops[0], ops[2]}, {ops[1]}}, parts)
}

package gctune

import (
	"runtime"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPercent(t *testing.T) {
	for _, c := range []struct {
		live uint64
		frac float64
		want int
	}{
		{0, 0.125, 100},              // before the first collection: 4 MiB over 4 MiB
		{1 << 20, 0.125, 100},        // a live heap under 4 MiB counts as 4 MiB
		{4 << 20, 0.125, 100},        // the floor equals the live heap
		{16 << 20, 0.125, 25},        // the floor: 4 of 16 MiB
		{128 << 20, 0.125, 13},       // 12.5 %, rounded up
		{1 << 30, 0.125, 13},         // a fraction of the live heap
		{1 << 30, 0.5, 50},           //
		{1, 0.125, 100},              //
		{8 << 20, 0.125, 50},         // the 4 MiB floor over 8 MiB
		{100 << 30, 0.0001, 1},       // at least 1
		{160 << 20, 0.125, 13},       //
		{24 << 20, 0.125, 17},        // the floor: 4 of 24 MiB, rounded up
		{uint64(1) << 40, 0.125, 13}, //
	} {
		require.Equal(t, c.want, Percent(c.live, c.frac), "live %d frac %g", c.live, c.frac)
	}
}

// TestTunerAdjusts checks that the tuner sets the percent of the live heap
// it sees after a collection, and skips changes under a tenth.
func TestTunerAdjusts(t *testing.T) {
	var set []int
	tu := tuner{frac: 0.125, set: func(p int) int { set = append(set, p); return 100 }}
	tu.adjust(1 << 30)
	tu.adjust(1<<30 + 1<<20) // same percent
	tu.adjust(4 << 20)
	tu.adjust(4<<20 + 300<<10) // 94: within a tenth of 100
	tu.adjust(8 << 20)
	require.Equal(t, []int{13, 100, 50}, set)

	set = nil
	runtime.GC()
	tu.poll()
	require.Len(t, set, 1, "a collection was seen and the percent of the real live heap set")
	tu.poll()
	require.Len(t, set, 1, "no new collection, no change")
}

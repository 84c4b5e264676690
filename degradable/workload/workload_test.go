package workload

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/degradable"
)

// TestObjectsEveryTypeAndLevel runs every mix at every level and checks the
// operation count; unknown types and bad sizes are errors.
func TestObjectsEveryTypeAndLevel(t *testing.T) {
	for _, typ := range Types {
		for _, l := range degradable.Levels() {
			res, err := Objects(typ, l, 4, 2000, 1)
			require.NoError(t, err, "%s %v", typ, l)
			require.Equal(t, 2000, res.Ops)
			require.Positive(t, res.OpsPerSec)
			require.LessOrEqual(t, res.P50, res.P99)
		}
	}
	_, err := Objects("list", degradable.Weak, 4, 100, 1)
	require.Error(t, err)
	_, err = Objects("counter", degradable.Weak, 0, 100, 1)
	require.Error(t, err)
}

// TestRetwisCountsEveryUpdate runs Retwis at every level and checks, after
// every client synced, that the user and post counters hold every add and
// every tweet (no update lost at any level), and that the mix is the
// 5/15/30/50 one within a few percent.
func TestRetwisCountsEveryUpdate(t *testing.T) {
	for _, l := range degradable.Levels() {
		cfg := RetwisConfig{Level: l, Users: 200, Clients: 4, Ops: 4000, Seed: 7}
		res, err := Retwis(cfg)
		require.NoError(t, err, "%v", l)
		require.EqualValues(t, cfg.Ops, res.Adds+res.Follows+res.Unfollows+res.Tweets+res.Reads, "%v", l)
		require.Equal(t, int64(cfg.Users)+res.Adds, res.UsersCounted, "%v: a user add was lost", l)
		require.Equal(t, res.Tweets, res.PostsCounted, "%v: a post was lost", l)
		pct := func(n int64) float64 { return 100 * float64(n) / float64(cfg.Ops) }
		require.InDelta(t, mixAdd, pct(res.Adds), 2, "%v", l)
		require.InDelta(t, mixFollow, pct(res.Follows+res.Unfollows), 3, "%v", l)
		require.InDelta(t, mixTweet, pct(res.Tweets), 3, "%v", l)
		require.InDelta(t, mixRead, pct(res.Reads), 3, "%v", l)
	}
	_, err := Retwis(RetwisConfig{Level: degradable.Weak, Users: 1, Clients: 1, Ops: 10})
	require.Error(t, err)
}

package simtest

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/simnet"
)

// AckCrashFaults is the fault spec of the ack-crash sweeps: swarm faults
// plus the ack-crash fault (simnet.FaultSpec.AckCrash), which crashes a
// replica right after it answers a peer and then that peer, so that a
// replica answering before persisting is caught.
const AckCrashFaults = "swarm,ack-crash"

// RequireAckCrashCatches is the check of the skip-a-persist sabotage tests:
// with a planted bug enabled (a replica that answers before persisting),
// some seed of 1..n of cfg under AckCrashFaults must fail the checks. It
// logs the catching seed, and how plain swarm faults fared on the seeds up
// to it, for comparison.
func RequireAckCrashCatches(t *testing.T, cfg simnet.Config, n int) {
	t.Helper()
	cfg.Faults = AckCrashFaults
	seed, err := FirstViolation(cfg, 1, n)
	require.Error(t, err, "%s: %d seeds under %s missed the planted persistence bug", cfg.Protocol, n, AckCrashFaults)
	require.NotErrorIs(t, err, ErrNoViolation)
	t.Logf("%s: seed %d of 1..%d under %s caught the planted bug: %v", cfg.Protocol, seed, n, AckCrashFaults, err)
	cfg.Faults = "swarm"
	if pseed, perr := FirstViolation(cfg, 1, int(seed)); perr != nil && pseed > 0 {
		t.Logf("%s: plain swarm caught it too, at seed %d", cfg.Protocol, pseed)
	} else {
		t.Logf("%s: plain swarm missed it in seeds 1..%d", cfg.Protocol, seed)
	}
}

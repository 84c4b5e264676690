package runner_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/replica"
	"github.com/blossom-dso/blossom/runner"
	"github.com/blossom-dso/blossom/transport"
)

// parking is a state machine that never answers: every command parks, as
// a barrier's await does until its parties arrive.
type parking struct{ applied chan struct{} }

func (p *parking) Apply(protocols.Command, replica.Answers) { close(p.applied) }
func (p *parking) Snapshot() ([]byte, error)                { return nil, nil }
func (p *parking) Restore([]byte) error                     { return nil }

// TestCloseFailsExecutedCalls: a call that executed and waits for its
// answer fails with ErrTimeout (outcome unknown) as soon as the replica
// closes, instead of waiting for the caller's context to end. Before, a
// call caught by a replica's restart at a DSO node waited out its client's
// whole deadline (dso/server's TestLevelsOnTheDSO: "call canceled:
// context deadline exceeded" after 60 s).
func TestCloseFailsExecutedCalls(t *testing.T) {
	sm := &parking{applied: make(chan struct{})}
	r, err := runner.Start(runner.Config{ID: 1, Peers: map[protocols.NodeID]string{1: "n1"}, Protocol: "paxos",
		DataDir: t.TempDir(), NoSync: true, Network: transport.NewNetwork(), Logger: quietLogger(),
		StateMachine: sm, RequestTimeout: time.Hour})
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(context.Background(), time.Hour)
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := r.Do(ctx, protocols.Command{ID: protocols.CommandID{Client: 9, Seq: 1}, Keys: []string{"b"}, Payload: []byte{1}})
		done <- err
	}()
	<-sm.applied
	require.NoError(t, r.Close())
	err = <-done
	require.ErrorIs(t, err, runner.ErrTimeout)
	require.NoError(t, ctx.Err(), "the call waited for its context")
	require.False(t, errors.Is(err, context.DeadlineExceeded))
}

//go:build hardgen

package lincheck_test

import (
	"compress/gzip"
	"encoding/json"
	"os"
	"testing"

	"github.com/stretchr/testify/require"

	_ "github.com/blossom-dso/blossom/protocols/paxos"
	"github.com/blossom-dso/blossom/simnet"
)

// hardOp is one operation of the file, as hard_test.go reads it.
type hardOp struct {
	Client int    `json:"client"`
	Key    string `json:"key"`
	Put    bool   `json:"put,omitempty"`
	Value  uint64 `json:"value,omitempty"`  // put: the value written
	Call   int64  `json:"call"`             // virtual µs
	Return int64  `json:"return"`           // virtual µs, -1 if none
	Output uint64 `json:"output,omitempty"` // ok get: the value read
	Info   bool   `json:"info,omitempty"`   // outcome unknown (info or pending)
}

// TestGenerateHardHistory rewrites testdata/hard-history.json.gz, the
// history of `blossom sim --protocol paxos --nodes 5 --clients 40 --keys 2
// --conflict 100 --ops 3000 --faults swarm --seed 1`, which the hard-history
// test and benchmark read. It is behind the hardgen build tag so that the
// package's tests do not depend on simnet:
//
//	go test -tags hardgen -run TestGenerateHardHistory ./lincheck/
func TestGenerateHardHistory(t *testing.T) {
	res, err := simnet.Run(simnet.Config{
		Protocol: "paxos", Nodes: 5, Clients: 40, Ops: 3000, Keys: 2, Conflict: 100, Reads: 50, Size: 16,
		Latency: "constant:1", Faults: "swarm", Seed: 1,
	})
	require.NoError(t, err)
	require.NoError(t, res.OrderError())
	require.NoError(t, res.LivenessError())
	var ops []hardOp
	for _, op := range res.History {
		ops = append(ops, hardOp{
			Client: op.Client, Key: op.Key, Put: op.Put, Value: op.Value,
			Call: op.Call, Return: op.Return, Output: op.Output, Info: op.Outcome != simnet.OutcomeOK,
		})
	}
	f, err := os.Create("testdata/hard-history.json.gz")
	require.NoError(t, err)
	zw := gzip.NewWriter(f)
	require.NoError(t, json.NewEncoder(zw).Encode(ops))
	require.NoError(t, zw.Close())
	require.NoError(t, f.Close())
	t.Logf("wrote %d operations (%d ok, %d unknown outcome), seed %d, digest %016x", len(ops), res.OK, res.Info+res.Pending, res.Seed, res.Digest)
}

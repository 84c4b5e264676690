package server_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/blossom-dso/blossom/dso/replicated"
	"github.com/blossom-dso/blossom/dso/ring"
	"github.com/blossom-dso/blossom/dso/server"
	"github.com/blossom-dso/blossom/dso/wire"
	"github.com/blossom-dso/blossom/lincheck"
	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/replica"
	"github.com/blossom-dso/blossom/runner"
	"github.com/blossom-dso/blossom/transport"
)

// pcluster is an in-process cluster whose servers hold persistent objects
// on replicas that talk over an in-memory network.
type pcluster struct {
	protocol string
	rf       int
	disjoint bool
	cl       *dsotest.Cluster
	rep      *dsotest.Replicated
	net      *transport.Network
	ring     *ring.Ring
}

// startPersistent starts n servers with replicas of persistent objects
// (rf, protocol); opts, if given, sets more fields of the Replicated.
func startPersistent(t *testing.T, protocol string, n, rf int, opts ...func(*dsotest.Replicated)) *pcluster {
	t.Helper()
	mem, err := dsotest.NewNetwork(protocol)
	require.NoError(t, err)
	rep := &dsotest.Replicated{Protocol: protocol, RF: rf, Dir: t.TempDir(), Net: mem}
	for _, o := range opts {
		o(rep)
	}
	cl, err := dsotest.StartCluster(n, dsotest.Options{Replicate: rep.Replicate})
	require.NoError(t, err)
	t.Cleanup(func() {
		cl.Close()
		mem.Close()
	})
	rg, err := ring.New(cl.Endpoints, 0)
	require.NoError(t, err)
	require.Len(t, rep.Endpoints(), n)
	return &pcluster{protocol: protocol, rf: rf, disjoint: runner.Multicast(protocol), cl: cl, rep: rep, net: mem, ring: rg}
}

// group returns the replica group of ref and its members, owner first.
func (pc *pcluster) group(ref dso.Ref) (protocols.GroupID, []string) {
	g, members := pc.ring.Group(ref.Type, ref.Key, pc.rf, pc.disjoint)
	return protocols.GroupID(g), members
}

func (pc *pcluster) dial(t *testing.T) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, pc.cl.Endpoints...)
	require.NoError(t, err)
	t.Cleanup(func() { c.Close() })
	return c
}

// replicatedSeed returns the seed of a randomized test:
// $BLOSSOM_REPLICATED_SEED or the clock; it is logged again on failure.
func replicatedSeed(t *testing.T) uint64 {
	t.Helper()
	seed := uint64(time.Now().UnixNano())
	if s := os.Getenv("BLOSSOM_REPLICATED_SEED"); s != "" {
		v, err := strconv.ParseUint(s, 10, 64)
		require.NoError(t, err, "BLOSSOM_REPLICATED_SEED=%q", s)
		seed = v
	}
	t.Logf("seed %d", seed)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("%s failed with seed %d (rerun: BLOSSOM_REPLICATED_SEED=%d go test -run '^%s$' ./dso/server/)",
				t.Name(), seed, seed, strings.ReplaceAll(t.Name(), "/", "$/^"))
		}
	})
	return seed
}

// callPFrame is an OpCallP frame (request id 7, no timeout) of the
// session command cmd.
func callPFrame(t *testing.T, cmd wire.Command, typ, key, method string, args ...any) []byte {
	t.Helper()
	f, err := wire.AppendCallP(nil, 7, 0, cmd, typ, key, method, args, nil)
	require.NoError(t, err)
	return f
}

// rawSend sends frame on a new connection to addr and returns the reply;
// with drop, it closes the connection right after writing instead.
func rawSend(t *testing.T, addr string, frame []byte, drop bool) wire.Reply {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	require.NoError(t, err)
	defer nc.Close()
	require.NoError(t, nc.SetDeadline(time.Now().Add(20*time.Second)))
	_, err = nc.Write(frame)
	require.NoError(t, err)
	if drop {
		return wire.Reply{}
	}
	body, err := wire.ReadFrame(bufio.NewReader(nc), nil, 1<<20)
	require.NoError(t, err)
	r, err := wire.DecodeReply(body)
	require.NoError(t, err)
	return r
}

// okInt asserts that r is a successful reply carrying an integer, and
// returns it.
func okInt(t *testing.T, r wire.Reply, what string) int64 {
	t.Helper()
	require.True(t, r.OK, "%s: error reply %s: %s", what, r.Code, r.Msg)
	v, ok := dso.AsInt(r.Value)
	require.True(t, ok, "%s: %#v is not an integer", what, r.Value)
	return v
}

// TestReplicatedExactlyOnceWithLostReply runs a persistent addAndGet(1)
// whose reply is lost (read and thrown away, or the connection closed
// before it came) and retries the identical frame, same session, seq and
// acked, on a new connection to the same node and to another replica:
// the counter moves once and every retry gets the first execution's
// value. Once a later call of the session on the key acknowledges it, a
// retry is refused (its result is no longer kept) and changes nothing.
func TestReplicatedExactlyOnceWithLostReply(t *testing.T) {
	for _, protocol := range []string{"paxos", "wbcast", "atlas"} {
		t.Run(protocol, func(t *testing.T) {
			pc := startPersistent(t, protocol, 3, 3)
			c := pc.dial(t)
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()

			for _, drop := range []bool{false, true} {
				key := fmt.Sprintf("eo-%v", drop)
				ref := dso.Ref{Type: dso.TypeAtomicLong, Key: key}
				_, members := pc.group(ref)
				require.Len(t, members, 3)
				owner, other := members[0], members[1]
				session := uint64(0xC0FFEE)
				if drop {
					session++
				}
				first := callPFrame(t, wire.Command{Session: session, Seq: 1, Acked: 1}, dso.TypeAtomicLong, key, "addAndGet", int64(1))

				r := rawSend(t, owner, first, drop)
				if !drop {
					require.Equal(t, int64(1), okInt(t, r, "first execution"))
				}
				// The retries: same node, another replica, the owner again.
				for i, at := range []string{owner, other, owner} {
					got := okInt(t, rawSend(t, at, first, false), fmt.Sprintf("retry %d at %s", i+1, at))
					require.Equal(t, int64(1), got, "retry %d at %s (drop=%v): not the first execution's value", i+1, at, drop)
				}
				v, err := dso.NewAtomicLong(c.Persistent(), key).Get(ctx)
				require.NoError(t, err)
				require.Equal(t, int64(1), v, "the counter moved %d times for one call and its retries", v)

				// A later call of the session on the key, acknowledging seq
				// 1, at the other replica; then seq 1 is a duplicate there.
				second := callPFrame(t, wire.Command{Session: session, Seq: 2, Acked: 2}, dso.TypeAtomicLong, key, "get")
				require.Equal(t, int64(1), okInt(t, rawSend(t, other, second, false), "seq 2"))
				third := callPFrame(t, wire.Command{Session: session, Seq: 3, Acked: 3}, dso.TypeAtomicLong, key, "get")
				require.Equal(t, int64(1), okInt(t, rawSend(t, owner, third, false), "seq 3"))
				for _, at := range []string{other, owner} {
					r := rawSend(t, at, first, false)
					require.False(t, r.OK, "a retry of an acknowledged call at %s answered %#v", at, r.Value)
					require.Equal(t, wire.CodeApp, r.Code, "retry of an acknowledged call at %s: %s", at, r.Msg)
					require.ErrorIs(t, &dso.RemoteError{Code: r.Code, Msg: r.Msg}, dso.ErrFailed)
					require.Contains(t, r.Msg, "no longer kept")
				}
				v, err = dso.NewAtomicLong(c.Persistent(), key).Get(ctx)
				require.NoError(t, err)
				require.Equal(t, int64(1), v, "a refused retry changed the counter")
			}
		})
	}
}

// --- multi-object transfers ---------------------------------------------

const (
	nAccounts = 6
	initial   = 100
)

// bank is the state of the transfer model: every account's balance.
type bank [nAccounts]int64

// transferIn moves x from account a to account b (one Multi: a's
// addAndGet(-x), then b's addAndGet(x)).
type transferIn struct {
	a, b int
	x    int64
}

// transferOut holds the balances the Multi returned after the transfer:
// a's always (its group answers), b's if b is in a's group.
type transferOut struct {
	va, vb int64
	hasB   bool
}

// readIn reads the accounts accts at once (one Multi of get, all in one
// group).
type readIn struct{ accts []int }

func (readIn) ReadOnly() bool { return true }

type readOut struct{ vals []int64 }

// bankModel is the sequential specification of the accounts: transfers
// and atomic reads of several accounts.
var bankModel = porcupine.Model{
	Init: func() any {
		var s bank
		for i := range s {
			s[i] = initial
		}
		return s
	},
	Step: func(state, input, output any) (bool, any) {
		st := state.(bank)
		switch in := input.(type) {
		case transferIn:
			next := st
			next[in.a] -= in.x
			next[in.b] += in.x
			if lincheck.IsUnknownOutcome(output) {
				return true, next
			}
			o := output.(transferOut)
			return o.va == next[in.a] && (!o.hasB || o.vb == next[in.b]), next
		case readIn:
			if lincheck.IsUnknownOutcome(output) {
				return true, st
			}
			o := output.(readOut)
			for i, a := range in.accts {
				if o.vals[i] != st[a] {
					return false, st
				}
			}
			return true, st
		}
		panic(fmt.Sprintf("bankModel: input %T", input))
	},
	Equal: func(a, b any) bool { return a.(bank) == b.(bank) },
	Hash: func(state any) uint64 {
		h := uint64(14695981039346656037)
		for _, v := range state.(bank) {
			h = (h ^ uint64(v)) * 1099511628211
		}
		return h
	},
	DescribeOperation: func(input, output any) string {
		switch in := input.(type) {
		case transferIn:
			s := fmt.Sprintf("transfer(%d→%d, %d)", in.a, in.b, in.x)
			if o, ok := output.(transferOut); ok {
				s += fmt.Sprintf(" → %d", o.va)
				if o.hasB {
					s += fmt.Sprintf(", %d", o.vb)
				}
			} else {
				s += " → ?"
			}
			return s
		case readIn:
			if o, ok := output.(readOut); ok {
				return fmt.Sprintf("read(%v) → %v", in.accts, o.vals)
			}
			return fmt.Sprintf("read(%v) → ?", in.accts)
		}
		return fmt.Sprint(input)
	},
	DescribeState: func(state any) string { return fmt.Sprint(state.(bank)) },
}

// TestReplicatedBankModelRejectsALostTransfer checks that the model can fail: a
// read that misses a completed transfer is not linearizable.
func TestReplicatedBankModelRejectsALostTransfer(t *testing.T) {
	ops := []porcupine.Operation{
		{ClientId: 0, Input: transferIn{a: 0, b: 3, x: 5}, Output: transferOut{va: 95}, Call: 0, Return: 10},
		{ClientId: 1, Input: readIn{accts: []int{0, 1}}, Output: readOut{vals: []int64{100, 100}}, Call: 20, Return: 30},
	}
	require.Equal(t, lincheck.Illegal, lincheck.Check(bankModel, ops, 10*time.Second).Verdict)
	ops[1].Output = readOut{vals: []int64{95, 100}}
	require.Equal(t, lincheck.Ok, lincheck.Check(bankModel, ops, 10*time.Second).Verdict)
}

// accountsOverGroups picks nAccounts AtomicLong keys, half in each of the
// cluster's two groups.
func accountsOverGroups(t *testing.T, pc *pcluster) ([]dso.Ref, []protocols.GroupID) {
	t.Helper()
	var refs []dso.Ref
	var groups []protocols.GroupID
	per := map[protocols.GroupID]int{}
	for i := 0; len(refs) < nAccounts && i < 1000; i++ {
		ref := dso.Ref{Type: dso.TypeAtomicLong, Key: fmt.Sprintf("acct-%d", i)}
		g, _ := pc.group(ref)
		if per[g] >= nAccounts/2 {
			continue
		}
		per[g]++
		refs = append(refs, ref)
		groups = append(groups, g)
	}
	require.Len(t, refs, nAccounts)
	require.Len(t, per, 2, "the accounts must use both groups: %v", per)
	return refs, groups
}

// TestReplicatedMultiTransfers runs concurrent transfers between
// persistent accounts of both groups of a 6-node cluster (rf 3, so two
// disjoint groups), each one Multi, with atomic reads of one group's
// accounts, while nodes are cut off and restarted: the total stays put
// and the history is linearizable under bankModel.
func TestReplicatedMultiTransfers(t *testing.T) {
	for _, protocol := range []string{"wbcast", "skeen"} {
		t.Run(protocol, func(t *testing.T) {
			seed := replicatedSeed(t)
			const requestTimeout = 400 * time.Millisecond
			pc := startPersistent(t, protocol, 6, 3, func(r *dsotest.Replicated) { r.RequestTimeout = requestTimeout })
			require.True(t, pc.disjoint)
			refs, groups := accountsOverGroups(t, pc)
			byGroup := map[protocols.GroupID][]int{}
			for i, g := range groups {
				byGroup[g] = append(byGroup[g], i)
			}
			gids := slices.Sorted(maps.Keys(byGroup))
			c := pc.dial(t)
			p := c.Persistent()
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			for _, ref := range refs {
				v, err := p.Call(ctx, ref, "addAndGet", []any{int64(initial)}, nil)
				require.NoError(t, err)
				require.Equal(t, int64(initial), v)
			}

			rec := lincheck.NewWallRecorder()
			read := func(p *client.Persistent, cid int, g protocols.GroupID) ([]int64, error) {
				accts := byGroup[g]
				calls := make([]dso.Call, len(accts))
				for i, a := range accts {
					calls[i] = dso.Call{Ref: refs[a], Method: "get"}
				}
				id := rec.Invoke(cid, readIn{accts: accts}, lincheck.Now)
				octx, ocancel := context.WithTimeout(ctx, 15*time.Second)
				res, err := p.Multi(octx, calls)
				ocancel()
				if err != nil {
					rec.Info(id)
					return nil, err
				}
				vals := make([]int64, len(accts))
				for i := range accts {
					v, ok := dso.AsInt(res[i])
					if !ok {
						rec.Info(id)
						return nil, fmt.Errorf("read of group %d: part %d is %#v, not a balance", g, i, res[i])
					}
					vals[i] = v
				}
				rec.Ok(id, readOut{vals: vals}, lincheck.Now)
				return vals, nil
			}

			// The clients run until the faults are over (at least
			// minOps, at most maxOps operations each), pausing a little
			// between operations.
			const clients, minOps, maxOps = 4, 20, 200
			var duringFaults, slow atomic.Int64
			var (
				wg                   sync.WaitGroup
				okTransfers, unknown atomic.Int64
				reads                atomic.Int64
				errsMu               sync.Mutex
				badErrs              []error
			)
			faultsDone := make(chan struct{})
			for cid := range clients {
				cl := pc.dial(t)
				wg.Add(1)
				go func() {
					defer wg.Done()
					rnd := rand.New(rand.NewPCG(seed, uint64(cid)))
					p := cl.Persistent()
					for op := 0; op < maxOps; op++ {
						select {
						case <-faultsDone:
							if op >= minOps {
								return
							}
						default:
							duringFaults.Add(1)
						}
						time.Sleep(time.Duration(rnd.IntN(20)) * time.Millisecond)
						if rnd.IntN(5) == 0 {
							if _, err := read(p, cid, gids[rnd.IntN(len(gids))]); err != nil {
								if !errors.Is(err, client.ErrUnavailable) && !errors.Is(err, dso.ErrTimeout) && !errors.Is(err, dso.ErrCanceled) {
									errsMu.Lock()
									badErrs = append(badErrs, err)
									errsMu.Unlock()
								}
							} else {
								reads.Add(1)
							}
							continue
						}
						a := rnd.IntN(nAccounts)
						b := (a + 1 + rnd.IntN(nAccounts-1)) % nAccounts
						x := int64(1 + rnd.IntN(10))
						id := rec.Invoke(cid, transferIn{a: a, b: b, x: x}, lincheck.Now)
						began := time.Now()
						octx, ocancel := context.WithTimeout(ctx, 15*time.Second)
						res, err := p.Multi(octx, []dso.Call{
							{Ref: refs[a], Method: "addAndGet", Args: []any{-x}},
							{Ref: refs[b], Method: "addAndGet", Args: []any{x}},
						})
						ocancel()
						if time.Since(began) >= requestTimeout {
							slow.Add(1)
						}
						if err != nil {
							rec.Info(id)
							unknown.Add(1)
							if !errors.Is(err, client.ErrUnavailable) && !errors.Is(err, dso.ErrTimeout) && !errors.Is(err, dso.ErrCanceled) {
								errsMu.Lock()
								badErrs = append(badErrs, err)
								errsMu.Unlock()
							}
							continue
						}
						out := transferOut{}
						va, ok := dso.AsInt(res[0])
						if !ok || len(res) != 2 {
							rec.Info(id)
							errsMu.Lock()
							badErrs = append(badErrs, fmt.Errorf("transfer %d→%d: result %#v", a, b, res))
							errsMu.Unlock()
							continue
						}
						out.va = va
						if groups[a] == groups[b] {
							out.vb, out.hasB = dso.AsInt(res[1])
							if !out.hasB {
								errsMu.Lock()
								badErrs = append(badErrs, fmt.Errorf("transfer %d→%d in one group: no result for the second part: %#v", a, b, res))
								errsMu.Unlock()
							}
						} else if res[1] != nil {
							errsMu.Lock()
							badErrs = append(badErrs, fmt.Errorf("transfer %d→%d across groups: the second group's part answered %#v (documented nil)", a, b, res[1]))
							errsMu.Unlock()
						}
						rec.Ok(id, out, lincheck.Now)
						okTransfers.Add(1)
					}
				}()
			}

			// Faults, one at a time, while the clients run: a node cut off
			// for longer than the replicas' RequestTimeout (its calls time
			// out and the clients go to the next replica), or its replicas
			// crashed and restarted from their data directory; twice each,
			// on nodes picked by the seed.
			var faults []string
			go func() {
				defer close(faultsDone)
				rnd := rand.New(rand.NewPCG(seed, 99))
				eps := pc.rep.Endpoints()
				for round := range 4 {
					time.Sleep(100 * time.Millisecond)
					node := pc.rep.Node(eps[rnd.IntN(len(eps))])
					if round%2 == 0 {
						faults = append(faults, fmt.Sprintf("isolate node %d", node.ID))
						pc.net.Isolate(node.ID)
						time.Sleep(2 * requestTimeout)
						pc.net.HealAll()
						continue
					}
					faults = append(faults, fmt.Sprintf("restart node %d", node.ID))
					if err := node.Stop(); err != nil {
						faults = append(faults, fmt.Sprintf("stop node %d: %v", node.ID, err))
					}
					time.Sleep(requestTimeout)
					if err := node.Restart(); err != nil {
						faults = append(faults, fmt.Sprintf("RESTART FAILED node %d: %v", node.ID, err))
					}
				}
			}()
			wg.Wait()
			<-faultsDone
			t.Logf("faults: %v", faults)
			for _, f := range faults {
				require.NotContains(t, f, "FAILED")
			}
			require.Empty(t, badErrs, "unexpected errors")

			// Quiescent final read of every group: the total is constant.
			total := int64(0)
			final := map[int]int64{}
			for _, g := range gids {
				vals, err := read(p, clients, g)
				require.NoError(t, err, "final read of group %d", g)
				for i, a := range byGroup[g] {
					final[a] = vals[i]
					total += vals[i]
				}
			}
			t.Logf("%s: %d transfers ok (%d took %v or more: a replica timed out, or a node was down), %d of unknown outcome, %d reads (%d operations began before the faults ended); final balances %v",
				protocol, okTransfers.Load(), slow.Load(), requestTimeout, unknown.Load(), reads.Load(), duringFaults.Load(), final)
			require.Equal(t, int64(nAccounts*initial), total, "money was created or destroyed: final balances %v", final)

			// A Multi over every account answers only for the first
			// account's group; the other group's parts come back nil.
			all := make([]dso.Call, nAccounts)
			for i := range refs {
				all[i] = dso.Call{Ref: refs[i], Method: "get"}
			}
			res, err := p.Multi(ctx, all)
			require.NoError(t, err)
			require.Len(t, res, nAccounts)
			for i := range refs {
				if groups[i] != groups[0] {
					require.Nil(t, res[i], "account %d of group %d, in a Multi led by group %d", i, groups[i], groups[0])
					continue
				}
				v, ok := dso.AsInt(res[i])
				require.True(t, ok, "account %d: %#v", i, res[i])
				require.Equal(t, final[i], v, "account %d", i)
			}
			require.Greater(t, okTransfers.Load(), int64(clients*minOps/2), "too few transfers went through to test anything")

			check := lincheck.Check(bankModel, rec.Operations(), 60*time.Second)
			if keep := os.Getenv("BLOSSOM_LINCHECK_DIR"); keep != "" && check.Verdict != lincheck.Ok {
				path := fmt.Sprintf("%s/bank-%s-%d.html", keep, protocol, seed)
				if err := check.WriteHTML(path); err == nil {
					t.Logf("history written to %s", path)
				}
			}
			t.Logf("linearizability check: %s, %d operations, %v", check.Verdict, check.Operations, check.Elapsed)
			require.NoError(t, check.Err(), "history of %d operations", check.Operations)

			// The check can fail on this history: one read off by one.
			ops := rec.Operations()
			for i := len(ops) - 1; i >= 0; i-- {
				if o, ok := ops[i].Output.(readOut); ok {
					vals := slices.Clone(o.vals)
					vals[0]++
					ops[i].Output = readOut{vals: vals}
					break
				}
			}
			require.Equal(t, lincheck.Illegal, lincheck.Check(bankModel, ops, 60*time.Second).Verdict, "a read off by one passed")
		})
	}
}

// TestReplicatedMultiRefusedWithoutMulticast: under paxos a multi-object
// call is refused, naming multicast, and changes nothing.
func TestReplicatedMultiRefusedWithoutMulticast(t *testing.T) {
	pc := startPersistent(t, "paxos", 3, 3)
	c := pc.dial(t)
	p := c.Persistent()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	a, b := dso.NewAtomicLong(p, "acct-a"), dso.NewAtomicLong(p, "acct-b")
	_, err := a.AddAndGet(ctx, 10)
	require.NoError(t, err)
	_, err = p.Multi(ctx, []dso.Call{
		{Ref: a.Ref(), Method: "addAndGet", Args: []any{int64(-5)}},
		{Ref: b.Ref(), Method: "addAndGet", Args: []any{int64(5)}},
	})
	require.Error(t, err)
	require.ErrorIs(t, err, dso.ErrFailed)
	require.Contains(t, err.Error(), "multicast")
	require.Contains(t, err.Error(), "paxos")
	va, err := a.Get(ctx)
	require.NoError(t, err)
	require.Equal(t, int64(10), va)
	ok, err := p.Delete(ctx, b.Ref())
	require.NoError(t, err)
	require.False(t, ok, "the refused Multi created %s", b.Ref())
}

// --- deterministic blocking objects ----------------------------------------

// replicaState is what one replica's table holds.
type replicaState struct {
	node   string
	parked []protocols.CommandID
	on     map[protocols.CommandID]dso.Ref
	snap   []byte
	len    int
}

// tableState reads t.
func tableState(node string, t *replicated.Table) (replicaState, error) {
	s := replicaState{node: node, parked: t.Parked(), on: map[protocols.CommandID]dso.Ref{}, len: t.Len()}
	for _, id := range s.parked {
		s.on[id], _ = t.ParkedOn(id)
	}
	var err error
	s.snap, err = t.Snapshot()
	return s, err
}

// replicaStates reads the table of group g at every node of pc.
func replicaStates(ctx context.Context, pc *pcluster, g protocols.GroupID) ([]replicaState, error) {
	var out []replicaState
	for _, ep := range pc.rep.Endpoints() {
		var (
			s    replicaState
			serr error
		)
		err := pc.rep.Node(ep).Inspect(ctx, g, func(sm replica.StateMachine) {
			t, ok := sm.(*replicated.Table)
			if !ok {
				serr = fmt.Errorf("%s: state machine %T", ep, sm)
				return
			}
			s, serr = tableState(ep, t)
		})
		if err = errors.Join(err, serr); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, nil
}

// describeParked lists the parked calls and their objects.
func (s replicaState) describeParked() string {
	var on []string
	for _, id := range s.parked {
		on = append(on, fmt.Sprintf("%v on %s", id, s.on[id]))
	}
	return "[" + strings.Join(on, ", ") + "]"
}

// settle waits until the servers of pc are done with their persistent
// calls, but for held ones that clients leave parked on purpose (their
// replicas have exactly held calls of Do in flight), and every replica
// of group 0 holds the same state, twice in a row; it returns the
// replicas' states then, or after 30s the last ones read (which the
// caller's checks then find wanting).
func settle(t *testing.T, ctx context.Context, pc *pcluster, held int) []replicaState {
	t.Helper()
	var prev []replicaState
	deadline := time.Now().Add(30 * time.Second)
	for {
		inflight := 0
		for _, ep := range pc.rep.Endpoints() {
			inflight += pc.rep.Node(ep).InFlight()
		}
		states, err := replicaStates(ctx, pc, 0)
		require.NoError(t, err)
		if inflight == held && sameState(states) == nil && prev != nil && sameState([]replicaState{prev[0], states[0]}) == nil {
			return states
		}
		if time.Now().After(deadline) {
			t.Logf("not quiescent after 30s: %d calls in flight at the servers (want %d)", inflight, held)
			return states
		}
		prev = states
		time.Sleep(20 * time.Millisecond)
	}
}

// sameState reports how the states differ, nil if they are identical:
// the same parked calls and byte-identical snapshots.
func sameState(states []replicaState) error {
	var errs []error
	for _, s := range states[1:] {
		r := states[0]
		if !slices.Equal(r.parked, s.parked) {
			errs = append(errs, fmt.Errorf("parked calls differ: %s has %v, %s has %v", r.node, r.parked, s.node, s.parked))
		}
		if !bytes.Equal(r.snap, s.snap) {
			errs = append(errs, fmt.Errorf("snapshots differ: %s has %d bytes (%d objects), %s %d bytes (%d objects)",
				r.node, len(r.snap), r.len, s.node, len(s.snap), s.len))
		}
	}
	return errors.Join(errs...)
}

// answers collects the answers of Apply.
type answers map[protocols.CommandID][]byte

func (a answers) Answer(id protocols.CommandID, res []byte) { a[id] = slices.Clone(res) }

// TestReplicatedBlockingObjectsStayIdentical runs barriers, semaphores,
// futures and pipes on persistent objects of a 3-node group, from
// concurrent clients whose calls are canceled or run out of time, so that
// the servers withdraw many parked calls; a few calls stay parked on
// purpose. After quiescence every replica holds the same parked calls
// (exactly the ones on purpose) and a byte-identical snapshot; once those
// are canceled too, none is parked anywhere.
func TestReplicatedBlockingObjectsStayIdentical(t *testing.T) {
	for _, protocol := range []string{"paxos", "atlas"} {
		t.Run(protocol, func(t *testing.T) {
			seed := replicatedSeed(t)
			// Count the withdrawals that took a parked call back.
			// Count the withdrawals that took a parked call back, and note
			// the calls whose withdrawal found them not parked (payload:
			// kind, then the target's client and seq as uvarints).
			withdrawKind := replicated.EncodeWithdraw(protocols.CommandID{}, 0, "")[0]
			var (
				withdrawn, notParked atomic.Int64
				missedMu             sync.Mutex
				missed               = map[protocols.CommandID]bool{}
			)
			pc := startPersistent(t, protocol, 3, 3, func(r *dsotest.Replicated) {
				r.Observe = func(_ protocols.NodeID, _ protocols.GroupID, cmd protocols.Command, res []byte, err error) {
					if err != nil || len(cmd.Payload) == 0 || cmd.Payload[0] != withdrawKind {
						return
					}
					if v, _ := replicated.DecodeResult(res); v == true {
						withdrawn.Add(1)
						return
					}
					notParked.Add(1)
					client, n := binary.Uvarint(cmd.Payload[1:])
					seq, m := binary.Uvarint(cmd.Payload[1+max(n, 0):])
					if n > 0 && m > 0 {
						missedMu.Lock()
						missed[protocols.CommandID{Client: client, Seq: seq}] = true
						missedMu.Unlock()
					}
				}
			})
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			// The calls that stay parked until the end.
			hc := pc.dial(t)
			hp := hc.Persistent()
			hctx, hcancel := context.WithCancel(ctx)
			defer hcancel()
			hold := []func() error{
				func() error { _, err := dso.NewCyclicBarrier(hp, "hold-barrier", 5).Await(hctx); return err },
				func() error { return dso.NewSemaphore(hp, "hold-sem", 0).Acquire(hctx, 1) },
				func() error { _, err := dso.NewFuture(hp, "hold-future").Get(hctx); return err },
				func() error { _, err := dso.NewPipe(hp, "hold-pipe", 1).Take(hctx); return err },
			}
			holdErrs := make(chan error, len(hold))
			for _, f := range hold {
				go func() { holdErrs <- f() }()
			}

			const clients, opsPerClient = 6, 25
			var (
				wg                        sync.WaitGroup
				okCalls, gaveUp, otherErr atomic.Int64
				errsMu                    sync.Mutex
				others                    []error
			)
			for cid := range clients {
				cl := pc.dial(t)
				wg.Add(1)
				go func() {
					defer wg.Done()
					rnd := rand.New(rand.NewPCG(seed, uint64(cid)))
					p := cl.Persistent()
					bar := dso.NewCyclicBarrier(p, "barrier", 4)
					sem := dso.NewSemaphore(p, "sem", 1)
					pipe := dso.NewPipe(p, "pipe", 1)
					future := func() dso.Future { return dso.NewFuture(p, fmt.Sprintf("future-%d", rnd.IntN(12))) }
					for i := range opsPerClient {
						// A blocking call gets a short deadline, or is
						// canceled after a short while.
						var octx context.Context
						var ocancel context.CancelFunc
						wait := time.Duration(1+rnd.IntN(80)) * time.Millisecond
						if rnd.IntN(2) == 0 {
							octx, ocancel = context.WithTimeout(ctx, wait)
						} else {
							octx, ocancel = context.WithCancel(ctx)
							time.AfterFunc(wait, ocancel)
						}
						var err error
						switch rnd.IntN(10) {
						case 0, 1, 2:
							_, err = bar.Await(octx)
						case 3:
							err = sem.Acquire(octx, 1)
						case 4:
							err = sem.Release(ctx, 1)
						case 5, 6:
							_, err = future().Get(octx)
						case 7:
							_, err = future().Set(ctx, fmt.Sprintf("c%d-%d", cid, i))
						case 8:
							err = pipe.Put(octx, int64(cid*1000+i))
						case 9:
							_, err = pipe.Take(octx)
						}
						expired := octx.Err() != nil
						ocancel()
						switch {
						case err == nil:
							okCalls.Add(1)
						case errors.Is(err, dso.ErrCanceled) || errors.Is(err, dso.ErrTimeout) ||
							errors.Is(err, client.ErrUnavailable) || expired:
							// (A call whose short context ends while its
							// client dials fails with ErrUnavailable.)
							gaveUp.Add(1)
						default:
							otherErr.Add(1)
							errsMu.Lock()
							others = append(others, err)
							errsMu.Unlock()
						}
					}
				}()
			}
			wg.Wait()
			require.Empty(t, others, "unexpected errors")

			// Quiescence: the servers are done with every call given up,
			// and every replica has applied the same commands: the same
			// parked calls, the same bytes.
			states := settle(t, ctx, pc, len(hold))
			t.Logf("%s: %d calls answered, %d given up (canceled or timed out); the servers withdrew %d parked calls (%d withdrawals found the call not parked)",
				protocol, okCalls.Load(), gaveUp.Load(), withdrawn.Load(), notParked.Load())
			require.GreaterOrEqual(t, withdrawn.Load(), int64(10), "too few parked calls were withdrawn to test anything")
			require.NoError(t, sameState(states))
			// Only the held calls are parked: a call whose client gave up
			// is never parked afterwards, even if its withdrawal reached
			// the replicas before the call did.
			var holdRefs []string
			for _, id := range states[0].parked {
				switch ref := states[0].on[id]; {
				case strings.HasPrefix(ref.Key, "hold-"):
					holdRefs = append(holdRefs, ref.Key)
				default:
					missedMu.Lock()
					t.Errorf("call %v on %s is parked though its client gave up (withdrawal missed: %v)", id, ref, missed[id])
					missedMu.Unlock()
				}
			}
			slices.Sort(holdRefs)
			require.Equal(t, []string{"hold-barrier", "hold-future", "hold-pipe", "hold-sem"}, holdRefs, "parked: %s", states[0].describeParked())
			require.GreaterOrEqual(t, states[0].len, 4+3, "objects in the table")

			// The comparison can fail: one extra command on a copy.
			sabotage(t, states[0])

			hcancel()
			for range hold {
				err := <-holdErrs
				require.ErrorIs(t, err, dso.ErrCanceled)
			}
			states = settle(t, ctx, pc, 0)
			require.NoError(t, sameState(states))
			for _, s := range states {
				require.Empty(t, s.parked, "replica %s: parked calls %s, want none", s.node, s.describeParked())
			}
		})
	}
}

// sabotage restores two tables from s's snapshot and applies one more
// command to one of them: sameState must then report the difference.
func sabotage(t *testing.T, s replicaState) {
	t.Helper()
	restore := func() *replicated.Table {
		tb := replicated.New(nil, replicated.Options{})
		require.NoError(t, tb.Restore(s.snap))
		return tb
	}
	copyA, copyB := restore(), restore()
	a, err := tableState("copy-a", copyA)
	require.NoError(t, err)
	require.NoError(t, sameState([]replicaState{s, a}), "a restored copy differs from its snapshot")

	// Release the parked future.get on copy B only.
	ref := dso.Ref{Type: dso.TypeFuture, Key: "hold-future"}
	payload, err := replicated.EncodeCall(ref, "set", []any{"sabotage"}, nil)
	require.NoError(t, err)
	ans := answers{}
	copyB.Apply(protocols.Command{ID: protocols.CommandID{Client: 0xBAD, Seq: 1}, Keys: []string{replicated.Key(ref)}, Payload: payload}, ans)
	require.Len(t, ans, 2, "the set and the get it releases are answered")
	b, err := tableState("copy-b", copyB)
	require.NoError(t, err)
	err = sameState([]replicaState{s, a, b})
	require.Error(t, err)
	require.Contains(t, err.Error(), "parked calls differ")
	require.Contains(t, err.Error(), "snapshots differ")

	// A change that parks nothing: only the snapshot tells.
	copyC := restore()
	payload, err = replicated.EncodeCall(dso.Ref{Type: dso.TypeAtomicLong, Key: "extra"}, "addAndGet", []any{int64(1)}, nil)
	require.NoError(t, err)
	copyC.Apply(protocols.Command{ID: protocols.CommandID{Client: 0xBAD, Seq: 2}, Keys: []string{replicated.Key(dso.Ref{Type: dso.TypeAtomicLong, Key: "extra"})}, Payload: payload}, answers{})
	c, err := tableState("copy-c", copyC)
	require.NoError(t, err)
	err = sameState([]replicaState{s, c})
	require.Error(t, err)
	require.NotContains(t, err.Error(), "parked calls differ")
	require.Contains(t, err.Error(), "snapshots differ")
}

// --- refusals ----------------------------------------------------------------

// TestReplicatedRefusesBadRequests: persistent requests without a session
// or sequence number, on a node outside the object's group, or of an
// unknown type are refused with the matching code and a message that
// says why; a replication factor larger than the cluster is refused by
// server.New.
func TestReplicatedRefusesBadRequests(t *testing.T) {
	pc := startPersistent(t, "paxos", 4, 3)
	ref := dso.Ref{Type: dso.TypeAtomicLong, Key: "refused"}
	_, members := pc.group(ref)
	require.Len(t, members, 3)
	var outside string
	for _, ep := range pc.cl.Endpoints {
		if !slices.Contains(members, ep) {
			outside = ep
		}
	}
	require.NotEmpty(t, outside)

	for _, tc := range []struct {
		name string
		cmd  wire.Command
	}{
		{"session 0", wire.Command{Session: 0, Seq: 1, Acked: 1}},
		{"seq 0", wire.Command{Session: 5, Seq: 0, Acked: 1}},
	} {
		r := rawSend(t, members[0], callPFrame(t, tc.cmd, dso.TypeAtomicLong, ref.Key, "addAndGet", int64(1)), false)
		require.False(t, r.OK, "%s: answered %#v", tc.name, r.Value)
		require.Equal(t, wire.CodeMalformed, r.Code, "%s: %s", tc.name, r.Msg)
		require.Contains(t, r.Msg, "session", tc.name)
	}

	r := rawSend(t, outside, callPFrame(t, wire.Command{Session: 5, Seq: 1, Acked: 1}, dso.TypeAtomicLong, ref.Key, "addAndGet", int64(1)), false)
	require.False(t, r.OK)
	require.Equal(t, wire.CodeWrongNode, r.Code, r.Msg)
	for _, m := range members {
		require.Contains(t, r.Msg, m, "the refusal names the replicas")
	}
	require.Contains(t, r.Msg, outside)

	r = rawSend(t, members[0], callPFrame(t, wire.Command{Session: 5, Seq: 2, Acked: 1}, "NoSuchType", "k", "get"), false)
	require.False(t, r.OK)
	require.Equal(t, wire.CodeUnknownType, r.Code, r.Msg)
	require.Contains(t, r.Msg, "NoSuchType")

	// None of the refused calls happened; the client's calls go to the
	// replicas and work.
	c := pc.dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	v, err := dso.NewAtomicLong(c.Persistent(), ref.Key).AddAndGet(ctx, 1)
	require.NoError(t, err)
	require.Equal(t, int64(1), v, "a refused call changed the counter")

	for _, rf := range []int{0, 5} {
		_, err := server.New(server.Config{Self: pc.cl.Endpoints[0], Members: pc.cl.Endpoints,
			Replication: &server.Replication{Replicas: pc.rep.Node(pc.cl.Endpoints[0]), RF: rf, Protocol: "paxos"}})
		require.Error(t, err, "rf %d", rf)
		require.Contains(t, err.Error(), fmt.Sprintf("replication factor %d for a cluster of 4 nodes", rf))
		require.Contains(t, err.Error(), "1..4")
	}
	_, err = dsotest.StartCluster(3, dsotest.Options{Replicate: (&dsotest.Replicated{Protocol: "paxos", RF: 4, Dir: t.TempDir(), Net: transport.NewNetwork()}).Replicate})
	require.ErrorContains(t, err, "rf 4 is larger than the cluster (3 nodes)")
}

// TestReplicatedPaxosPair: Multi-Paxos runs persistent objects on pairs
// of replicas (rf 2, f = 0: both must accept); a node outside the pair is
// refused naming both replicas.
func TestReplicatedPaxosPair(t *testing.T) {
	mem, err := dsotest.NewNetwork("paxos")
	require.NoError(t, err)
	defer mem.Close()
	rep := &dsotest.Replicated{Protocol: "paxos", RF: 2, Dir: t.TempDir(), Net: mem}
	cl, err := dsotest.StartCluster(3, dsotest.Options{Replicate: rep.Replicate})
	require.NoError(t, err)
	defer cl.Close()
	pc := &pcluster{protocol: "paxos", rf: 2, cl: cl, rep: rep, net: mem}
	pc.ring, err = ring.New(cl.Endpoints, 0)
	require.NoError(t, err)
	c := pc.dial(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	ref := dso.Ref{Type: dso.TypeAtomicLong, Key: "pair"}
	v, err := dso.NewAtomicLong(c.Persistent(), ref.Key).AddAndGet(ctx, 2)
	require.NoError(t, err)
	require.Equal(t, int64(2), v)
	_, members := pc.group(ref)
	require.Len(t, members, 2)
	for _, ep := range cl.Endpoints {
		r := rawSend(t, ep, callPFrame(t, wire.Command{Session: 9, Seq: 1, Acked: 1}, dso.TypeAtomicLong, ref.Key, "get"), false)
		if slices.Contains(members, ep) {
			require.Equal(t, int64(2), okInt(t, r, "get at "+ep))
			continue
		}
		require.Equal(t, wire.CodeWrongNode, r.Code, r.Msg)
		require.Contains(t, r.Msg, members[0])
		require.Contains(t, r.Msg, members[1])
	}
}

// TestReplicatedCanceledCallLeavesNothingParked cancels persistent
// pipe takes right after sending them (each OpCancel in the same write as
// its OpCallP, so the cancel often reaches the server before the call is
// submitted to the replicas): every take is answered canceled, at once;
// no replica keeps any of them parked; and a value put afterwards goes to
// the next take, not to a take whose client gave up.
func TestReplicatedCanceledCallLeavesNothingParked(t *testing.T) {
	for _, protocol := range []string{"paxos", "atlas"} {
		t.Run(protocol, func(t *testing.T) {
			pc := startPersistent(t, protocol, 3, 3)
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			// One call first, so that the group has a leader.
			c := pc.dial(t)
			pipe := dso.NewPipe(c.Persistent(), "leak", 4)
			require.NoError(t, pipe.Put(ctx, "first"))
			v, err := pipe.Take(ctx)
			require.NoError(t, err)
			require.Equal(t, "first", v)

			const calls = 6
			nc, err := net.DialTimeout("tcp", pc.cl.Endpoints[0], 5*time.Second)
			require.NoError(t, err)
			defer nc.Close()
			br := bufio.NewReader(nc)
			slow := 0
			for i := uint64(1); i <= calls; i++ {
				f, err := wire.AppendCallP(nil, i, 0, wire.Command{Session: 77, Seq: i, Acked: i},
					dso.TypePipe, "leak", "take", nil, []any{int64(4)})
				require.NoError(t, err)
				f = wire.AppendSimple(f, wire.OpCancel, i)
				require.NoError(t, nc.SetDeadline(time.Now().Add(20*time.Second)))
				sent := time.Now()
				_, err = nc.Write(f)
				require.NoError(t, err)
				body, err := wire.ReadFrame(br, nil, 1<<20)
				require.NoError(t, err)
				r, err := wire.DecodeReply(body)
				require.NoError(t, err)
				require.Equal(t, i, r.ID)
				require.False(t, r.OK, "take %d answered %#v from an empty pipe", i, r.Value)
				require.Equal(t, wire.CodeCanceled, r.Code, "take %d: %s", i, r.Msg)
				if took := time.Since(sent); took > 4*time.Second {
					t.Logf("take %d: answered after %v", i, took)
					slow++
				}
			}
			t.Logf("%d of %d canceled takes were answered only after seconds", slow, calls)

			// Nothing stays parked once the servers are done with them.
			states := settle(t, ctx, pc, 0)
			for _, s := range states {
				assert.Empty(t, s.parked, "replica %s keeps calls whose client canceled them: %s", s.node, s.describeParked())
			}
			require.NoError(t, pipe.Put(ctx, "value"))
			tctx, tcancel := context.WithTimeout(ctx, 3*time.Second)
			defer tcancel()
			v, err = pipe.Take(tctx)
			require.NoError(t, err, "the value put went to a take canceled before")
			require.Equal(t, "value", v)
		})
	}
}

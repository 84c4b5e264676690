package main

import (
	"bufio"
	"context"
	"math"
	"math/big"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/experiments"
)

func TestBenchMultiplierMatchesTheLuaScript(t *testing.T) {
	t.Parallel()
	m := &benchMultiplier{v: 1}
	inv := dso.NewInvocation(dso.Ref{Type: TypeBenchMultiplier, Key: "k"}, "mul", []any{int64(3), int64(10000)}, nil)
	v, err := m.Invoke(inv)
	if err != nil {
		t.Fatal(err)
	}
	// The same loop in plain integers, as the Lua script runs it in doubles
	// (exact: every product stays below 2^53).
	want := int64(1)
	for i := 0; i < 10000; i++ {
		want = want * 3 % benchModulus
	}
	if v != want {
		t.Fatalf("mul: %v, want %d", v, want)
	}
	if _, err := m.Invoke(dso.NewInvocation(dso.Ref{}, "div", nil, nil)); err == nil {
		t.Fatal("unknown method accepted")
	}
	if _, err := m.Invoke(dso.NewInvocation(dso.Ref{}, "mul", []any{"x", int64(1)}, nil)); err == nil {
		t.Fatal("bad argument accepted")
	}
}

// TestMulModIsTheFlooredModularProduct checks mulMod against big-integer
// arithmetic, one floored modulo per step as the Lua script's % does, on
// factors and states of every sign and size (int64 products would
// overflow), and n ≤ 0 leaving the state alone as the script's empty loop
// does.
func TestMulModIsTheFlooredModularProduct(t *testing.T) {
	t.Parallel()
	ref := func(v, f, n int64) int64 {
		if n <= 0 {
			return v
		}
		m, x, bf := big.NewInt(benchModulus), big.NewInt(v), big.NewInt(f)
		for i := int64(0); i < n; i++ {
			x.Mod(x.Mul(x, bf), m) // Euclidean: in [0, m) for m > 0
		}
		return x.Int64()
	}
	edges := []int64{0, 1, 2, 3, -1, -3, benchModulus - 1, benchModulus, benchModulus + 1, -benchModulus,
		1 << 40, -(1 << 40), math.MaxInt64, math.MinInt64}
	check := func(v, f, n int64) {
		if got, want := mulMod(v, f, n), ref(v, f, n); got != want {
			t.Fatalf("mulMod(%d, %d, %d) = %d, want %d", v, f, n, got, want)
		}
	}
	for _, v := range edges {
		for _, f := range edges {
			for _, n := range []int64{-1, 0, 1, 2, 7} {
				check(v, f, n)
			}
		}
	}
	rng := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		check(int64(rng.Uint64()), int64(rng.Uint64()), rng.Int64N(40))
		check(rng.Int64N(benchModulus), rng.Int64N(benchModulus), rng.Int64N(40))
	}
	check(1, 3, 10000)
}

// TestStatCPU reads utime and stime (fields 14 and 15) of a /proc/PID/stat
// line whose command name holds spaces and a parenthesis.
func TestStatCPU(t *testing.T) {
	t.Parallel()
	line := "4242 (a b) c) S 1 4242 4242 0 -1 4194560 1000 0 0 0 250 31 0 0 20 0 12 0 100 1000000 500 18446744073709551615"
	d, err := statCPU(line)
	if err != nil || d != 2810*time.Millisecond {
		t.Fatalf("statCPU: %v, %v; want 2.81s", d, err)
	}
	for _, bad := range []string{"", "4242 (x) S 1 2", "4242 (x) S 1 2 3 4 5 6 7 8 9 10 u s"} {
		if _, err := statCPU(bad); err == nil {
			t.Errorf("statCPU(%q) accepted", bad)
		}
	}
}

// TestRedisClientSpeaksRESP2 serves the benchmark's go-redis client from a
// scripted server: it must speak RESP2 (HELLO 2, no CLIENT SETINFO), send
// SET (go-redis sends command names in lower case) with the value's bytes as
// one bulk string, and read bulk and error replies.
func TestRedisClientSpeaksRESP2(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan string, 16)
	go func() {
		nc, err := l.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		r := bufio.NewReader(nc)
		for {
			// One request: *N, then N times $len and the argument.
			head, err := r.ReadString('\n')
			if err != nil {
				close(got)
				return
			}
			req := head
			n, _ := strconv.Atoi(strings.TrimSpace(head[1:]))
			var args []string
			for i := 0; i < n; i++ {
				l1, _ := r.ReadString('\n')
				l2, _ := r.ReadString('\n')
				req += l1 + l2
				args = append(args, strings.TrimSuffix(l2, "\r\n"))
			}
			got <- req
			switch strings.ToUpper(args[0]) {
			case "SET":
				nc.Write([]byte("+OK\r\n"))
			case "GET":
				nc.Write([]byte("$2\r\nv1\r\n"))
			case "PING":
				nc.Write([]byte("-ERR nope\r\n"))
			default:
				nc.Write([]byte("-ERR unknown command '" + args[0] + "'\r\n"))
			}
		}
	}()
	c := dialRedis(l.Addr().String())
	defer c.Close()
	ctx := context.Background()
	if err := c.Set(ctx, "k", []byte("v1"), 0).Err(); err != nil {
		t.Fatalf("SET: %v", err)
	}
	if req := <-got; req != "*2\r\n$5\r\nhello\r\n$1\r\n2\r\n" {
		t.Fatalf("handshake %q, want hello 2", req)
	}
	if req := <-got; req != "*3\r\n$3\r\nset\r\n$1\r\nk\r\n$2\r\nv1\r\n" {
		t.Fatalf("request %q", req)
	}
	v, err := c.Get(ctx, "k").Bytes()
	if err != nil || string(v) != "v1" {
		t.Fatalf("GET: %q %v", v, err)
	}
	if err = c.Ping(ctx).Err(); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("error reply: %v", err)
	}
	<-got // GET
	<-got // PING
	c.Close()
	for req := range got {
		t.Fatalf("unexpected request %q", req)
	}
}

func TestBenchMultiplierStateRoundTrip(t *testing.T) {
	t.Parallel()
	m := &benchMultiplier{v: 1}
	if _, err := m.Invoke(dso.NewInvocation(dso.Ref{Type: TypeBenchMultiplier, Key: "k"}, "mul", []any{int64(3), int64(5)}, nil)); err != nil {
		t.Fatal(err)
	}
	b, err := m.MarshalState()
	if err != nil {
		t.Fatal(err)
	}
	var r benchMultiplier
	if err := r.UnmarshalState(b); err != nil || r.v != 243 {
		t.Fatalf("restored %d (%v), want 243", r.v, err)
	}
	for _, bad := range [][]byte{nil, {0x80}, append(b, 0)} {
		if err := r.UnmarshalState(bad); err == nil {
			t.Fatalf("state %x accepted", bad)
		}
	}
}

func TestLoopbackPortsLeavesPeerPortsFree(t *testing.T) {
	t.Parallel()
	ports, err := loopbackPorts(3, 1000)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if seen[p] {
			t.Fatalf("port %d twice in %v", p, ports)
		}
		seen[p] = true
		if p+1000 > 65535 {
			t.Fatalf("port %d: no peer port", p)
		}
	}
	if _, err := loopbackPorts(1, 70000); err == nil {
		t.Fatal("an offset past the last port accepted")
	}
}

func TestBenchPersistentRefusesRFAboveNodes(t *testing.T) {
	t.Parallel()
	var out strings.Builder
	err := benchPersistent(context.Background(), &out, benchDSOFlags{nodes: 3, rf: 4, protocol: "paxos"})
	if err == nil || !strings.Contains(err.Error(), "rf 4") {
		t.Fatalf("rf 4 on 3 nodes: %v", err)
	}
	if _, err := startBenchCluster(context.Background(), clusterSpec{nodes: 3, protocol: "paxos", dir: t.TempDir(), offset: 1000}); err == nil {
		t.Fatal("rf 0 accepted")
	}
}

func TestDirSize(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "x"), make([]byte, 100), 0o644)
	os.WriteFile(filepath.Join(dir, "a", "b", "y"), make([]byte, 23), 0o644)
	if n := dirSize(dir); n != 123 {
		t.Fatalf("dirSize %d, want 123", n)
	}
}

// bench-dso's --csv file is what the dso-redis experiments parse, row for
// row; a nil recorder records nothing; --csv is refused where it writes
// nothing.
func TestBenchCSVParsesAsTheExperimentsRead(t *testing.T) {
	t.Parallel()
	var none *benchCSV
	none.add("put", "blossom", "p50_us", 1) // no panic, no file
	rec := &benchCSV{}
	rec.addLatency("put", "blossom", pcts{82500 * time.Nanosecond, 274 * time.Microsecond})
	rec.add("throughput_complex", "redis", "ops_per_s", 4135.5)
	path := filepath.Join(t.TempDir(), "b.csv")
	if err := rec.write(path); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rows, err := experiments.ParseBenchCSV(data)
	if err != nil {
		t.Fatalf("%v:\n%s", err, data)
	}
	want := []experiments.BenchRow{
		{Measurement: "put", System: "blossom", Metric: "p50_us", Value: 82.5},
		{Measurement: "put", System: "blossom", Metric: "p99_us", Value: 274},
		{Measurement: "throughput_complex", System: "redis", Metric: "ops_per_s", Value: 4135.5},
	}
	if !slices.Equal(rows, want) {
		t.Fatalf("rows %v, want %v", rows, want)
	}
	// Checked on the flags, not by running the command: the test binary
	// would start itself as the benchmark's servers.
	for _, fl := range []benchDSOFlags{{csvFile: path, rf: 3}, {csvFile: path, rfSweep: true}, {csvFile: path, restartObjects: 5}} {
		if err := fl.csvConflict(); err == nil || !strings.Contains(err.Error(), "--csv") {
			t.Errorf("%+v: %v, want an error on --csv", fl, err)
		}
	}
	if err := (&benchDSOFlags{csvFile: path}).csvConflict(); err != nil {
		t.Errorf("--csv alone: %v", err)
	}
}

// The latency of several runs is summed up per op by the medians of its
// p50s and of its p99s, each taken apart, and the runs' Blossom/Redis
// ratios are each run's own.
func TestLatencyRunsAreSummedUpByTheirMedians(t *testing.T) {
	us := func(n int) time.Duration { return time.Duration(n) * time.Microsecond }
	runs := [][]pcts{
		{{us(50), us(200)}, {us(40), us(90)}},
		{{us(70), us(100)}, {us(100), us(300)}},
		{{us(60), us(150)}, {us(60), us(120)}},
	}
	require.Equal(t, []pcts{{us(60), us(150)}, {us(60), us(120)}}, medianPcts(runs))
	require.Equal(t, []float64{1.25, 0.7, 1}, p50Ratios(runs))
	require.Equal(t, 1.0, median(p50Ratios(runs)))
	require.Equal(t, "1.25× 0.70× 1.00×", joinRatios(p50Ratios(runs)))
}

package main

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/blossom-dso/blossom/internal/loopback"
)

// freeClusterPorts returns a base port for a cluster of n nodes whose
// replicas listen at offset above their client ports: base .. base+n-1 and
// their peers were free a moment ago, and all lie below the kernel's
// ephemeral range, where no outgoing connection can take them meanwhile
// (a cluster on free ports, --base-port 0, has its peer ports in that
// range).
func freeClusterPorts(t *testing.T, n, offset int) int {
	t.Helper()
	for range 100 {
		_, port, _ := net.SplitHostPort(loopback.FreeAddrs(t, 1)[0])
		base, _ := strconv.Atoi(port)
		if base+offset+n > 32000 {
			continue
		}
		free := true
		for i := range n {
			for _, p := range []int{base + i, base + offset + i} {
				l, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", p))
				if err != nil {
					free = false
					break
				}
				l.Close()
			}
		}
		if free {
			return base
		}
	}
	t.Fatal("no free ports for a cluster")
	return 0
}

// TestObjectCommandsLevel runs the object commands with --level on a
// three-node cluster of persistent objects (paxos, rf 3, the levels on by
// default): a weak and a sequential counter count their increments, a
// name keeps its level (the linearizable command on a weak counter fails
// naming the level), the weak level refuses a method that does not
// commute by name, the weak set removes an element and the weak List
// works as a queue, and an unknown level is a usage error.
func TestObjectCommandsLevel(t *testing.T) {
	base := freeClusterPorts(t, 3, 50)
	eps := startClusterCmd(t, 3, "--base-port", fmt.Sprint(base), "--rf", "3", "--data-dir", t.TempDir(), "--no-sync", "--peer-port-offset", "50")
	for _, lv := range []string{"weak", "sequential"} {
		for range 2 {
			if out, err := runObjectCmd(t, eps, "counter", "--level", lv, "-n", lv, "increment", "-i", "3"); err != nil {
				t.Fatalf("%s increment: %q %v", lv, out, err)
			}
		}
		out, err := runObjectCmd(t, eps, "counter", "--level", lv, "-n", lv, "tally")
		if err != nil || out != "6\n" {
			t.Fatalf("%s tally: %q %v", lv, out, err)
		}
	}
	if out, err := runObjectCmd(t, eps, "counter", "--persistent", "-n", "weak", "tally"); err == nil || !strings.Contains(err.Error(), "created at the weak level") {
		t.Fatalf("linearizable call on a weak counter: %q %v", out, err)
	}
	if out, err := runObjectCmd(t, eps, "long", "--level", "weak", "-n", "a", "compareAndSet", "0", "1"); err == nil || !strings.Contains(err.Error(), "weak level") {
		t.Fatalf("compareAndSet at the weak level: %q %v", out, err)
	}
	// The weak set removes what it observed; the weak List is a queue.
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"set", "--level", "weak", "-n", "ws", "add", "x"}, "true\n"},
		{[]string{"set", "--level", "weak", "-n", "ws", "add", "y"}, "true\n"},
		{[]string{"set", "--level", "weak", "-n", "ws", "remove", "x"}, "true\n"},
		{[]string{"set", "--level", "weak", "-n", "ws", "members"}, `["y"]` + "\n"},
		{[]string{"list", "--level", "weak", "-n", "wq", "add", "a"}, "true\n"},
		{[]string{"list", "--level", "weak", "-n", "wq", "add", "b"}, "true\n"},
		{[]string{"list", "--level", "weak", "-n", "wq", "removeAt", "0"}, "a\n"},
		{[]string{"list", "--level", "weak", "-n", "wq", "toList"}, `["b"]` + "\n"},
	} {
		if out, err := runObjectCmd(t, eps, c.args...); err != nil || out != c.want {
			t.Fatalf("%v: %q %v, want %q", c.args, out, err, c.want)
		}
	}
	if out, err := runObjectCmd(t, eps, "list", "--level", "weak", "-n", "wq", "removeAt", "1"); err == nil || !strings.Contains(err.Error(), "removeAt(0) only") {
		t.Fatalf("removeAt 1 at the weak level: %q %v", out, err)
	}
	_, err := runObjectCmd(t, eps, "counter", "--level", "strong", "-n", "x", "tally")
	if e, ok := err.(*exitError); !ok || e.code != 2 || !strings.Contains(err.Error(), "unknown level") {
		t.Fatalf("--level strong: %v", err)
	}
	// objects ls shows every level; objects rm deletes at the sequential
	// level and refuses the weak one.
	ls := func() string {
		cmd := newObjectsCmd()
		out := &syncBuffer{}
		cmd.SetOut(out)
		cmd.SetArgs([]string{"ls", "Counter", "--endpoints", eps})
		if err := cmd.Execute(); err != nil {
			t.Fatal(err)
		}
		var kinds []string
		for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
			f := strings.Split(l, "\t") // type, key, kind, replicas
			if len(f) != 4 {
				t.Fatalf("ls line %q", l)
			}
			kinds = append(kinds, f[1]+" "+f[2])
		}
		return strings.Join(kinds, ", ")
	}
	if got := ls(); got != "sequential persistent:sequential, weak persistent:weak" {
		t.Fatalf("objects ls: %s", got)
	}
	rm := func(args ...string) error {
		cmd := newObjectsCmd()
		cmd.SetOut(&syncBuffer{})
		cmd.SetArgs(append([]string{"rm", "--endpoints", eps}, args...))
		return cmd.Execute()
	}
	if err := rm("--level", "weak", "Counter", "weak"); err == nil || !strings.Contains(err.Error(), "cannot be deleted") {
		t.Fatalf("rm --level weak: %v", err)
	}
	if err := rm("--level", "sequential", "Counter", "sequential"); err != nil {
		t.Fatalf("rm --level sequential: %v", err)
	}
	for i := 0; ls() != "weak persistent:weak"; i++ {
		if i == 500 {
			t.Fatalf("objects ls after rm: %s", ls())
		}
		time.Sleep(20 * time.Millisecond) // the other replicas execute the delete
	}
}

// TestDegradableBenchDSO runs `degradable-bench --target dso` at a tiny
// size: the table has a row per type and level (the weak queue's too),
// and Retwis's counters count every add and tweet and its timelines read
// the newest posts sent to them, at every level (the command fails
// otherwise: shown by planting, not committed, a weak counter segment
// that drops every tenth add and a weak fan-out that skips a post).
func TestDegradableBenchDSO(t *testing.T) {
	cmd := newDegradableBenchCmd()
	out := &syncBuffer{}
	cmd.SetOut(out)
	cmd.SetErr(out)
	cmd.SetArgs([]string{"--target", "dso", "--types", "counter,set,queue", "--repeat", "1", "--dso-clients", "4", "--dso-conns", "2",
		"--dso-objects", "2", "--dso-duration", "150ms", "--dso-retwis-users", "10", "--dso-warmup", "50ms"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := out.String()
	for _, want := range []string{"counter  linearizable", "counter          weak", "queue          weak", "retwis          weak"} {
		if !strings.Contains(strings.Join(strings.Fields(got), " "), strings.Join(strings.Fields(want), " ")) {
			t.Errorf("no %q row in:\n%s", want, got)
		}
	}
	if strings.Contains(got, "not offered") {
		t.Errorf("a type not offered at a level:\n%s", got)
	}
	cmd = newDegradableBenchCmd()
	cmd.SetOut(out)
	cmd.SetErr(out)
	cmd.SetArgs([]string{"--target", "moon"})
	if err := cmd.Execute(); err == nil || !strings.Contains(err.Error(), "want local, sim or dso") {
		t.Fatalf("--target moon: %v", err)
	}
}

// TestDegradableBenchSim runs `degradable-bench --target sim` at a tiny
// size: a row per type and level (the weak queue "not offered"), each run
// checked at its level (the command fails otherwise; package
// degradable/workload's TestSimSabotage shows the checks catching a lost
// update), and the table across protocols.
func TestDegradableBenchSim(t *testing.T) {
	cmd := newDegradableBenchCmd()
	out := &syncBuffer{}
	cmd.SetOut(out)
	cmd.SetErr(out)
	cmd.SetArgs([]string{"--target", "sim", "--sim-clients", "3", "--sim-ops", "60", "--sim-retwis-users", "10", "--sim-timeline", "4"})
	if err := cmd.Execute(); err != nil {
		t.Fatalf("%v\n%s", err, out.String())
	}
	got := strings.Join(strings.Fields(out.String()), " ")
	for _, want := range []string{"counter weak", "queue weak not offered", "retwis weak", "map sequential", "retwis atlas", "set epaxos"} {
		if !strings.Contains(got, want) {
			t.Errorf("no %q row in:\n%s", want, out.String())
		}
	}
}

package main

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestObjectCommandsParseArgumentsAsValues(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]any{
		"5": int64(5), "-2": int64(-2), "2.5": 2.5, "true": true, "null": nil, "abc": "abc",
		"NaN": "NaN", `{"a": 1, "b": [2.5, "x"]}`: map[string]any{"a": int64(1), "b": []any{2.5, "x"}},
		`"42"`: "42",
	} {
		got, err := parseArg(in)
		if err != nil || !reflect.DeepEqual(want, got) {
			t.Fatalf("parseArg(%q) = %#v, %v; want %#v", in, got, err, want)
		}
	}
	if _, err := parseArg("{bad"); err == nil {
		t.Fatal("bad JSON accepted")
	}
}

func TestObjectCommandsFollowTheShellSyntax(t *testing.T) {
	eps := startClusterCmd(t, 1)
	for _, step := range []struct {
		args []string
		want string
	}{
		{[]string{"map", "-n", "m", "mergeAll", "a=1", "b=2"}, "2\n"},
		{[]string{"map", "-n", "m", "mergeAll", `{"a": 5}`, "-c", "max"}, "2\n"},
		{[]string{"map", "-n", "m", "entries"}, `{"a":5,"b":2}` + "\n"},
		{[]string{"map", "-n", "m", "merge", "a", "3"}, "8\n"},
		{[]string{"long", "-n", "x", "addAndGet", "-i", "7"}, "7\n"},
		{[]string{"long", "-n", "x", "compareAndSet", "7", "9"}, "true\n"},
		{[]string{"set", "-n", "s", "add", "u1"}, "true\n"},
		{[]string{"set", "-n", "s", "members"}, `["u1"]` + "\n"},
		{[]string{"list", "-n", "l", "add", "hello"}, "true\n"},
		{[]string{"list", "-n", "l", "get", "0"}, "hello\n"},
		{[]string{"semaphore", "-n", "sem", "-p", "2", "tryAcquire", "2"}, "true\n"},
		{[]string{"latch", "-n", "l", "--count", "1", "countDown"}, "0\n"},
		{[]string{"latch", "-n", "l", "await"}, ""},
		{[]string{"future", "-n", "f", "set", "v"}, "true\n"},
		{[]string{"future", "-n", "f", "get"}, "v\n"},
		{[]string{"pipe", "-n", "p", "put", "job"}, ""},
		{[]string{"pipe", "-n", "p", "take"}, "job\n"},
		{[]string{"treemap", "-n", "t", "put", "b", "1"}, ""},
		{[]string{"treemap", "-n", "t", "firstKey"}, "b\n"},
		{[]string{"matrix", "-n", "mx", "--rows", "2", "--cols", "2", "add", "1", "1", "1.5"}, "1.5\n"},
		{[]string{"bytearray", "-n", "ba", "-l", "2", "addAndGet", "1", "3"}, "3\n"},
		{[]string{"boolean", "-n", "bo", "getAndSet", "true"}, "false\n"},
		{[]string{"reference", "-n", "r", "set", "x"}, ""},
		{[]string{"reference", "-n", "r", "get"}, "x\n"},
		{[]string{"sbarrier", "-n", "sb", "await", "-p", "1"}, "0\n"},
		// Defect 11: negative numbers are arguments, without "--".
		{[]string{"long", "-n", "neg", "set", "-5"}, ""},
		{[]string{"long", "-n", "neg", "get"}, "-5\n"},
		{[]string{"long", "-n", "neg", "addAndGet", "-i", "-3"}, "-8\n"},
		{[]string{"map", "-n", "nm", "merge", "k", "-2.5"}, "-2.5\n"},
		{[]string{"list", "-n", "nl", "add", "-1"}, "true\n"},
		{[]string{"list", "-n", "nl", "indexOf", "-1"}, "0\n"},
	} {
		out, err := runObjectCmd(t, eps, step.args...)
		if err != nil || out != step.want {
			t.Fatalf("%s: got %q, %v; want %q", strings.Join(step.args, " "), out, err, step.want)
		}
	}
	// Failures exit non-zero with the server's message.
	_, err := runObjectCmd(t, eps, "long", "-n", "x", "frobnicate")
	var ee *exitError
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(err.Error(), "unknown method") {
		t.Fatalf("unknown method: %v", err)
	}
	// Defect 10: an out-of-range integer is named as such.
	_, err = runObjectCmd(t, eps, "long", "-n", "x", "set", "9223372036854775808")
	if !errors.As(err, &ee) || ee.code != 2 || !strings.Contains(err.Error(), "out of range for int64") {
		t.Fatalf("out-of-range argument: %v", err)
	}
	_, err = runObjectCmd(t, eps, "long", "-n", "x", "addAndGet", "9.3e18")
	if !errors.As(err, &ee) || ee.code != 1 || !strings.Contains(err.Error(), "9300000000000000000 is out of range for int64") {
		t.Fatalf("out-of-range float argument: %v", err)
	}
	_, err = runObjectCmd(t, eps, "counter", "tally")
	if !errors.As(err, &ee) || ee.code != 2 {
		t.Fatalf("missing -n: %v", err)
	}
	_, err = runObjectCmd(t, "127.0.0.1:1", "counter", "-n", "c", "tally")
	if !errors.As(err, &ee) || ee.code != 3 {
		t.Fatalf("unreachable endpoint: %v", err)
	}
}

package main

import (
	"bufio"
	"net"
	"reflect"
	"strings"
	"testing"

	"github.com/blossom-dso/blossom/dso"
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

func TestRESPClientSpeaksTheProtocol(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got := make(chan string, 1)
	go func() {
		nc, err := l.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		r := bufio.NewReader(nc)
		var req strings.Builder
		for i := 0; i < 7; i++ { // *3, $3 SET, $1 k, $2 v1
			line, _ := r.ReadString('\n')
			req.WriteString(line)
		}
		got <- req.String()
		nc.Write([]byte("+OK\r\n"))
		for i := 0; i < 5; i++ { // GET k
			r.ReadString('\n')
		}
		nc.Write([]byte("*3\r\n$2\r\nv1\r\n:42\r\n$-1\r\n"))
		for i := 0; i < 3; i++ {
			r.ReadString('\n')
		}
		nc.Write([]byte("-ERR nope\r\n"))
	}()
	c, err := dialRESP(l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	v, err := c.do("SET", "k", []byte("v1"))
	if err != nil || v != "OK" {
		t.Fatalf("SET: %v %v", v, err)
	}
	if req := <-got; req != "*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$2\r\nv1\r\n" {
		t.Fatalf("request %q", req)
	}
	v, err = c.do("GET", "k")
	if err != nil || !reflect.DeepEqual(v, []any{[]byte("v1"), int64(42), nil}) {
		t.Fatalf("array reply: %#v %v", v, err)
	}
	if _, err = c.do("PING"); err == nil || !strings.Contains(err.Error(), "nope") {
		t.Fatalf("error reply: %v", err)
	}
}

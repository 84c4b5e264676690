package client

import (
	"errors"
	"fmt"
	"testing"
	"time"
)

// A replica that failed a call with ErrUnavailable is tried last by the
// next calls, until its suspicion expires; other errors do not make it
// suspect.
func TestPreferLiveReplicas(t *testing.T) {
	c := &Client{nodes: map[string]*node{}}
	c.opts.ConnsPerNode = 1
	group := []string{"a:1", "b:1", "c:1"}
	if got := c.preferLive(group); fmt.Sprint(got) != "[a:1 b:1 c:1]" {
		t.Fatalf("no suspect: %v", got)
	}
	c.node("a:1").suspect(fmt.Errorf("%w: frozen", ErrUnavailable))
	c.node("b:1").suspect(errors.New("wrong node"))
	if got := c.preferLive(group); fmt.Sprint(got) != "[b:1 c:1 a:1]" {
		t.Fatalf("a suspected: %v", got)
	}
	c.node("a:1").suspectUntil.Store(time.Now().Add(-time.Millisecond).UnixNano())
	if got := c.preferLive(group); fmt.Sprint(got) != "[a:1 b:1 c:1]" {
		t.Fatalf("suspicion expired: %v", got)
	}
}

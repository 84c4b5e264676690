// Package kvclient is the Go client of the replicated key-value store that
// `blossom replica` serves over HTTP (package runner). A Client is one
// session: it numbers its calls, makes one at a time, and retries a call
// whose outcome is unknown (a timeout, a lost connection, a replica that is
// down) with the same id on the next replica until the call's context ends,
// so that the call executes at most once. Use several Clients for
// concurrency.
package kvclient

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"sync"
	"time"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/mcast"
	"github.com/blossom-dso/blossom/runner"
)

// ErrUnknown wraps the error of a call whose outcome is unknown: it may or
// may not have taken effect.
var ErrUnknown = errors.New("kvclient: outcome unknown")

// ErrRefused wraps a definite failure: the call did not take effect.
var ErrRefused = errors.New("kvclient: refused")

// Options configure a Client.
type Options struct {
	// ID is the session's client id; 0 draws a random one.
	ID uint64
	// Groups and F describe a multicast deployment (runner.Config); calls
	// then go to the replicas of their key's group.
	Groups, F int
	// AttemptTimeout bounds one attempt at one replica (default 2s).
	AttemptTimeout time.Duration
	// HTTP is the HTTP client (default: a shared keep-alive client).
	HTTP *http.Client
}

// Client is one session with the store. It is safe for concurrent use, but
// makes one call at a time.
type Client struct {
	mu    sync.Mutex
	ids   []protocols.NodeID
	addrs map[protocols.NodeID]string
	opts  Options
	id    uint64
	seq   uint64
	acked uint64 // every seq below it was answered
	next  int    // the replica to try first
}

var defaultHTTP = &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 256, IdleConnTimeout: time.Minute}}

// New returns a client of the replicas at endpoints (replica id → client
// API address, host:port).
func New(endpoints map[protocols.NodeID]string, opts Options) *Client {
	c := &Client{addrs: endpoints, opts: opts, id: opts.ID}
	for id := range endpoints {
		c.ids = append(c.ids, id)
	}
	slices.Sort(c.ids)
	if c.id == 0 {
		c.id = rand.Uint64()>>1 | 1
	}
	if c.opts.AttemptTimeout <= 0 {
		c.opts.AttemptTimeout = 2 * time.Second
	}
	if c.opts.HTTP == nil {
		c.opts.HTTP = defaultHTTP
	}
	c.next = rand.IntN(max(len(c.ids), 1))
	return c
}

// ID is the session's client id.
func (c *Client) ID() uint64 { return c.id }

// Put sets key to value.
func (c *Client) Put(ctx context.Context, key string, value []byte) error {
	_, err := c.do(ctx, http.MethodPut, key, value)
	return err
}

// Get returns key's value (empty if absent), read linearizably through the
// replication protocol.
func (c *Client) Get(ctx context.Context, key string) ([]byte, error) {
	return c.do(ctx, http.MethodGet, key, nil)
}

// candidates lists the replicas to try for key, starting at c.next.
func (c *Client) candidates(key string) []protocols.NodeID {
	ids := c.ids
	if c.opts.Groups > 0 {
		ids = mcast.Groups(c.opts.Groups, 2*c.opts.F+1)[runner.GroupOf(key, c.opts.Groups)]
	}
	out := make([]protocols.NodeID, 0, len(ids))
	for i := range ids {
		out = append(out, ids[(c.next+i)%len(ids)])
	}
	return out
}

func (c *Client) do(ctx context.Context, method, key string, value []byte) ([]byte, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	res, err := c.call(ctx, method, key, value)
	for errors.Is(err, errReadAgain) && ctx.Err() == nil {
		// A retried read executed before and its result is not kept: a
		// read has no effect, so it is asked again as a new call.
		res, err = c.call(ctx, method, key, value)
	}
	if errors.Is(err, errReadAgain) {
		err = fmt.Errorf("%w: %s %s: %v", ErrUnknown, method, key, err)
	}
	return res, err
}

// errReadAgain: a read's answer was lost and its retry found it executed.
var errReadAgain = errors.New("kvclient: read executed before, result not kept")

// call makes one call with the next sequence number, retrying it until
// ctx ends.
func (c *Client) call(ctx context.Context, method, key string, value []byte) ([]byte, error) {
	c.seq++
	seq := c.seq
	cands := c.candidates(key)
	if len(cands) == 0 {
		return nil, fmt.Errorf("%w: no replicas", ErrRefused)
	}
	var last error
	for attempt := 0; ; attempt++ {
		id := cands[attempt%len(cands)]
		res, definite, err := c.attempt(ctx, method, c.addrs[id], key, seq, value)
		if err == nil {
			c.acked = seq + 1
			c.next = slices.Index(c.ids, id)
			return res, nil
		}
		if errors.Is(err, errReadAgain) {
			c.acked = seq + 1
			return nil, err
		}
		if definite {
			c.acked = seq + 1 // answered (with a refusal): never retried
			return nil, fmt.Errorf("%w: replica %d: %v", ErrRefused, id, err)
		}
		last = fmt.Errorf("replica %d: %w", id, err)
		if ctx.Err() != nil {
			return nil, fmt.Errorf("%w: %s %s: %v", ErrUnknown, method, key, last)
		}
		if attempt%len(cands) == len(cands)-1 {
			select { // a full round failed: back off a little
			case <-time.After(time.Duration(20+rand.IntN(30)) * time.Millisecond):
			case <-ctx.Done():
				return nil, fmt.Errorf("%w: %s %s: %v", ErrUnknown, method, key, last)
			}
		}
	}
}

// attempt makes one try at one replica. definite reports an answer that
// says the call did not and will not take effect.
func (c *Client) attempt(ctx context.Context, method, addr, key string, seq uint64, value []byte) (res []byte, definite bool, err error) {
	actx, cancel := context.WithTimeout(ctx, c.opts.AttemptTimeout)
	defer cancel()
	u := fmt.Sprintf("http://%s/kv/%s?client=%d&seq=%d&acked=%d", addr, url.PathEscape(key), c.id, seq, c.acked)
	var body io.Reader
	if value != nil {
		body = bytes.NewReader(value)
	}
	req, err := http.NewRequestWithContext(actx, method, u, body)
	if err != nil {
		return nil, true, err
	}
	resp, err := c.opts.HTTP.Do(req)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, runner.MaxValue+1))
	if err != nil {
		return nil, false, err
	}
	switch resp.StatusCode {
	case http.StatusOK:
		return b, false, nil
	case http.StatusConflict:
		return nil, false, errReadAgain
	case http.StatusServiceUnavailable, http.StatusGatewayTimeout, http.StatusMisdirectedRequest:
		// Busy (not submitted), unknown, or a wrong group: try elsewhere.
		return nil, false, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
	}
	return nil, true, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(b))
}

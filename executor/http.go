package executor

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"time"
)

// EnvEndpoint is the environment variable that gives the http back end
// its URL when Options.Endpoint is empty.
const EnvEndpoint = "BLOSSOM_EXECUTOR_ENDPOINT"

// HTTPHandler serves invocations over HTTP, for OpenFaaS- or
// Knative-style platforms and for the http back end: a POST whose body is
// one invocation (JSON, as a process worker reads it) is answered with
// status 200 and one answer (JSON, as a process worker writes it), whether
// the function succeeded or not. It runs the functions registered in this
// binary on goroutines, as the local back end does: a function that
// outlives its deadline, or whose caller hangs up, is abandoned. Worker
// names are name-1, name-2, ...
func HTTPHandler(name string) http.Handler {
	l := newLocal(0, name)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			http.Error(w, "POST an invocation", http.StatusMethodNotAllowed)
			return
		}
		var req request
		if err := json.NewDecoder(io.LimitReader(r.Body, 256<<20)).Decode(&req); err != nil {
			http.Error(w, "bad invocation: "+err.Error(), http.StatusBadRequest)
			return
		}
		res, err := l.Invoke(r.Context(), &req.Invocation)
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(toResponse(req.ID, "", res, err))
	})
}

// httpBackend POSTs attempts to an endpoint served by HTTPHandler.
type httpBackend struct {
	url   string
	sem   chan struct{}
	grace time.Duration
	c     *http.Client
}

func newHTTP(opts Options) (*httpBackend, error) {
	url := opts.Endpoint
	if url == "" {
		url = os.Getenv(EnvEndpoint)
	}
	if url == "" {
		return nil, fmt.Errorf("executor: the http back end needs Options.Endpoint or $%s", EnvEndpoint)
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 64
	}
	return &httpBackend{url: url, sem: make(chan struct{}, opts.Concurrency), grace: opts.KillGrace, c: &http.Client{}}, nil
}

func (b *httpBackend) Name() string { return "http" }

func (b *httpBackend) Close() error {
	b.c.CloseIdleConnections()
	return nil
}

// Invoke POSTs the attempt and decodes the answer. Transport failures and
// non-200 answers fail the attempt with ErrCrashed; no answer by the
// deadline plus Options.KillGrace, with ErrDeadline (the request is
// abandoned, which makes HTTPHandler abandon the function).
func (b *httpBackend) Invoke(ctx context.Context, inv *Invocation) (json.RawMessage, error) {
	fail := func(worker string, k Kind, msg string) *Error {
		return &Error{Function: inv.Function, Invocation: inv.ID, Attempt: inv.Attempt, Worker: worker, Kind: k, Msg: msg}
	}
	select {
	case b.sem <- struct{}{}:
		defer func() { <-b.sem }()
	case <-ctx.Done():
		return nil, fail("", KindCanceled, "waiting for a slot: "+ctx.Err().Error())
	}
	body, err := json.Marshal(&request{Invocation: *inv})
	if err != nil {
		return nil, fail("", KindBadArgs, err.Error())
	}
	rctx := ctx
	if !inv.Deadline.IsZero() {
		var cancel context.CancelFunc
		rctx, cancel = context.WithDeadline(ctx, inv.Deadline.Add(b.grace))
		defer cancel()
	}
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, b.url, bytes.NewReader(body))
	if err != nil {
		return nil, fail(b.url, KindCrashed, err.Error())
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := b.c.Do(req)
	if err != nil {
		switch {
		case errors.Is(rctx.Err(), context.DeadlineExceeded):
			return nil, fail(b.url, KindDeadline, "no answer by the deadline; request abandoned")
		case ctx.Err() != nil:
			return nil, fail(b.url, KindCanceled, ctx.Err().Error())
		}
		return nil, fail(b.url, KindCrashed, err.Error())
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
		return nil, fail(b.url, KindCrashed, fmt.Sprintf("HTTP %s: %s", resp.Status, bytes.TrimSpace(msg)))
	}
	var a response
	if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
		if errors.Is(rctx.Err(), context.DeadlineExceeded) {
			return nil, fail(b.url, KindDeadline, "no answer by the deadline; request abandoned")
		}
		return nil, fail(b.url, KindCrashed, "decode answer: "+err.Error())
	}
	worker := a.Worker
	if worker == "" {
		worker = b.url
	}
	if a.ID != inv.ID {
		return nil, fail(worker, KindCrashed, fmt.Sprintf("protocol: answer for %q to invocation %q", a.ID, inv.ID))
	}
	if we := a.Error; we != nil {
		e := fail(worker, we.Kind, we.Msg)
		e.Stack, e.Permanent = we.Stack, we.Permanent
		return nil, e
	}
	return a.Result, nil
}

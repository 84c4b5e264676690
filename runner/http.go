package runner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/blossom-dso/blossom/protocols"
	"github.com/blossom-dso/blossom/protocols/mcast"
)

// serveHTTP starts the client API on ClientAddr: /kv over a KV, and
// /status.
func (r *Replica) serveHTTP() error {
	ln, err := net.Listen("tcp", r.cfg.ClientAddr)
	if err != nil {
		return fmt.Errorf("runner: client API: %w", err)
	}
	mux := http.NewServeMux()
	if _, ok := r.sm.(*KV); ok {
		mux.HandleFunc("PUT /kv/{key}", func(w http.ResponseWriter, q *http.Request) { r.serveKV(w, q, OpPut) })
		mux.HandleFunc("GET /kv/{key}", func(w http.ResponseWriter, q *http.Request) { r.serveKV(w, q, OpGet) })
	}
	mux.HandleFunc("GET /status", r.serveStatus)
	r.httpLn = ln
	r.httpSrv = &http.Server{
		Handler: mux, ReadHeaderTimeout: 5 * time.Second, ReadTimeout: 30 * time.Second,
		IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 16 << 10,
	}
	go func() { _ = r.httpSrv.Serve(ln) }()
	r.log.Info("client API listening without TLS", "addr", ln.Addr().String())
	return nil
}

// ClientAddr is the address the client API listens on ("" if none).
func (r *Replica) ClientAddr() string {
	if r.httpLn == nil {
		return ""
	}
	return r.httpLn.Addr().String()
}

// serveKV answers PUT and GET /kv/{key}?client=C&seq=S&acked=A.
func (r *Replica) serveKV(w http.ResponseWriter, q *http.Request, op byte) {
	key := q.PathValue("key")
	if key == "" || len(key) > MaxKey {
		http.Error(w, fmt.Sprintf("key must be 1 to %d bytes", MaxKey), http.StatusBadRequest)
		return
	}
	if !r.inGroup(key) {
		g := GroupOf(key, r.cfg.Groups)
		http.Error(w, fmt.Sprintf("key %q belongs to group %d, replicas %v", key, g, mcast.Groups(r.cfg.Groups, 2*r.cfg.F+1)[g]), http.StatusMisdirectedRequest)
		return
	}
	id, acked, err := callID(q)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var value []byte
	if op == OpPut {
		value, err = io.ReadAll(http.MaxBytesReader(w, q.Body, MaxValue))
		if err != nil {
			http.Error(w, fmt.Sprintf("value: %v (at most %d bytes)", err, MaxValue), http.StatusRequestEntityTooLarge)
			return
		}
	}
	res, err := r.Do(q.Context(), Command(id, acked, op, key, value))
	switch {
	case errors.Is(err, ErrDuplicate) && op == OpPut:
		// The put took effect once; that is all its answer says.
		w.Header().Set("Blossom-Duplicate", "true")
		w.WriteHeader(http.StatusOK)
	case errors.Is(err, ErrDuplicate):
		http.Error(w, err.Error()+": read again as a new call", http.StatusConflict)
	case errors.Is(err, ErrBusy):
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	case errors.Is(err, ErrTimeout), errors.Is(err, context.Canceled):
		http.Error(w, err.Error(), http.StatusGatewayTimeout)
	case err != nil:
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
	default:
		w.Header().Set("Content-Type", "application/octet-stream")
		_, _ = w.Write(res)
	}
}

// callID reads the session parameters; a call without them gets a fresh
// client id of its own (no retries possible).
func callID(q *http.Request) (protocols.CommandID, uint64, error) {
	v := q.URL.Query()
	if v.Get("client") == "" && v.Get("seq") == "" {
		return protocols.CommandID{Client: rand.Uint64() >> 1, Seq: 1}, 0, nil
	}
	var out [3]uint64
	for i, name := range []string{"client", "seq", "acked"} {
		s := v.Get(name)
		if s == "" {
			if name == "acked" {
				continue
			}
			return protocols.CommandID{}, 0, fmt.Errorf("missing %s (client, seq and acked go together)", name)
		}
		n, err := strconv.ParseUint(strings.TrimSpace(s), 10, 64)
		if err != nil {
			return protocols.CommandID{}, 0, fmt.Errorf("%s: %q is not an unsigned integer", name, s)
		}
		out[i] = n
	}
	if out[0] == 0 || out[1] == 0 {
		return protocols.CommandID{}, 0, errors.New("client and seq must be positive")
	}
	return protocols.CommandID{Client: out[0], Seq: out[1]}, out[2], nil
}

func (r *Replica) serveStatus(w http.ResponseWriter, q *http.Request) {
	ctx, cancel := context.WithTimeout(q.Context(), 2*time.Second)
	defer cancel()
	st, err := r.Status(ctx)
	if err != nil {
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(st)
}

// Package dsotest starts DSO servers and clusters on loopback for tests,
// examples and demos.
package dsotest

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"sync"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/server"
)

// Cluster is a set of servers running in this process.
type Cluster struct {
	Servers   []*server.Server
	Endpoints []string
	closers   []io.Closer // of the nodes' replicas, closed after the servers
	wg        sync.WaitGroup
	errs      chan error
}

// Options configures StartCluster.
type Options struct {
	// Host to listen on; default 127.0.0.1.
	Host string
	// BasePort: the servers listen on BasePort, BasePort+1, ...; 0 picks
	// free ports.
	BasePort int
	// MaxFrame is passed to every server.
	MaxFrame int
	// Register, if set, is called on every server's registry (user types).
	Register func(*dso.Registry) error
	// Logger for the servers; nil discards their logs.
	Logger *slog.Logger
	// PmemDir, if not empty, keeps each server's objects in a pmem heap,
	// node<i>.heap in that directory (i from 1), reopened if present.
	PmemDir string
	// TLS, Tokens, MaxConns, MaxObjects and MaxKey are passed to every
	// server (see server.Config).
	TLS        *tls.Config
	Tokens     map[string]server.Rights
	MaxConns   int
	MaxObjects int
	MaxKey     int
	// Replicate, if set, is called for every node i (from 0) with the
	// endpoints of all nodes and the node's registry: it starts the node's
	// replicas of persistent objects and returns the server's Replication
	// and what stops the replicas (closed after the servers).
	Replicate func(i int, endpoints []string, reg *dso.Registry) (*server.Replication, io.Closer, error)
}

// StartCluster starts n servers that form one ring.
func StartCluster(n int, o Options) (*Cluster, error) {
	if o.Host == "" {
		o.Host = "127.0.0.1"
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	var ls []net.Listener
	closeAll := func() {
		for _, l := range ls {
			l.Close()
		}
	}
	c := &Cluster{errs: make(chan error, n)}
	for i := 0; i < n; i++ {
		port := 0
		if o.BasePort != 0 {
			port = o.BasePort + i
		}
		l, err := net.Listen("tcp", net.JoinHostPort(o.Host, fmt.Sprint(port)))
		if err != nil {
			closeAll()
			return nil, fmt.Errorf("dsotest: listen: %w", err)
		}
		ls = append(ls, l)
		c.Endpoints = append(c.Endpoints, l.Addr().String())
	}
	for i := range ls {
		reg := dso.NewRegistry()
		if o.Register != nil {
			if err := o.Register(reg); err != nil {
				closeAll()
				return nil, err
			}
		}
		cfg := server.Config{Registry: reg, MaxFrame: o.MaxFrame, Self: c.Endpoints[i], Logger: o.Logger.With("node", c.Endpoints[i]),
			TLS: o.TLS, Tokens: o.Tokens, MaxConns: o.MaxConns, MaxObjects: o.MaxObjects, MaxKey: o.MaxKey}
		if n > 1 {
			cfg.Members = c.Endpoints
		}
		if o.PmemDir != "" {
			cfg.PmemPath = filepath.Join(o.PmemDir, fmt.Sprintf("node%d.heap", i+1))
		}
		fail := func(err error) (*Cluster, error) {
			closeAll()
			c.Close()
			return nil, err
		}
		if o.Replicate != nil {
			rep, cl, err := o.Replicate(i, c.Endpoints, reg)
			if err != nil {
				return fail(err)
			}
			cfg.Replication = rep
			c.closers = append(c.closers, cl)
		}
		s, err := server.New(cfg)
		if err != nil {
			return fail(err)
		}
		c.Servers = append(c.Servers, s)
	}
	for i, s := range c.Servers {
		c.wg.Add(1)
		go func(s *server.Server, l net.Listener) {
			defer c.wg.Done()
			if err := s.Serve(l); err != nil {
				c.errs <- err
			}
		}(s, ls[i])
	}
	return c, nil
}

// Dial returns a client of the cluster.
func (c *Cluster) Dial(ctx context.Context) (*client.Client, error) {
	return client.Dial(ctx, c.Endpoints...)
}

// Close stops every server.
func (c *Cluster) Close() error {
	for _, s := range c.Servers {
		s.Close()
	}
	c.wg.Wait()
	for _, cl := range c.closers {
		cl.Close()
	}
	select {
	case err := <-c.errs:
		return err
	default:
		return nil
	}
}

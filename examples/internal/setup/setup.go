// Package setup is the plumbing shared by the examples: a DSO cluster
// (started in this process or dialled) and an executor on the back end a
// flag names. For the http back end without an endpoint it serves this
// binary's registered functions on a loopback HTTP server of its own
// (executor.HTTPHandler), and for the lambda back end without an endpoint
// or a function name it starts a local Lambda emulator (lambdaemu) whose
// handler processes are this binary, so every example runs on every back
// end from one command line.
package setup

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/blossom-dso/blossom/dso/client"
	"github.com/blossom-dso/blossom/dso/dsotest"
	"github.com/blossom-dso/blossom/executor"
	"github.com/blossom-dso/blossom/executor/lambdaemu"
)

// Flags are the command-line flags every example shares.
type Flags struct {
	// Nodes is the size of the in-process cluster.
	Nodes int
	// Endpoints names a running cluster instead (host:port,...).
	Endpoints string
	// Backend is the executor back end: local, process, http or lambda.
	Backend string
	// Endpoint is the URL of the http back end, or the Lambda endpoint of
	// the lambda back end; empty starts one here (lambda: unless
	// LambdaFunction names a deployed function).
	Endpoint string
	// LambdaFunction names the function of the lambda back end.
	LambdaFunction string
}

// Register defines the shared flags on fs.
func (f *Flags) Register(fs *flag.FlagSet) {
	fs.IntVar(&f.Nodes, "nodes", 3, "servers of the in-process DSO cluster")
	fs.StringVar(&f.Endpoints, "endpoints", "", "use a running DSO cluster instead (host:port,...)")
	fs.StringVar(&f.Backend, "executor", "", "back end: local, process, http or lambda (default $BLOSSOM_EXECUTOR, else local)")
	fs.StringVar(&f.Endpoint, "endpoint", "", "URL of the http back end (default $BLOSSOM_EXECUTOR_ENDPOINT, else a server started here), or of the Lambda API (default: the SDK's for -lambda-function, else an emulator started here)")
	fs.StringVar(&f.LambdaFunction, "lambda-function", "", "Lambda function of the lambda back end, deployed on AWS (default: the function of an emulator started here)")
}

// Env is a DSO cluster, a client of it and an executor.
type Env struct {
	// Endpoints of the cluster.
	Endpoints []string
	// Client of the cluster.
	Client *client.Client
	// Exec runs the cloud threads.
	Exec *executor.Executor
	// Emulator is the Lambda emulator started for the lambda back end, or nil.
	Emulator *lambdaemu.Emulator
	closers  []func() error
}

// Options are the executor settings an example needs.
type Options struct {
	// Concurrency is the number of cloud threads that must run at once
	// (barriers need every party running).
	Concurrency int
	// Stderr receives the workers' output (default os.Stderr).
	Stderr io.Writer
	// Log receives progress lines (nil: none).
	Log io.Writer
}

// Start brings up the environment f describes. Close it when done.
func Start(ctx context.Context, f Flags, o Options) (*Env, error) {
	env := &Env{}
	ok := false
	defer func() {
		if !ok {
			env.Close()
		}
	}()
	if f.Endpoints != "" {
		env.Endpoints = strings.Split(f.Endpoints, ",")
	} else {
		nodes := max(f.Nodes, 1)
		cl, err := dsotest.StartCluster(nodes, dsotest.Options{})
		if err != nil {
			return nil, err
		}
		env.closers = append(env.closers, func() error { cl.Close(); return nil })
		env.Endpoints = cl.Endpoints
		if o.Log != nil {
			fmt.Fprintf(o.Log, "started a %d-node DSO cluster: %s\n", nodes, strings.Join(cl.Endpoints, " "))
		}
	}
	c, err := client.Dial(ctx, env.Endpoints...)
	if err != nil {
		return nil, err
	}
	env.Client = c
	env.closers = append(env.closers, c.Close)
	opts := executor.Options{Backend: f.Backend, DSO: env.Endpoints, Concurrency: o.Concurrency, Stderr: o.Stderr, Endpoint: f.Endpoint}
	if f.Backend == "http" && f.Endpoint == "" {
		url, stop, err := ServeHTTP()
		if err != nil {
			return nil, err
		}
		env.closers = append(env.closers, stop)
		opts.Endpoint = url
		if o.Log != nil {
			fmt.Fprintf(o.Log, "serving the functions over HTTP at %s\n", url)
		}
	}
	if f.Backend == "lambda" {
		opts.Lambda = executor.LambdaOptions{Function: f.LambdaFunction, Endpoint: f.Endpoint}
		if f.Endpoint == "" && f.LambdaFunction == "" {
			emu, err := lambdaemu.Start("127.0.0.1:0", lambdaemu.Options{Concurrency: max(o.Concurrency, 1), Timeout: 15 * time.Minute, Stderr: o.Stderr})
			if err != nil {
				return nil, err
			}
			env.closers = append(env.closers, emu.Close)
			env.Emulator = emu
			cfg := emu.AWSConfig()
			opts.Lambda = executor.LambdaOptions{Function: emu.Function(), Config: &cfg}
			if o.Log != nil {
				fmt.Fprintf(o.Log, "serving the functions on a Lambda emulator at %s\n", emu.URL())
			}
		}
	}
	e, err := executor.New(opts)
	if err != nil {
		return nil, err
	}
	env.Exec = e
	env.closers = append(env.closers, e.Close)
	ok = true
	return env, nil
}

// Context returns ctx carrying the environment's executor.
func (e *Env) Context(ctx context.Context) context.Context {
	return executor.WithExecutor(ctx, e.Exec)
}

// Close stops the executor, the client and the cluster, in that order.
func (e *Env) Close() error {
	var first error
	for i := len(e.closers) - 1; i >= 0; i-- {
		if err := e.closers[i](); err != nil && first == nil {
			first = err
		}
	}
	e.closers = nil
	return first
}

// ServeHTTP serves this binary's registered functions with
// executor.HTTPHandler on a loopback port and returns its URL and a stop
// function.
func ServeHTTP() (url string, stop func() error, err error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	srv := &http.Server{Handler: executor.HTTPHandler("http")}
	go srv.Serve(ln)
	return "http://" + ln.Addr().String() + "/", srv.Close, nil
}

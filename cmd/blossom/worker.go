package main

import (
	"fmt"
	"net/http"
	"os"

	"github.com/spf13/cobra"

	// Functions the blossom binary's workers can run.
	_ "github.com/blossom-dso/blossom/examples/montecarlo/pi"
	"github.com/blossom-dso/blossom/executor"
)

func init() { root.AddCommand(newWorkerCmd()) }

func newWorkerCmd() *cobra.Command {
	var addr string
	cmd := &cobra.Command{
		Use:   "worker",
		Short: "Serve executor invocations on stdin/stdout, or over HTTP with --http",
		Long: `worker runs the functions registered in this binary for the executor.

By default it is a worker of the process back end: it reads one invocation
per line (JSON) on stdin, runs it, and writes one answer per line on stdout,
until stdin closes; what functions print goes to stderr. A process executor
uses it with Options.Command = []string{"blossom", "worker"}.

With --http ADDR it serves the http back end instead: each POST to any path
carries one invocation and is answered with one answer
(BLOSSOM_EXECUTOR=http BLOSSOM_EXECUTOR_ENDPOINT=http://ADDR/ on the caller).`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if addr == "" {
				return executor.ServeStdio()
			}
			host, _ := os.Hostname()
			fmt.Fprintf(os.Stderr, "blossom worker: serving %d functions on http://%s/\n", len(executor.Registered()), addr)
			return http.ListenAndServe(addr, executor.HTTPHandler("http-"+host))
		},
	}
	cmd.Flags().StringVar(&addr, "http", "", "serve invocations over HTTP on this address instead of stdin/stdout")
	return cmd
}

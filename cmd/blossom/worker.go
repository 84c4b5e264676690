package main

import (
	"github.com/spf13/cobra"

	// Functions the blossom binary's workers can run.
	_ "github.com/blossom-dso/blossom/examples/montecarlo/pi"
	"github.com/blossom-dso/blossom/executor"
)

func init() { root.AddCommand(newWorkerCmd()) }

func newWorkerCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "worker",
		Short: "Serve executor invocations on stdin/stdout (a worker of the process back end)",
		Long: `worker runs the functions registered in this binary for the executor's
process back end: it reads one invocation per line (JSON) on stdin, runs it,
and writes one answer per line on stdout, until stdin closes. What functions
print goes to stderr. A process executor uses it with
Options.Command = []string{"blossom", "worker"}.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error { return executor.ServeStdio() },
	}
}

// Command blossom is Blossom's one binary: the simulator, the DSO server and
// local cluster, benchmarks, experiments and the object commands. Each
// subcommand lives in its own file of this package and adds itself to the
// root command in an init function.
package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/blossom-dso/blossom/executor"
)

// root is the top-level command; subcommands attach to it in init functions.
var root = &cobra.Command{
	Use:   "blossom",
	Short: "Blossom: stateful serverless computing over shared objects, and a testbed of replication protocols",
	Long: `Blossom runs cloud threads (executor, worker) that share objects held by DSO
servers (server, cluster, and the object commands). An ephemeral object lives
in the memory of its one owner node (or in its pmem heap, --storage pmem); a
persistent object (servers started with --protocol and --rf, object commands
with --persistent) is replicated on rf nodes by the chosen protocol and
survives kill -9 of any minority of its replicas. The replication protocols
also run in the simulator (sim, explore) and behind a replicated key-value
store (replica).`,
	SilenceUsage:  true,
	SilenceErrors: true,
}

// exitError carries a process exit code through cobra's error return.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string { return e.err.Error() }
func (e *exitError) Unwrap() error { return e.err }

func main() {
	if os.Getenv(executor.EnvLambdaRuntimeAPI) != "" {
		// Started by Lambda (or lambda-emulator) as the function's bootstrap.
		executor.ServeLambda()
	}
	if err := root.Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "blossom:", err)
		if e, ok := err.(*exitError); ok {
			os.Exit(e.code)
		}
		os.Exit(2)
	}
}

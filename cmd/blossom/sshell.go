package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/blossom-dso/blossom/executor"
	"github.com/blossom-dso/blossom/executor/sshell"
)

// envMain makes a process of this executable run the root command on its
// arguments even if it is a test binary: sshell --async starts its
// detached runner so.
const envMain = "BLOSSOM_MAIN"

func init() {
	root.AddCommand(newSshellCmd())
	for _, spec := range dsoObjectSpecs {
		sshell.Tools = append(sshell.Tools, spec.use)
		sshell.Tools = append(sshell.Tools, spec.aliases...)
	}
}

// dispatch runs this process as an object command called by its own name
// (counter -n c tally: the serverless shell's tools are links to this
// executable), as a worker of the process back end, or, with envMain
// set, as blossom; it returns only if none applies.
func dispatch() {
	if name := filepath.Base(os.Args[0]); slices.Contains(sshell.Tools, name) {
		root.SetArgs(append([]string{name}, os.Args[1:]...))
		os.Exit(execute())
	}
	executor.MaybeServeWorker()
	if os.Getenv(envMain) != "" {
		os.Unsetenv(envMain)
		root.SetArgs(os.Args[1:])
		os.Exit(execute())
	}
}

// errQuiet is the error of an exit status that needs no message (the
// exit status of a remote command).
var errQuiet = errors.New("")

func newSshellCmd() *cobra.Command {
	var df dsoClientFlags
	var backend, endpoint, id string
	var files []string
	var async, noSplit bool
	var concurrency int
	cmd := &cobra.Command{
		Use:   "sshell [flags] CMD...",
		Short: "The serverless shell: run a shell command as a cloud function, streaming its output",
		Long: `sshell runs CMD (its arguments joined by spaces) with sh -c as a cloud
function on the executor (--executor local|process|http, default
$BLOSSOM_EXECUTOR, else local) and writes the command's stdout and stderr
here while it runs, through DSO pipes; it exits with the command's exit
status. Inside the function the object commands are on the PATH under
their own names (counter -n c increment -i 5, barrier -n b await -p 100,
map -n m mergeAll a=1, ...) and talk to the same DSO cluster
(--endpoints, $BLOSSOM_ENDPOINTS, default localhost:7400). The command runs
in a fresh working directory, with the files of -f copied there.

A plain pipeline, cmdA | cmdB, runs as one function per stage, the data
carried between them by a DSO pipe (--no-split: in one function; a
command with ;, &, &&, ||, a comment or $$ at top level is never split). With
--async, sshell prints the run's id and returns at once; a detached
process of this binary runs the command and discards its output.

http needs a running "blossom worker --http ADDR" (--endpoint or
$BLOSSOM_EXECUTOR_ENDPOINT). The functions present the credentials of
--token and --tls-* (or $BLOSSOM_TOKEN, $BLOSSOM_TLS_CA, $BLOSSOM_TLS_CERT,
$BLOSSOM_TLS_KEY) on the local and process back ends; an http worker
presents those of its own environment.`,
		Example: `  blossom sshell ls -C /
  blossom sshell 'seq 1 100000 | wc -l'
  blossom sshell 'counter -n average increment -i $(wc -c < data.txt)' -f data.txt
  blossom sshell --async barrier -n b await -p 2; blossom sshell barrier -n b await -p 2`,
		Args:          cobra.MinimumNArgs(1),
		SilenceUsage:  true,
		SilenceErrors: true,
		RunE: func(cmd *cobra.Command, argv []string) error {
			line := strings.Join(argv, " ")
			ctx, stop := dsoSignalContext(cmd)
			defer stop()
			ctx, cancel := df.context(ctx)
			defer cancel()
			eps := dsoEndpoints(df.endpoints)
			if err := df.exportCredentials(); err != nil {
				return err
			}
			if async {
				return sshellAsync(cmd, eps, backend, endpoint, files, noSplit, line)
			}
			in := map[string][]byte{}
			for _, f := range files {
				b, err := os.ReadFile(f)
				if err != nil {
					return &exitError{2, err}
				}
				in[filepath.Base(f)] = b
			}
			c, err := dsoDial(ctx, &df)
			if err != nil {
				return err
			}
			defer c.Close()
			if concurrency <= 0 {
				// Every stage of a pipeline must run at once.
				concurrency = max(16, len(sshell.SplitPipeline(line)))
			}
			e, err := executor.New(executor.Options{Backend: backend, DSO: eps, Endpoint: endpoint,
				Concurrency: concurrency, Stderr: cmd.ErrOrStderr()})
			if err != nil {
				return &exitError{2, err}
			}
			defer e.Close()
			code, err := sshell.Exec(executor.WithExecutor(ctx, e), c, line, sshell.Options{
				Split: !noSplit, Files: in, ID: id, Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()})
			if err != nil {
				return &exitError{1, err}
			}
			if code != 0 {
				return &exitError{code, errQuiet}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false) // flags after CMD belong to CMD
	df.add(cmd, false)
	f.StringVar(&backend, "executor", "", "back end: local, process or http (default $BLOSSOM_EXECUTOR, else local)")
	f.StringVar(&endpoint, "endpoint", "", "URL of the http back end (default $BLOSSOM_EXECUTOR_ENDPOINT)")
	f.StringArrayVarP(&files, "file", "f", nil, "copy FILE into the function's working directory (repeatable)")
	f.BoolVar(&async, "async", false, "print the run's id and return; the command runs detached, its output discarded")
	f.BoolVar(&noSplit, "no-split", false, "run a pipeline in one function")
	f.IntVar(&concurrency, "concurrency", 0, "functions running at once (default 16, or the stages of the pipeline if more)")
	f.StringVar(&id, "id", "", "id of the run (default random)")
	f.MarkHidden("id")
	return cmd
}

// sshellAsync starts a detached process of this executable that runs the
// command synchronously with its output discarded, and prints its id.
func sshellAsync(cmd *cobra.Command, eps []string, backend, endpoint string, files []string, noSplit bool, line string) error {
	exe, err := os.Executable()
	if err != nil {
		return &exitError{1, err}
	}
	id := sshell.NewID()
	args := []string{"sshell", "--id", id, "--endpoints", strings.Join(eps, ",")}
	if backend != "" {
		args = append(args, "--executor", backend)
	}
	if endpoint != "" {
		args = append(args, "--endpoint", endpoint)
	}
	for _, f := range files {
		abs, err := filepath.Abs(f)
		if err != nil {
			return &exitError{2, err}
		}
		if _, err := os.Stat(abs); err != nil {
			return &exitError{2, err}
		}
		args = append(args, "-f", abs)
	}
	if noSplit {
		args = append(args, "--no-split")
	}
	args = append(args, "--", line)
	c := exec.Command(exe, args...)
	c.Env = append(os.Environ(), envMain+"=1")
	if err := detach(c); err != nil { // not killed with our session
		return &exitError{1, err}
	}
	if err := c.Start(); err != nil {
		return &exitError{1, err}
	}
	go c.Wait() // reaped if we live long enough (tests); else by init
	fmt.Fprintln(cmd.OutOrStdout(), id)
	return nil
}

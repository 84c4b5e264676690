package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/blossom-dso/blossom/executor/lambdaemu"
)

func init() { root.AddCommand(newLambdaEmulatorCmd()) }

func newLambdaEmulatorCmd() *cobra.Command {
	var (
		addr string
		o    lambdaemu.Options
	)
	cmd := &cobra.Command{
		Use:   "lambda-emulator [flags] [-- COMMAND ARGS...]",
		Short: "Serve a local AWS Lambda for the executor's lambda back end",
		Long: `lambda-emulator serves one Lambda function locally: Lambda's Invoke API to
the AWS SDK (point it at http://ADDR) and Lambda's Runtime API to the handler
processes it starts, one per concurrent invocation and reused while warm. The
handler is COMMAND (default: this blossom binary, which serves its registered
functions through aws-lambda-go when AWS_LAMBDA_RUNTIME_API is set).

Invocations beyond --concurrency are throttled with TooManyRequestsException,
as Lambda does; an invocation running past --timeout has its process killed
and fails with "Task timed out"; payloads are bounded by 6 MB. Callers:

  BLOSSOM_EXECUTOR=lambda AWS_ENDPOINT_URL_LAMBDA=http://ADDR \
  AWS_REGION=local AWS_ACCESS_KEY_ID=local AWS_SECRET_ACCESS_KEY=local PROGRAM

(the emulator does not check signatures or credentials).`,
		RunE: func(_ *cobra.Command, args []string) error {
			o.Command = args
			e, err := lambdaemu.Start(addr, o)
			if err != nil {
				return err
			}
			defer e.Close()
			fmt.Fprintf(os.Stderr, "blossom lambda-emulator: function %q at %s (concurrency %d, timeout %v)\n",
				e.Function(), e.URL(), o.Concurrency, o.Timeout)
			ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			e.Wait(ctx)
			st := e.Stats()
			fmt.Fprintf(os.Stderr, "blossom lambda-emulator: %d invocations, %d cold starts, %d warm, %d throttled, %d timed out, %d exits\n",
				st.Invocations, st.ColdStarts, st.WarmStarts, st.Throttles, st.Timeouts, st.Exits)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&addr, "addr", "127.0.0.1:9001", "address of the Invoke API")
	f.StringVar(&o.Function, "function", "blossom", "name of the function served")
	f.IntVar(&o.Concurrency, "concurrency", 10, "concurrency limit of the function")
	f.DurationVar(&o.Timeout, "timeout", 60*time.Second, "timeout of each invocation (Lambda's default is 3s, its maximum 15m)")
	return cmd
}

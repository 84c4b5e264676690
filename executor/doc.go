// Package executor runs Go functions as cloud threads: CRUCIAL's
// ServerlessExecutorService for Blossom. A function is registered by name
// at init time (Go cannot ship closures, so every process that may run it
// must link the same registration), and is then invoked by name with
// JSON-encoded arguments on a back end:
//
//	var Pi = executor.Register("pi", func(ctx context.Context, n int) (int64, error) { ... })
//
//	e, _ := executor.New(executor.Options{Backend: "process", DSO: endpoints})
//	ctx = executor.WithExecutor(ctx, e)
//	f := executor.Go(ctx, Pi, 1000)     // a cloud thread
//	hits, err := f.Get()                 // join it
//
// Go returns a Future; InvokeAll runs one invocation per argument and
// InvokeIterative is a parallel for over [from, to) split into contiguous
// chunks. Arguments and results travel as JSON on every back end, the
// local one included, so a program tested with goroutines behaves the same
// in worker processes.
//
// # Back ends
//
// A Backend runs one attempt of one invocation. "local" runs it on a
// goroutine of this process. "process" runs it in a pool of worker
// processes of the same binary, started lazily up to the concurrency
// limit; each worker serves one invocation at a time, reading requests as
// JSON lines on its stdin and answering on its stdout (the worker's
// os.Stdout is redirected to stderr, so functions may print). The
// binary's main must call MaybeServeWorker first (the pool starts it with
// BLOSSOM_EXECUTOR_WORKER set); `blossom worker` serves the blossom
// binary's functions the same way. A worker that dies or must be killed
// fails its invocation with ErrCrashed or ErrDeadline and is replaced by a
// fresh process for the next invocation. "http" POSTs each attempt to
// Options.Endpoint (or $BLOSSOM_EXECUTOR_ENDPOINT), served by HTTPHandler
// (`blossom worker --http ADDR`), for OpenFaaS- or Knative-style
// platforms. "lambda" runs each attempt as one synchronous AWS Lambda
// invocation through the AWS SDK's Invoke (aws-sdk-go-v2/service/lambda);
// the payload is the invocation as a process worker reads it, and the
// function (Options.Lambda.Function, $BLOSSOM_LAMBDA_FUNCTION, default
// "blossom") is the same binary: when the Lambda runtime starts it
// (AWS_LAMBDA_RUNTIME_API is set), MaybeServeWorker serves the registered
// functions as an aws-lambda-go handler (ServeLambda). Credentials and
// region come from the SDK's default chain, or Options.Lambda.Config;
// Options.Lambda.Endpoint (or $AWS_ENDPOINT_URL_LAMBDA) points it at an
// emulator (package lambdaemu, `blossom lambda-emulator`). The SDK's own
// retries are off: only the RetryPolicy re-runs a function. The back end
// is chosen by Options.Backend or, when that is empty, by the
// BLOSSOM_EXECUTOR environment variable (default "local").
//
// # Deploying to AWS Lambda
//
// Build the binary whose main calls MaybeServeWorker (for instance an
// example, or cmd/blossom) for the provided.al2023 runtime, name it
// bootstrap, and zip it (`make lambda-zip` does this for cmd/blossom, or
// for PKG_MAIN=./examples/...):
//
//	GOOS=linux GOARCH=amd64 CGO_ENABLED=0 go build -tags lambda.norpc -o bootstrap ./examples/montecarlo
//	zip function.zip bootstrap
//	aws lambda create-function --function-name blossom --runtime provided.al2023 \
//	    --handler bootstrap --architectures x86_64 --zip-file fileb://function.zip \
//	    --timeout 900 --role arn:aws:iam::ACCOUNT:role/ROLE
//
// The function must reach the DSO servers (a VPC, or public addresses),
// whose endpoints each invocation carries. Credentials for secured servers
// (BLOSSOM_TOKEN, BLOSSOM_TLS_CA, ...: see DSO) go in the function's
// environment variables, never in an invocation.
//
// # Failures, retries and idempotency
//
// Every failure of an invocation is an *Error naming the function, the
// invocation, the attempt and the worker; errors.Is matches its kind
// (ErrFailed, ErrPanic, ErrDeadline, ErrCrashed, ErrUnknownFunction,
// ErrBadArgs). A RetryPolicy re-runs failed attempts with exponential
// back-off, except for errors marked Permanent, unknown functions and
// bad arguments. Options.Timeout is a deadline per attempt: the function's
// context carries it, and a function that ignores it is abandoned (local:
// its goroutine is left running) or killed (process).
//
// A retried function runs its code again. Every attempt of one invocation
// sees the same invocation id (Info, Key). Calls on persistent objects
// made through PersistentDSO apply once however often the invocation is
// retried: the attempts' calls form one replay session named by the id,
// so a retry's calls get the answers of the first execution (a barrier
// is crossed once, a counter incremented once), provided each attempt
// makes its calls one at a time and in the same order. For ephemeral
// objects, which have no sessions, this package offers idempotent
// operations built on atomic single-object steps: OnceCounter adds a
// delta under a key with the Map's putIfAbsent, so a retried add of the
// same key is a no-op. Plain calls on ephemeral objects inside a retried
// function are applied once per attempt; jobs that use them should run
// with one attempt.
package executor

package executor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-lambda-go/lambda"
	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/config"
	awslambda "github.com/aws/aws-sdk-go-v2/service/lambda"
	"github.com/aws/aws-sdk-go-v2/service/lambda/types"
	"github.com/aws/smithy-go"
)

// EnvLambdaFunction is the environment variable that names the Lambda
// function of the lambda back end when LambdaOptions.Function is empty.
const EnvLambdaFunction = "BLOSSOM_LAMBDA_FUNCTION"

// EnvLambdaRuntimeAPI is the variable the Lambda runtime (or the
// emulator, executor/lambdaemu) sets for the processes it starts: the
// address of its Runtime API. MaybeServeWorker serves as a Lambda handler
// when it is set.
const EnvLambdaRuntimeAPI = "AWS_LAMBDA_RUNTIME_API"

// MaxLambdaPayload is Lambda's bound on the payload of a synchronous
// invocation, request and response alike: 6 MB.
const MaxLambdaPayload = 6 << 20

// DefaultLambdaFunction is the function name used when neither
// LambdaOptions.Function nor $BLOSSOM_LAMBDA_FUNCTION names one.
const DefaultLambdaFunction = "blossom"

// LambdaOptions configures the lambda back end.
type LambdaOptions struct {
	// Function is the Lambda function's name or ARN (default
	// $BLOSSOM_LAMBDA_FUNCTION, else DefaultLambdaFunction). The function
	// is this binary built for the provided.al2023 runtime (see the
	// package doc).
	Function string
	// Qualifier is the version or alias to invoke (default $LATEST).
	Qualifier string
	// Endpoint overrides the Lambda endpoint URL (an emulator's); default
	// the SDK's resolution, which honours $AWS_ENDPOINT_URL_LAMBDA.
	Endpoint string
	// Region overrides the region of the SDK's configuration chain.
	Region string
	// Config, if set, is used instead of the SDK's default configuration
	// chain (config.LoadDefaultConfig); Endpoint and Region still apply.
	Config *aws.Config
}

// lambdaBackend invokes a Lambda function per attempt.
type lambdaBackend struct {
	c     *awslambda.Client
	fn    string
	qual  *string
	sem   chan struct{}
	grace time.Duration
}

func newLambda(opts Options) (*lambdaBackend, error) {
	lo := opts.Lambda
	var cfg aws.Config
	if lo.Config != nil {
		cfg = lo.Config.Copy()
	} else {
		var err error
		cfg, err = config.LoadDefaultConfig(context.Background())
		if err != nil {
			return nil, fmt.Errorf("executor: lambda back end: load AWS configuration: %w", err)
		}
	}
	if lo.Region != "" {
		cfg.Region = lo.Region
	}
	if lo.Endpoint != "" {
		cfg.BaseEndpoint = aws.String(lo.Endpoint)
	}
	fn := lo.Function
	if fn == "" {
		fn = os.Getenv(EnvLambdaFunction)
	}
	if fn == "" {
		fn = DefaultLambdaFunction
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 64
	}
	b := &lambdaBackend{
		fn:    fn,
		sem:   make(chan struct{}, opts.Concurrency),
		grace: opts.KillGrace,
		// Retries are the executor's (RetryPolicy) alone: an SDK retry
		// would run the function again behind the policy's back.
		c: awslambda.NewFromConfig(cfg, func(o *awslambda.Options) { o.Retryer = aws.NopRetryer{} }),
	}
	if lo.Qualifier != "" {
		b.qual = aws.String(lo.Qualifier)
	}
	return b, nil
}

func (b *lambdaBackend) Name() string { return "lambda" }

func (b *lambdaBackend) Close() error { return nil }

// Invoke runs the attempt as one synchronous (RequestResponse) Lambda
// invocation whose payload is the invocation as a process worker reads it.
// A throttled invocation (TooManyRequestsException) or a function error
// reported by Lambda (a crash, Lambda's own timeout) fails the attempt with
// ErrCrashed or ErrDeadline, which the retry policy retries; a payload
// over 6 MB, a missing function and a rejected request fail it for good.
func (b *lambdaBackend) Invoke(ctx context.Context, inv *Invocation) (json.RawMessage, error) {
	worker := "lambda:" + b.fn
	fail := func(k Kind, msg string, perm bool) *Error {
		return &Error{Function: inv.Function, Invocation: inv.ID, Attempt: inv.Attempt, Worker: worker, Kind: k, Msg: msg, Permanent: perm}
	}
	select {
	case b.sem <- struct{}{}:
		defer func() { <-b.sem }()
	case <-ctx.Done():
		return nil, fail(KindCanceled, "waiting for a slot: "+ctx.Err().Error(), false)
	}
	payload, err := json.Marshal(&request{Invocation: *inv})
	if err != nil {
		return nil, fail(KindBadArgs, err.Error(), true)
	}
	if len(payload) > MaxLambdaPayload {
		return nil, fail(KindBadArgs, fmt.Sprintf("invocation of %d bytes exceeds Lambda's payload limit of %d bytes", len(payload), MaxLambdaPayload), true)
	}
	rctx := ctx
	if !inv.Deadline.IsZero() {
		var cancel context.CancelFunc
		rctx, cancel = context.WithDeadline(ctx, inv.Deadline.Add(b.grace))
		defer cancel()
	}
	out, err := b.c.Invoke(rctx, &awslambda.InvokeInput{
		FunctionName:   aws.String(b.fn),
		Qualifier:      b.qual,
		InvocationType: types.InvocationTypeRequestResponse,
		Payload:        payload,
	})
	if err != nil {
		switch {
		case errors.Is(rctx.Err(), context.DeadlineExceeded) && ctx.Err() == nil:
			return nil, fail(KindDeadline, "no answer by the deadline; request abandoned", false)
		case ctx.Err() != nil:
			return nil, fail(KindCanceled, ctx.Err().Error(), false)
		}
		return nil, lambdaAPIError(fail, err)
	}
	if id, ok := awsmiddleware.GetRequestIDMetadata(out.ResultMetadata); ok {
		worker += "[request " + id + "]"
	}
	return decodeLambdaAnswer(inv, worker, aws.ToString(out.FunctionError), out.Payload)
}

// lambdaAPIError classifies an error of the Invoke call itself.
func lambdaAPIError(fail func(Kind, string, bool) *Error, err error) *Error {
	var (
		throttled *types.TooManyRequestsException
		tooLarge  *types.RequestTooLargeException
		notFound  *types.ResourceNotFoundException
		api       smithy.APIError
	)
	switch {
	case errors.As(err, &throttled):
		return fail(KindCrashed, "throttled: "+err.Error(), false)
	case errors.As(err, &tooLarge):
		return fail(KindBadArgs, err.Error(), true)
	case errors.As(err, &notFound):
		return fail(KindUnknownFunction, err.Error(), true)
	case errors.As(err, &api) && api.ErrorFault() == smithy.FaultClient:
		// A request Lambda rejects (bad parameters, no permission) is
		// rejected again on a retry.
		return fail(KindCrashed, err.Error(), true)
	}
	return fail(KindCrashed, err.Error(), false)
}

// lambdaFunctionError is the payload of a Lambda function error, as the
// runtime reports it (aws-lambda-go's InvokeResponse_Error) and as Lambda
// reports crashes and timeouts.
type lambdaFunctionError struct {
	Message string `json:"errorMessage"`
	Type    string `json:"errorType"`
}

// decodeLambdaAnswer turns the outcome of a Lambda invocation into the
// attempt's result or *Error. functionError is Lambda's X-Amz-Function-Error
// (empty when the handler returned normally), payload the response.
func decodeLambdaAnswer(inv *Invocation, worker, functionError string, payload []byte) (json.RawMessage, error) {
	fail := func(k Kind, msg string) *Error {
		return &Error{Function: inv.Function, Invocation: inv.ID, Attempt: inv.Attempt, Worker: worker, Kind: k, Msg: msg}
	}
	if functionError != "" {
		// The handler never returns an error (failures travel in the
		// answer), so this is the runtime's or Lambda's: a crash of the
		// process, a timeout, an oversized response.
		var fe lambdaFunctionError
		if err := json.Unmarshal(payload, &fe); err != nil || (fe.Message == "" && fe.Type == "") {
			return nil, fail(KindCrashed, fmt.Sprintf("function error %s: %q", functionError, clip(payload, 512)))
		}
		k := KindCrashed
		if fe.Type == "Sandbox.Timedout" || strings.Contains(fe.Message, "Task timed out") {
			k = KindDeadline
		}
		return nil, fail(k, fmt.Sprintf("function error %s: %s: %s", functionError, fe.Type, fe.Message))
	}
	var a response
	if err := json.Unmarshal(payload, &a); err != nil {
		return nil, fail(KindCrashed, fmt.Sprintf("decode answer: %v", err))
	}
	if a.Worker != "" {
		worker = a.Worker
	}
	// A handler that could not decode the invocation answers with no id.
	if a.ID != inv.ID && (a.ID != "" || a.Error == nil) {
		return nil, fail(KindCrashed, fmt.Sprintf("protocol: answer for %q to invocation %q", a.ID, inv.ID))
	}
	if we := a.Error; we != nil {
		e := fail(we.Kind, we.Msg)
		if we.Kind < KindFailed || we.Kind > KindCanceled {
			e.Kind = KindCrashed
			e.Msg = fmt.Sprintf("protocol: unknown error kind %d: %s", we.Kind, we.Msg)
		}
		e.Stack, e.Permanent = we.Stack, we.Permanent
		return nil, e
	}
	if len(a.Result) == 0 {
		return nil, fail(KindCrashed, "protocol: answer with neither result nor error")
	}
	return a.Result, nil
}

func clip(p []byte, n int) string {
	if len(p) > n {
		return string(p[:n]) + "..."
	}
	return string(p)
}

// ServeLambda serves this binary's registered functions as a Lambda
// handler through the Runtime API at $AWS_LAMBDA_RUNTIME_API
// (aws-lambda-go's lambda.Start); it does not return. Each event is one
// invocation as a process worker reads it, and the handler returns one
// answer as a process worker writes it, with the function's failure
// inside: a Lambda function error therefore means that the runtime, not
// the function, failed. The worker is named after the function and the
// execution environment's log stream.
func ServeLambda() {
	worker := "lambda:" + os.Getenv("AWS_LAMBDA_FUNCTION_NAME") + "/" + os.Getenv("AWS_LAMBDA_LOG_STREAM_NAME")
	lambda.Start(func(ctx context.Context, event json.RawMessage) (json.RawMessage, error) {
		return lambdaHandle(ctx, worker, event), nil
	})
}

// lambdaHandle runs one event and returns the answer's encoding.
func lambdaHandle(ctx context.Context, worker string, event []byte) json.RawMessage {
	var req request
	var res json.RawMessage
	err := json.Unmarshal(event, &req)
	if err != nil {
		err = &Error{Worker: worker, Kind: KindBadArgs, Msg: "bad invocation: " + err.Error(), Permanent: true}
	} else {
		res, err = run(ctx, &req.Invocation, worker)
	}
	out, merr := json.Marshal(toResponse(req.ID, worker, res, err))
	if merr != nil { // a result is valid JSON, so this does not happen
		out, _ = json.Marshal(toResponse(req.ID, worker, nil, &Error{Kind: KindBadArgs, Msg: merr.Error()}))
	}
	return out
}

package executor

import (
	"context"
	"encoding/json"
	"errors"
	"testing"

	"github.com/blossom-dso/blossom/internal/fuzzseed"
)

// lambdaFunctionErrors is what the first byte of a FuzzDecodeLambdaAnswer
// input picks as X-Amz-Function-Error.
var lambdaFunctionErrors = []string{"", "Unhandled", "Handled"}

func lambdaAnswerSeeds() [][]byte {
	ok, _ := json.Marshal(toResponse("i-1", "lambda:f/env-1", json.RawMessage(`42`), nil))
	failed, _ := json.Marshal(toResponse("i-1", "lambda:f/env-1", nil, &Error{Kind: KindPanic, Msg: "boom", Stack: "goroutine 1"}))
	bad := lambdaHandle(context.Background(), "lambda:f/env-1", []byte(`{"id":`))
	seed := func(fe byte, p string) []byte { return append([]byte{fe}, p...) }
	return [][]byte{
		seed(0, string(ok)),
		seed(0, string(failed)),
		seed(0, string(bad)),
		seed(0, `{"id":"i-2","result":1}`),
		seed(0, `{"id":"i-1"}`),
		seed(0, `{"id":"i-1","error":{"kind":99,"msg":"x"}}`),
		seed(1, `{"errorType":"Sandbox.Timedout","errorMessage":"RequestId: x Error: Task timed out after 3.00 seconds"}`),
		seed(1, `{"errorType":"Runtime.ExitError","errorMessage":"RequestId: x Error: Runtime exited with error: exit status 3"}`),
		seed(2, `not json`),
		seed(1, `{}`),
	}
}

// TestLambdaAnswerFuzzSeeds keeps testdata/fuzz/FuzzDecodeLambdaAnswer in
// step with lambdaAnswerSeeds.
func TestLambdaAnswerFuzzSeeds(t *testing.T) {
	fuzzseed.Check(t, "FuzzDecodeLambdaAnswer", lambdaAnswerSeeds())
}

// TestDecodeLambdaAnswer checks the mapping of the seeds' outcomes.
func TestDecodeLambdaAnswer(t *testing.T) {
	inv := &Invocation{ID: "i-1", Function: "f", Attempt: 2}
	want := []error{nil, ErrPanic, ErrBadArgs, ErrCrashed, ErrCrashed, ErrCrashed, ErrDeadline, ErrCrashed, ErrCrashed, ErrCrashed}
	for i, s := range lambdaAnswerSeeds() {
		res, err := decodeLambdaAnswer(inv, "lambda:f", lambdaFunctionErrors[s[0]], s[1:])
		if want[i] == nil {
			if err != nil || string(res) != "42" {
				t.Fatalf("seed %d: got %s, %v; want 42", i, res, err)
			}
			continue
		}
		if !errors.Is(err, want[i]) {
			t.Fatalf("seed %d (%q): got %v, want %v", i, s, err, want[i])
		}
		var ee *Error
		if !errors.As(err, &ee) || ee.Function != "f" || ee.Invocation != "i-1" || ee.Attempt != 2 || ee.Worker == "" {
			t.Fatalf("seed %d: error does not name the function, invocation, attempt and worker: %#v", i, err)
		}
	}
}

// FuzzDecodeLambdaAnswer feeds arbitrary answers (the first byte picks the
// function-error header) to the lambda back end's decoder: it must not
// panic, and returns either a result that is valid JSON or an *Error of a
// known kind naming the invocation.
func FuzzDecodeLambdaAnswer(f *testing.F) {
	for _, s := range lambdaAnswerSeeds() {
		f.Add(s)
	}
	inv := &Invocation{ID: "i-1", Function: "f", Attempt: 1}
	f.Fuzz(func(t *testing.T, in []byte) {
		if len(in) == 0 {
			return
		}
		fe := lambdaFunctionErrors[int(in[0])%len(lambdaFunctionErrors)]
		res, err := decodeLambdaAnswer(inv, "lambda:f", fe, in[1:])
		if err != nil {
			var ee *Error
			if res != nil || !errors.As(err, &ee) || ee.Kind < KindFailed || ee.Kind > KindCanceled || ee.Function != "f" || ee.Invocation != "i-1" {
				t.Fatalf("bad failure: %s, %#v", res, err)
			}
			return
		}
		if fe != "" || !json.Valid(res) {
			t.Fatalf("accepted %q (function error %q) as result %q", in[1:], fe, res)
		}
	})
}

package lincheck

import (
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"github.com/stretchr/testify/require"
)

// testTimeout bounds every check in the tests that expect a verdict.
const testTimeout = 5 * time.Second

// op is a shorthand for an operation that completed ok.
func op(client int, call, ret int64, input, output any) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: input, Call: call, Output: output, Return: ret}
}

// infoOp is a shorthand for an operation of unknown outcome, as
// Recorder.Operations would produce it: it returns after end.
func infoOp(client int, call int64, input any) porcupine.Operation {
	return porcupine.Operation{ClientId: client, Input: input, Call: call, Output: UnknownOutcome{}, Return: 1 << 40}
}

// historyCase is a history and the verdict it must get.
type historyCase struct {
	name string
	ops  []porcupine.Operation
	want Verdict
}

// requireVerdicts checks every case against model.
func requireVerdicts(t *testing.T, model porcupine.Model, cases []historyCase) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			res := Check(model, tc.ops, testTimeout)
			require.Equal(t, tc.want, res.Verdict, "err: %v", res.Err())
			if tc.want == Ok {
				require.NoError(t, res.Err())
			} else {
				require.ErrorIs(t, res.Err(), ErrIllegal)
			}
		})
	}
}

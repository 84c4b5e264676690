package executor_test

import (
	"context"
	"fmt"
	"strings"

	"github.com/blossom-dso/blossom/executor"
)

// Functions are registered at package level, so that worker processes of
// the same binary know them too.
var upper = executor.Register("example.upper", func(_ context.Context, s string) (string, error) {
	return strings.ToUpper(s), nil
})

var sumRange = executor.Register("example.sum", func(_ context.Context, c executor.Chunk[int]) (int, error) {
	s := 0
	for i := c.From; i < c.To; i++ {
		s += i * c.Arg
	}
	return s, nil
})

func Example() {
	e, err := executor.New(executor.Options{Backend: "local"})
	if err != nil {
		panic(err)
	}
	defer e.Close()
	ctx := executor.WithExecutor(context.Background(), e)

	f := executor.Go(ctx, upper, "cloud thread") // start
	s, err := f.Get()                            // join
	fmt.Println(s, err)

	all, err := executor.InvokeAll(ctx, upper, []string{"a", "b"})
	fmt.Println(all, err)

	// A parallel for over [0, 100) on 4 workers, each with the argument 2.
	parts, err := executor.InvokeIterative(ctx, sumRange, 0, 100, 4, 2)
	fmt.Println(parts, err)
	// Output:
	// CLOUD THREAD <nil>
	// [A B] <nil>
	// [600 1850 3100 4350] <nil>
}

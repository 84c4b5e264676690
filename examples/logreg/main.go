// Command logreg trains a logistic regression by gradient descent as cloud
// threads (deliverable Figure 5a): one cloud thread per partition, the
// gradient summed in a shared Matrix and a barrier per iteration, every
// thread updating its copy of the shared weights (package lr), against
// the stateless baseline whose functions exchange the weights and
// gradients through files. It prints the time per iteration of both and
// checks that they compute the same weights.
//
//	go run ./examples/logreg -executor process -workers 4 -iter 100
package main

import (
	"flag"
	"fmt"

	"github.com/blossom-dso/blossom/examples/internal/iterml"
	"github.com/blossom-dso/blossom/examples/logreg/lr"
	"github.com/blossom-dso/blossom/executor"
)

func main() {
	executor.MaybeServeWorker() // a worker process of the process back end
	var c iterml.CLI
	c.Register(flag.CommandLine, 0, 0.5)
	flag.Parse()
	lr.Funcs.Main("logreg", c, lr.Generate, func(m []float64) {
		fmt.Printf("weights: %.3f\n", m)
	})
}

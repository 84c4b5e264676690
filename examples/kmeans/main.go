// Command kmeans clusters generated points with k-means as cloud threads
// (deliverable Listing 5 and Figure 5c): one cloud thread per partition,
// the cluster sums in a shared Matrix and a barrier per iteration
// (package km), against the stateless baseline whose functions exchange
// the centroids and partial sums through files. It prints the time per
// iteration of both and checks that they compute the same centroids.
//
//	go run ./examples/kmeans -executor process -workers 4 -k 25
package main

import (
	"flag"
	"fmt"

	"github.com/blossom-dso/blossom/examples/internal/iterml"
	"github.com/blossom-dso/blossom/examples/kmeans/km"
	"github.com/blossom-dso/blossom/executor"
)

func main() {
	executor.MaybeServeWorker() // a worker process of the process back end
	var c iterml.CLI
	c.Register(flag.CommandLine, 25, 0)
	flag.Parse()
	km.Funcs.Main("kmeans", c, km.Generate, func(m []float64) {
		fmt.Printf("first centroid: %.3f\n", m[:min(len(m), c.Job.Dim)])
	})
}

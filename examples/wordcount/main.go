// Command wordcount counts the words of text files as a map-reduce over a
// DSO map: each mapper, a cloud thread on the executor (-executor
// local|process|http), counts the words of its files and merges them into
// one shared Map (package wc). Without files it generates a deterministic
// corpus first.
//
//	go run ./examples/wordcount -executor process -mappers 8
//	go run ./examples/wordcount -executor process -top 20 books/*.txt
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"sort"
	"time"

	"github.com/blossom-dso/blossom/examples/internal/setup"
	"github.com/blossom-dso/blossom/examples/wordcount/wc"
	"github.com/blossom-dso/blossom/executor"
)

func main() {
	executor.MaybeServeWorker() // a worker process of the process back end
	var f setup.Flags
	f.Register(flag.CommandLine)
	mappers := flag.Int("mappers", 4, "cloud threads")
	files := flag.Int("files", 16, "files of the generated corpus")
	lines := flag.Int("lines", 2000, "lines per generated file")
	top := flag.Int("top", 10, "most frequent words to print")
	flag.Parse()
	if err := run(f, *mappers, *files, *lines, *top, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "wordcount:", err)
		os.Exit(1)
	}
}

func run(f setup.Flags, mappers, nfiles, lines, top int, paths []string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if len(paths) == 0 {
		dir, err := os.MkdirTemp("", "wordcount-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(dir)
		if paths, err = wc.Generate(dir, nfiles, lines, 1); err != nil {
			return err
		}
		fmt.Printf("generated %d files of %d lines in %s\n", nfiles, lines, dir)
	}
	env, err := setup.Start(ctx, f, setup.Options{Concurrency: mappers})
	if err != nil {
		return err
	}
	defer env.Close()
	start := time.Now()
	counts, words, err := wc.Run(env.Context(ctx), env.Client, fmt.Sprint("wordcount-", time.Now().UnixNano()), paths, mappers)
	if err != nil {
		return err
	}
	fmt.Printf("%d words, %d distinct, in %d files, by %d mappers on the %s back end in %v\n",
		words, len(counts), len(paths), mappers, env.Exec.Backend().Name(), time.Since(start).Round(time.Millisecond))
	ws := make([]string, 0, len(counts))
	for w := range counts {
		ws = append(ws, w)
	}
	sort.Slice(ws, func(i, j int) bool {
		if counts[ws[i]] != counts[ws[j]] {
			return counts[ws[i]] > counts[ws[j]]
		}
		return ws[i] < ws[j]
	})
	for _, w := range ws[:min(top, len(ws))] {
		fmt.Printf("%8d  %s\n", counts[w], w)
	}
	return nil
}

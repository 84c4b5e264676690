// Package wc is word count as a map-reduce over a DSO map: the function
// registered with the executor as "wordcount.map" counts the words of its
// files and merges the counts into one shared Map with the sum combiner
// (one mergeAll call per file, atomic on the object), so the reduce is
// done by the object and the driver reads the result from it. Words are
// maximal runs of letters and digits, lower-cased.
package wc

import (
	"bufio"
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"unicode"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/executor"
)

// Task is one mapper's input.
type Task struct {
	// Counts is the key of the shared Map of counts.
	Counts string
	// Files are read by this mapper.
	Files []string
}

// Mapper is the registered map function; it returns the number of words
// it read.
var Mapper = executor.Register("wordcount.map", mapFiles)

func mapFiles(ctx context.Context, t Task) (int64, error) {
	cl, err := executor.DSO(ctx)
	if err != nil {
		return 0, err
	}
	m := dso.NewMap(cl, t.Counts)
	var n int64
	for _, f := range t.Files {
		counts, words, err := CountFile(f)
		if err != nil {
			return n, executor.Permanent(err)
		}
		if len(counts) > 0 {
			in := make(map[string]any, len(counts))
			for w, c := range counts {
				in[w] = c
			}
			if _, err := m.MergeAll(ctx, in, "sum"); err != nil {
				return n, err
			}
		}
		n += words
	}
	return n, nil
}

// Words splits s into its words.
func Words(s string) []string {
	return strings.FieldsFunc(strings.ToLower(s), func(r rune) bool { return !unicode.IsLetter(r) && !unicode.IsDigit(r) })
}

// CountFile counts the words of a file.
func CountFile(path string) (map[string]int64, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, 0, err
	}
	defer f.Close()
	counts := map[string]int64{}
	var n int64
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		for _, w := range Words(sc.Text()) {
			counts[w]++
			n++
		}
	}
	if err := sc.Err(); err != nil {
		return nil, 0, fmt.Errorf("wc: %s: %w", path, err)
	}
	return counts, n, nil
}

// Run counts the words of files with mappers cloud threads on the
// executor of ctx, the counts merged in the shared Map counts, and returns
// the counts and the number of words. The files are split into mappers
// contiguous groups. The map is deleted afterwards. A mapper adds its
// counts once per attempt, so it runs with one attempt.
func Run(ctx context.Context, cl dso.Caller, counts string, files []string, mappers int) (map[string]int64, int64, error) {
	if len(files) == 0 || mappers <= 0 {
		return nil, 0, fmt.Errorf("wc: %d files for %d mappers", len(files), mappers)
	}
	chunks := executor.Split(0, len(files), mappers, 0)
	tasks := make([]Task, len(chunks))
	for i, c := range chunks {
		tasks[i] = Task{Counts: counts, Files: files[c.From:c.To]}
	}
	ns, err := executor.InvokeAll(ctx, Mapper, tasks, executor.WithRetry(executor.RetryPolicy{Attempts: 1}))
	if err != nil {
		return nil, 0, err
	}
	var words int64
	for _, n := range ns {
		words += n
	}
	m := dso.NewMap(cl, counts)
	es, err := m.Entries(ctx)
	if err != nil {
		return nil, 0, err
	}
	out := make(map[string]int64, len(es))
	for w, v := range es {
		n, ok := v.(int64)
		if !ok {
			return nil, 0, fmt.Errorf("wc: count of %q is %T, not int64", w, v)
		}
		out[w] = n
	}
	_, err = m.Call(ctx, "clear")
	return out, words, err
}

// Generate writes files text files of lines lines each into dir, words
// drawn from a Zipf distribution over a fixed vocabulary from seed, and
// returns their paths.
func Generate(dir string, files, lines int, seed uint64) ([]string, error) {
	rng := rand.New(rand.NewPCG(seed, 3))
	const vocab = 5000
	z := rand.NewZipf(rng, 1.2, 1, vocab-1)
	var paths []string
	for f := range files {
		var b strings.Builder
		for range lines {
			n := 4 + rng.IntN(12)
			for i := range n {
				if i > 0 {
					b.WriteByte(' ')
				}
				fmt.Fprintf(&b, "w%d", z.Uint64())
				if rng.IntN(10) == 0 {
					b.WriteString(",")
				}
			}
			b.WriteString(".\n")
		}
		p := filepath.Join(dir, fmt.Sprintf("text-%03d.txt", f))
		if err := os.WriteFile(p, []byte(b.String()), 0o644); err != nil {
			return nil, err
		}
		paths = append(paths, p)
	}
	return paths, nil
}

package wc_test

import (
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/blossom-dso/blossom/examples/internal/setup"
	"github.com/blossom-dso/blossom/examples/wordcount/wc"
	"github.com/blossom-dso/blossom/executor"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	executor.MaybeServeWorker()
	os.Exit(m.Run())
}

func TestWords(t *testing.T) {
	require.Equal(t, []string{"a", "b2", "c", "a"}, wc.Words("A, b2 -- c\ta."))
}

// TestWordCount counts a generated corpus and two hand-written files on
// every back end and checks the shared map against a count made here.
func TestWordCount(t *testing.T) {
	dir := t.TempDir()
	files, err := wc.Generate(dir, 5, 40, 9)
	require.NoError(t, err)
	hand := filepath.Join(dir, "hand.txt")
	require.NoError(t, os.WriteFile(hand, []byte("the cat and the hat\nThe end.\n"), 0o644))
	files = append(files, hand)
	want := map[string]int64{}
	var total int64
	for _, f := range files {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, w := range strings.FieldsFunc(strings.ToLower(string(b)), func(r rune) bool { return r == ' ' || r == '\n' || r == '.' || r == ',' }) {
			want[w]++
			total++
		}
	}
	require.Equal(t, int64(3), want["the"])
	for _, b := range []string{"local", "process", "http"} {
		t.Run(b, func(t *testing.T) {
			env, err := setup.Start(context.Background(), setup.Flags{Nodes: 2, Backend: b}, setup.Options{Concurrency: 3, Stderr: io.Discard})
			require.NoError(t, err)
			defer env.Close()
			got, words, err := wc.Run(env.Context(context.Background()), env.Client, "wc-"+b, files, 3)
			require.NoError(t, err)
			require.Equal(t, total, words)
			require.Equal(t, want, got)
		})
	}
}

func TestMissingFile(t *testing.T) {
	env, err := setup.Start(context.Background(), setup.Flags{Nodes: 1, Backend: "local"}, setup.Options{Stderr: io.Discard})
	require.NoError(t, err)
	defer env.Close()
	_, _, err = wc.Run(env.Context(context.Background()), env.Client, "wc-missing", []string{filepath.Join(t.TempDir(), "none.txt")}, 1)
	require.ErrorContains(t, err, "none.txt")
}

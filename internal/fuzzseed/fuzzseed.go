// Package fuzzseed keeps the checked-in seed corpora of the fuzz targets in
// step with the code: a test lists the encodings that should seed a target,
// and Check verifies that each one is in testdata/fuzz/<target>/, writing
// the missing files when BLOSSOM_WRITE_CORPUS=1.
package fuzzseed

import (
	"crypto/sha256"
	"fmt"
	"os"
	"path/filepath"
	"testing"
)

// Check makes sure every input is a seed file of the fuzz target named
// target in the calling package's testdata/fuzz directory. It fails the test
// for a missing file unless BLOSSOM_WRITE_CORPUS=1, in which case it writes
// the file in the format of go test fuzz v1.
func Check(t testing.TB, target string, inputs [][]byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	write := os.Getenv("BLOSSOM_WRITE_CORPUS") == "1"
	for _, in := range inputs {
		name := fmt.Sprintf("seed-%x", sha256.Sum256(in))[:21]
		path := filepath.Join(dir, name)
		if _, err := os.Stat(path); err == nil {
			continue
		}
		if !write {
			t.Fatalf("fuzz seed %s is not checked in; run the test with BLOSSOM_WRITE_CORPUS=1 and commit it", path)
		}
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		body := fmt.Sprintf("go test fuzz v1\n[]byte(%q)\n", in)
		if err := os.WriteFile(path, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

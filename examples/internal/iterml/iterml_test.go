package iterml

import (
	"math"
	"testing"
)

func TestPartitionRoundTrip(t *testing.T) {
	dir := t.TempDir()
	rows := []float64{1, 2.5, -3, 0, 1e300, math.Copysign(0, -1)}
	if err := WritePartition(dir, 3, rows); err != nil {
		t.Fatal(err)
	}
	got, err := ReadPartition(dir, 3, 2)
	if err != nil || len(got) != len(rows) {
		t.Fatalf("%v, %v", got, err)
	}
	for i := range rows {
		if got[i] != rows[i] {
			t.Fatalf("value %d: %v, want %v", i, got[i], rows[i])
		}
	}
	if _, err := ReadPartition(dir, 3, 3); err == nil {
		t.Fatal("6 values read as rows of 4")
	}
}

// FuzzDecodeRows: a partition of any content is read as whole rows or
// refused, never half-read.
func FuzzDecodeRows(f *testing.F) {
	f.Add([]byte{0, 0, 0, 0, 0, 0, 240, 63}, 0)
	f.Add([]byte{1, 2, 3}, 1)
	f.Fuzz(func(t *testing.T, b []byte, dim int) {
		if dim < 0 || dim > 64 {
			return
		}
		rows, err := DecodeRows(b, dim)
		if err == nil && (len(rows)*8 != len(b) || len(rows)%(dim+1) != 0) {
			t.Fatalf("%d bytes read as %d values of rows of %d", len(b), len(rows), dim+1)
		}
		if err != nil && len(b)%(8*(dim+1)) == 0 {
			t.Fatalf("%d bytes refused for rows of %d: %v", len(b), dim+1, err)
		}
	})
}

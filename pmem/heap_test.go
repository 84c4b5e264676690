package pmem

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestFileHeapRoundTrip(t *testing.T) {
	path := filepath.Join(t.TempDir(), "heap")
	h, err := Create(path, 4<<20, nil)
	require.NoError(t, err)
	require.NoError(t, h.Atomic(func(tx *Tx) error {
		m, err := NewHashMap(tx, true)
		if err != nil {
			return err
		}
		for i := 0; i < 500; i++ {
			s, err := NewString(tx, fmt.Sprintf("value-%d", i))
			if err != nil {
				return err
			}
			if _, _, err := m.Put(tx, []byte(fmt.Sprintf("key-%d", i)), uint64(s)); err != nil {
				return err
			}
		}
		return tx.SetRoot("map", m.P)
	}))
	_, err = h.Check()
	require.NoError(t, err)
	require.NoError(t, h.Close())

	h, err = Open(path)
	require.NoError(t, err)
	defer h.Close()
	require.Equal(t, 0, h.Recovery().Freed)
	require.NoError(t, h.View(func(tx *Tx) error {
		m := HashMap{tx.Root("map")}
		require.Equal(t, 500, m.Len(tx))
		for i := 0; i < 500; i++ {
			v, ok := m.Get(tx, []byte(fmt.Sprintf("key-%d", i)))
			require.True(t, ok)
			require.Equal(t, fmt.Sprintf("value-%d", i), StringOf(tx, Ptr(v)))
		}
		require.Equal(t, []string{"map"}, tx.Roots())
		return nil
	}))
}

func TestOpenRefusesBadHeaders(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "heap")
	h, err := Create(path, 1<<20, nil)
	require.NoError(t, err)
	require.NoError(t, h.Close())
	good, err := os.ReadFile(path)
	require.NoError(t, err)

	for _, tc := range []struct {
		name   string
		mutate func([]byte) []byte
		want   error
		text   string
	}{
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }, ErrCorrupt, "bad magic"},
		{"version", func(b []byte) []byte { b[8] = 7; return b }, ErrVersion, "heap version 7"},
		{"checksum", func(b []byte) []byte { b[20] ^= 1; return b }, ErrCorrupt, "checksum"},
		{"truncated", func(b []byte) []byte { return b[:len(b)-pageSize] }, ErrCorrupt, "file has"},
		{"tiny", func(b []byte) []byte { return b[:100] }, ErrCorrupt, "too small"},
		{"top", func(b []byte) []byte { b[topOff+7] = 0xff; return b }, ErrCorrupt, "allocator top"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := filepath.Join(dir, tc.name)
			require.NoError(t, os.WriteFile(p, tc.mutate(append([]byte(nil), good...)), 0o644))
			_, err := Open(p)
			require.Error(t, err)
			require.True(t, errors.Is(err, tc.want), "%v", err)
			require.Contains(t, err.Error(), p, "the error names the file")
			require.Contains(t, err.Error(), tc.text)
		})
	}
}

func TestAtomicRollsBackOnErrorAndPanic(t *testing.T) {
	h, err := NewVolatile(1<<20, nil)
	require.NoError(t, err)
	var c Counter
	require.NoError(t, h.Atomic(func(tx *Tx) error {
		c, err = NewCounter(tx)
		if err != nil {
			return err
		}
		c.Add(tx, 5)
		return tx.SetRoot("c", c.P)
	}))
	st0, err := h.Check()
	require.NoError(t, err)
	boom := errors.New("boom")
	require.ErrorIs(t, h.Atomic(func(tx *Tx) error {
		c.Add(tx, 1)
		if _, err := NewString(tx, "garbage"); err != nil {
			return err
		}
		return boom
	}), boom)
	require.PanicsWithValue(t, "kaboom", func() {
		_ = h.Atomic(func(tx *Tx) error {
			c.Add(tx, 1)
			panic("kaboom")
		})
	})
	// A nested block's error rolls back the whole outer block, even when the
	// outer block swallows it.
	require.ErrorIs(t, h.Atomic(func(tx *Tx) error {
		c.Add(tx, 100)
		_ = h.Atomic(func(tx *Tx) error { c.Add(tx, 1); return boom })
		return nil
	}), boom)
	// A nested block that succeeds is part of the outer one.
	require.NoError(t, h.Atomic(func(tx *Tx) error {
		c.Add(tx, 10)
		return h.Atomic(func(tx *Tx) error { c.Add(tx, 20); return nil })
	}))
	require.NoError(t, h.View(func(tx *Tx) error {
		require.Equal(t, int64(35), c.Get(tx))
		return nil
	}))
	st, err := h.Check()
	require.NoError(t, err)
	require.Equal(t, st0.Top, st.Top, "rolled-back allocations are undone")
}

// TestCheckCatchesLeak shows the leak check can fail, and that the
// recovery-time collector repairs what it reports.
func TestCheckCatchesLeak(t *testing.T) {
	s := NewSim(1 << 20)
	h, err := s.Create(nil)
	require.NoError(t, err)
	require.NoError(t, h.Atomic(func(tx *Tx) error {
		_, err := NewString(tx, "nobody points at me")
		return err
	}))
	_, err = h.Check()
	require.ErrorContains(t, err, "leak")
	h, err = s.Open()
	require.NoError(t, err)
	require.Equal(t, 1, h.Recovery().Freed)
	_, err = h.Check()
	require.NoError(t, err)
	// Freed blocks are reused.
	var p Ptr
	require.NoError(t, h.Atomic(func(tx *Tx) error {
		p, err = NewString(tx, "reused block here!!")
		if err != nil {
			return err
		}
		return tx.SetRoot("s", p)
	}))
	st, err := h.Check()
	require.NoError(t, err)
	require.Equal(t, 1, st.Blocks)
}

func TestTxTooLarge(t *testing.T) {
	h, err := NewVolatile(2<<20, &Options{LogSize: 64 << 10})
	require.NoError(t, err)
	var a Array
	require.NoError(t, h.Atomic(func(tx *Tx) error {
		a, err = NewArray(tx, false, 16384)
		if err != nil {
			return err
		}
		for i := 0; i < 16384; i++ {
			if err := a.Append(tx, uint64(i)); err != nil {
				return err
			}
		}
		return tx.SetRoot("a", a.P)
	}), "writes to fresh blocks are not logged")
	err = h.Atomic(func(tx *Tx) error {
		for i := 0; i < 16384; i++ {
			a.Set(tx, i, 7)
		}
		return nil
	})
	require.ErrorIs(t, err, ErrTxTooLarge)
	require.NoError(t, h.View(func(tx *Tx) error {
		require.Equal(t, uint64(16383), a.Get(tx, 16383))
		return nil
	}))
}

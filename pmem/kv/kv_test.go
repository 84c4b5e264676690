package kv

import (
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/internal/fuzzseed"
)

// stores opens one of each store in dir; the file store twice, with no
// cache and with a cache of 3 records (far fewer than the keys, so that
// eviction runs).
func stores(t *testing.T, dir string) map[string]Store {
	t.Helper()
	p, err := OpenPmem(filepath.Join(dir, "heap"), 16<<20)
	require.NoError(t, err)
	f0, err := OpenFile(filepath.Join(dir, "f0"), 0)
	require.NoError(t, err)
	f3, err := OpenFile(filepath.Join(dir, "f3"), 3)
	require.NoError(t, err)
	b, err := OpenBolt(filepath.Join(dir, "bolt"))
	require.NoError(t, err)
	return map[string]Store{"pmem": p, "file": f0, "file-cache3": f3, "bbolt": b, "memory": NewMemory()}
}

// TestStoresFollowModel drives random inserts, reads, one-field updates
// (values of changing lengths) and scans against every store and a plain
// map, comparing every result, then reopens the durable stores and compares
// their contents.
func TestStoresFollowModel(t *testing.T) {
	const seed = 5
	dir := t.TempDir()
	ss := stores(t, dir)
	model := map[string][][]byte{}
	rng := rand.New(rand.NewPCG(seed, 0))
	val := func() []byte {
		b := make([]byte, 1+rng.IntN(40))
		for i := range b {
			b[i] = 'a' + byte(rng.IntN(26))
		}
		return b
	}
	var keys []string
	bufs := map[string][][]byte{}
	for op := 0; op < 1000; op++ {
		switch k := rng.IntN(10); {
		case k < 2 || len(keys) == 0:
			key := fmt.Sprintf("k%03d", rng.IntN(60))
			rec := [][]byte{val(), val(), val()}
			if _, ok := model[key]; !ok {
				keys = append(keys, key)
			}
			model[key] = copyFields(rec)
			for name, s := range ss {
				require.NoError(t, s.Insert(key, rec), "seed %d op %d %s", seed, op, name)
			}
		case k < 6:
			key := keys[rng.IntN(len(keys))]
			for name, s := range ss {
				got, err := s.Read(key, bufs[name])
				require.NoError(t, err, "seed %d op %d %s", seed, op, name)
				require.Equal(t, model[key], got, "seed %d op %d %s read %s", seed, op, name, key)
				bufs[name] = got
			}
		case k < 9:
			key, i, v := keys[rng.IntN(len(keys))], rng.IntN(3), val()
			model[key][i] = slices.Clone(v)
			for name, s := range ss {
				require.NoError(t, s.Update(key, i, v), "seed %d op %d %s", seed, op, name)
			}
			v[0] = '!' // the stores copied the value
		default:
			start, n := fmt.Sprintf("k%03d", rng.IntN(60)), 1+rng.IntN(8)
			sorted := slices.Sorted(func(yield func(string) bool) {
				for k := range model {
					if k >= start && !yield(k) {
						return
					}
				}
			})
			want := sorted[:min(n, len(sorted))]
			for name, s := range ss {
				var got []string
				require.NoError(t, s.Scan(start, n, func(k string, f [][]byte) bool {
					require.Equal(t, model[k], f, "seed %d op %d %s scan", seed, op, name)
					got = append(got, k)
					return true
				}))
				require.Equal(t, want, got, "seed %d op %d %s scan from %s", seed, op, name, start)
			}
		}
	}
	for name, s := range ss {
		require.NoError(t, s.Close(), name)
	}
	for name, s := range stores(t, dir) {
		if name == "memory" {
			continue
		}
		for k, want := range model {
			got, err := s.Read(k, nil)
			require.NoError(t, err, "%s after reopen", name)
			require.Equal(t, want, got, "%s after reopen: %s", name, k)
		}
		_, err := s.Read("absent", nil)
		require.ErrorIs(t, err, ErrNotFound, name)
		require.NoError(t, s.Close())
	}
}

// crashBeforeFree makes the next store of s stop after writing the new slot,
// before freeing the old one: the file a crash between the two writes
// leaves.
func crashBeforeFree(s *File, key string, fields [][]byte) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.crashAfterWrite = true
	defer func() { s.crashAfterWrite = false }()
	return s.store(key, fields)
}

// TestFileRecoversFromCrashes checks the file store's open against the
// states a crash can leave: both slots of an update live (the newer must
// win even when it lies before the older in the file), the new slot torn
// (the older record stays), and a torn end of the file (cut off).
func TestFileRecoversFromCrashes(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data")
	s, err := OpenFile(path, 0)
	require.NoError(t, err)
	rec := func(v string) [][]byte { return [][]byte{[]byte(v), []byte("x")} }
	require.NoError(t, s.Insert("a", rec("a1")))
	require.NoError(t, s.Insert("b", rec("b1")))
	require.NoError(t, s.Update("a", 0, []byte("a2"))) // a moves to the end; its first slot is free
	// b's new slot takes a's freed slot, before b's old one.
	require.NoError(t, crashBeforeFree(s, "b", rec("b2")))
	require.Less(t, s.index["b"].off, int64(len(fileMagic))+int64(s.index["a"].size)+1)
	require.NoError(t, s.Close())

	s, err = OpenFile(path, 0)
	require.NoError(t, err)
	got, err := s.Read("b", nil)
	require.NoError(t, err)
	require.Equal(t, rec("b2"), got, "the newer of two live slots wins")
	got, err = s.Read("a", nil)
	require.NoError(t, err)
	require.Equal(t, rec("a2"), got)

	// A torn new slot: c's update is written over a free slot, then its
	// body is damaged before the old slot was freed.
	require.NoError(t, s.Insert("c", rec("c1")))
	require.NoError(t, s.Update("c", 0, []byte("c2")))
	require.NoError(t, crashBeforeFree(s, "c", rec("c3")))
	torn := s.index["c"]
	require.NoError(t, s.Close())
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	require.NoError(t, err)
	_, err = f.WriteAt([]byte("garbage"), torn.off+slotHdr+12)
	require.NoError(t, err)
	// And a torn end: half a slot header.
	st, err := f.Stat()
	require.NoError(t, err)
	_, err = f.WriteAt([]byte{200, 0, 0, 0, 1, 0}, st.Size())
	require.NoError(t, err)
	require.NoError(t, f.Close())

	s, err = OpenFile(path, 0)
	require.NoError(t, err)
	got, err = s.Read("c", nil)
	require.NoError(t, err)
	require.Equal(t, rec("c2"), got, "a torn new slot leaves the old record")
	st, err = os.Stat(path)
	require.NoError(t, err)
	require.Equal(t, s.end, st.Size(), "the torn end is cut off")
	require.NoError(t, s.Insert("d", rec("d1"))) // the torn slot is reusable
	for k, v := range map[string]string{"a": "a2", "b": "b2", "c": "c2", "d": "d1"} {
		got, err := s.Read(k, nil)
		require.NoError(t, err)
		require.Equal(t, rec(v), got, k)
	}
	require.NoError(t, s.Close())

	require.NoError(t, os.WriteFile(path, []byte("not a store"), 0o644))
	_, err = OpenFile(path, 0)
	require.ErrorContains(t, err, path)
}

func fileFuzzSeeds() [][]byte {
	dir, err := os.MkdirTemp("", "kvfuzz")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "data")
	s, err := OpenFile(path, 0)
	if err != nil {
		panic(err)
	}
	_ = s.Insert("a", [][]byte{[]byte("1"), []byte("22")})
	_ = s.Insert("b", [][]byte{[]byte("333")})
	_ = s.Update("a", 1, []byte("4444"))
	_ = s.Close()
	img, err := os.ReadFile(path)
	if err != nil {
		panic(err)
	}
	return [][]byte{
		img,
		img[:len(img)-3],
		[]byte(fileMagic),
		append([]byte(fileMagic), 16, 0, 0, 0, 1, 0, 0, 0),
		[]byte("garbage!garbage!garbage!"),
	}
}

func TestFileFuzzSeedsCheckedIn(t *testing.T) {
	fuzzseed.Check(t, "FuzzOpenFile", fileFuzzSeeds())
}

// FuzzOpenFile opens arbitrary data files: OpenFile must return an error or
// a store whose every indexed record reads back, that accepts a write, and
// that reopens with the same records; never panic.
func FuzzOpenFile(f *testing.F) {
	for _, s := range fileFuzzSeeds() {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(t.TempDir(), "data")
		require.NoError(t, os.WriteFile(path, data, 0o644))
		s, err := OpenFile(path, 1)
		if err != nil {
			return
		}
		want := map[string][][]byte{}
		for _, k := range s.keys {
			r, err := s.Read(k, nil)
			require.NoError(t, err, "indexed key %q", k)
			want[k] = r
		}
		require.NoError(t, s.Insert("new", [][]byte{[]byte("v")}))
		want["new"] = [][]byte{[]byte("v")}
		require.NoError(t, s.Close())
		s, err = OpenFile(path, 1)
		require.NoError(t, err)
		defer s.Close()
		require.Len(t, s.keys, len(want))
		for k, w := range want {
			r, err := s.Read(k, nil)
			require.NoError(t, err)
			require.Equal(t, w, r, k)
		}
	})
}

package server_test

import (
	"bufio"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/blossom-dso/blossom/dso"
	"github.com/blossom-dso/blossom/dso/server"
	"github.com/blossom-dso/blossom/dso/wire"
)

var fuzzSrv struct {
	once sync.Once
	s    *server.Server
	addr string
	err  error
}

// fuzzServer is one server shared by every input of FuzzConnection, so
// that damage left by one input (a leak, a stuck lock) shows in the next.
func fuzzServer() (*server.Server, string, error) {
	fuzzSrv.once.Do(func() {
		s, err := server.New(server.Config{MaxFrame: 1 << 20, MaxBuffered: 4 << 20, MaxObjects: 10000,
			FrameTimeout: 2 * time.Second, Logger: slog.New(slog.DiscardHandler)})
		if err != nil {
			fuzzSrv.err = err
			return
		}
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fuzzSrv.err = err
			return
		}
		go s.Serve(l)
		fuzzSrv.s, fuzzSrv.addr = s, l.Addr().String()
	})
	return fuzzSrv.s, fuzzSrv.addr, fuzzSrv.err
}

// frames concatenates frames built by the wire package.
func frames(fs ...[]byte) []byte {
	var out []byte
	for _, f := range fs {
		out = append(out, f...)
	}
	return out
}

// FuzzConnection feeds the server's connection handler arbitrary byte
// streams: the server must not panic, must hold bounded memory, and must
// still answer a well-formed call on a new connection afterwards.
func FuzzConnection(f *testing.F) {
	call := func(id uint64, typ, key, method string, args ...any) []byte {
		b, err := wire.AppendCall(nil, id, 0, typ, key, method, args, nil)
		if err != nil {
			panic(err)
		}
		return b
	}
	f.Add(call(1, dso.TypeCounter, "c", "increment"))
	f.Add(frames(call(1, dso.TypePipe, "p", "take"), call(2, dso.TypeAtomicLong, "l", "incrementAndGet"),
		wire.AppendSimple(nil, wire.OpCancel, 1), wire.AppendSimple(nil, wire.OpPing, 3)))
	f.Add(frames(wire.AppendHello(nil, 1, wire.HelloIncarnations, "tok"), call(2, dso.TypeMap, "m", "merge", "k", int64(1), "bogus")))
	f.Add(frames(wire.AppendSimple(nil, wire.OpList, 1, ""), wire.AppendSimple(nil, wire.OpDelete, 2, dso.TypeCounter, "c"),
		wire.AppendSimple(nil, wire.OpMembers, 3)))
	f.Add([]byte{0, 0, 0, 0})
	f.Add(binary.BigEndian.AppendUint32(nil, 16<<20))
	f.Add(append(binary.BigEndian.AppendUint32(nil, 2<<20), make([]byte, 64)...))
	f.Add([]byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
	f.Add(call(1, dso.TypeCyclicBarrier, "b", "await", int64(1)))
	f.Fuzz(func(t *testing.T, data []byte) {
		s, addr, err := fuzzServer()
		require.NoError(t, err)
		nc, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		nc.Write(data)
		nc.(*net.TCPConn).CloseWrite()
		nc.SetReadDeadline(time.Now().Add(10 * time.Second))
		io.Copy(io.Discard, nc) // until the server closes: its answers, if any
		nc.Close()

		st := s.Stats()
		require.LessOrEqual(t, st.BufferedBytes, int64(4<<20), "buffered bytes over the server's bound")
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		require.Less(t, ms.HeapInuse, uint64(1<<30), "heap of the fuzzing process")

		// A well-formed call on a fresh connection is still answered.
		ok, err := net.Dial("tcp", addr)
		require.NoError(t, err)
		defer ok.Close()
		ok.SetDeadline(time.Now().Add(10 * time.Second))
		_, err = ok.Write(call(7, dso.TypeAtomicLong, "fuzz-probe", "incrementAndGet"))
		require.NoError(t, err)
		body, err := wire.ReadFrame(bufio.NewReader(ok), nil, 1<<20)
		require.NoError(t, err)
		r, err := wire.DecodeReply(body)
		require.NoError(t, err)
		require.True(t, r.OK, "%+v", r)
		require.Equal(t, uint64(7), r.ID)
	})
}

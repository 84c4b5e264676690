package mandel_test

import (
	"bytes"
	"context"
	"image/color"
	"image/png"
	"io"
	"os"
	"testing"

	"github.com/blossom-dso/blossom/examples/internal/setup"
	"github.com/blossom-dso/blossom/examples/mandelbrot/mandel"
	"github.com/blossom-dso/blossom/executor"
	"github.com/stretchr/testify/require"
)

func TestMain(m *testing.M) {
	executor.MaybeServeWorker()
	os.Exit(m.Run())
}

// pixel returns the pixel whose centre is nearest to c.
func pixel(j mandel.Job, c complex128) (int, int) {
	px := int((real(c) - j.X0) / (j.X1 - j.X0) * float64(j.Width))
	py := int((j.Y1 - imag(c)) / (j.Y1 - j.Y0) * float64(j.Height))
	return px, py
}

func TestMandelbrot(t *testing.T) {
	j := mandel.Default(70, 50, 200)
	var want []int
	for _, b := range []string{"local", "process", "http"} {
		t.Run(b, func(t *testing.T) {
			env, err := setup.Start(context.Background(), setup.Flags{Nodes: 1, Backend: b}, setup.Options{Concurrency: 4, Stderr: io.Discard})
			require.NoError(t, err)
			defer env.Close()
			iters, err := mandel.Compute(env.Context(context.Background()), j, 4)
			require.NoError(t, err)
			require.Len(t, iters, 70*50)
			if want == nil {
				want = iters
			} else {
				require.Equal(t, want, iters, "the same picture on every back end")
			}
			img := mandel.Image(j, iters)
			require.Equal(t, 70, img.Bounds().Dx())
			require.Equal(t, 50, img.Bounds().Dy())
			black := color.RGBA{A: 255}
			for _, c := range []complex128{0, -1, -0.1 + 0.1i, -0.5 - 0.3i} { // inside
				px, py := pixel(j, c)
				require.Equal(t, black, img.RGBAAt(px, py), "pixel of %v", c)
			}
			for _, c := range []complex128{0.9 + 1i, -2.3 - 1.1i, 0.8} { // outside, escaping fast
				px, py := pixel(j, c)
				require.NotEqual(t, black, img.RGBAAt(px, py), "pixel of %v", c)
				require.Less(t, iters[py*j.Width+px], 10, "escape of %v", c)
			}
			var buf bytes.Buffer
			require.NoError(t, png.Encode(&buf, img))
			dec, err := png.Decode(&buf)
			require.NoError(t, err)
			require.Equal(t, img.Bounds(), dec.Bounds())
		})
	}
}

func TestEscape(t *testing.T) {
	require.Equal(t, 100, mandel.Escape(0, 100))
	require.Equal(t, 100, mandel.Escape(-2, 100)) // on the boundary, bounded
	require.Equal(t, 1, mandel.Escape(3, 100))
}

// Package mandel computes the Mandelbrot set as cloud threads: the image
// is split into bands of rows, each band is one invocation of the
// registered function "mandelbrot.rows" (InvokeIterative over the rows),
// and the driver assembles the bands' escape counts into an image.
package mandel

import (
	"context"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"math"

	"github.com/blossom-dso/blossom/executor"
)

// Job is one picture of the region [X0, X1] × [Y0, Y1] of the complex
// plane.
type Job struct {
	Width, Height int
	// MaxIter bounds the iterations; a point that has not escaped by
	// then is taken to be in the set. At most 65535.
	MaxIter int
	X0, Y0  float64
	X1, Y1  float64
}

// Default is the classic view of the whole set.
func Default(width, height, maxIter int) Job {
	return Job{Width: width, Height: height, MaxIter: maxIter, X0: -2.5, X1: 1, Y0: -1.25, Y1: 1.25}
}

// At returns the point of the plane at the centre of pixel (px, py).
func (j Job) At(px, py int) complex128 {
	x := j.X0 + (float64(px)+0.5)*(j.X1-j.X0)/float64(j.Width)
	y := j.Y1 - (float64(py)+0.5)*(j.Y1-j.Y0)/float64(j.Height)
	return complex(x, y)
}

// Escape returns the iteration at which z ← z² + c leaves the disc of
// radius 2, or maxIter if it does not within maxIter iterations.
func Escape(c complex128, maxIter int) int {
	x, y := 0.0, 0.0
	cr, ci := real(c), imag(c)
	for i := 0; i < maxIter; i++ {
		x2, y2 := x*x, y*y
		if x2+y2 > 4 {
			return i
		}
		x, y = x2-y2+cr, 2*x*y+ci
	}
	return maxIter
}

// Band is the result of one invocation: the escape counts of rows
// [From, To), row-major, as little-endian uint16s.
type Band struct {
	From, To int
	Iters    []byte
}

// Rows is the registered cloud-thread function: it computes one band.
var Rows = executor.Register("mandelbrot.rows", rows)

func rows(ctx context.Context, c executor.Chunk[Job]) (Band, error) {
	j := c.Arg
	b := Band{From: c.From, To: c.To, Iters: make([]byte, 0, 2*(c.To-c.From)*j.Width)}
	for py := c.From; py < c.To; py++ {
		if err := ctx.Err(); err != nil {
			return Band{}, err
		}
		for px := 0; px < j.Width; px++ {
			b.Iters = binary.LittleEndian.AppendUint16(b.Iters, uint16(Escape(j.At(px, py), j.MaxIter)))
		}
	}
	return b, nil
}

// Compute runs the job on the executor of ctx in workers bands and
// returns the escape counts, indexed [py*Width+px].
func Compute(ctx context.Context, j Job, workers int) ([]int, error) {
	if j.Width <= 0 || j.Height <= 0 || j.MaxIter <= 0 || j.MaxIter > 65535 || j.X1 <= j.X0 || j.Y1 <= j.Y0 {
		return nil, fmt.Errorf("mandel: bad job %+v", j)
	}
	bands, err := executor.InvokeIterative(ctx, Rows, 0, j.Height, workers, j)
	if err != nil {
		return nil, err
	}
	out := make([]int, j.Width*j.Height)
	for _, b := range bands {
		if len(b.Iters) != 2*(b.To-b.From)*j.Width {
			return nil, fmt.Errorf("mandel: band [%d, %d) has %d bytes, want %d", b.From, b.To, len(b.Iters), 2*(b.To-b.From)*j.Width)
		}
		for i := range (b.To - b.From) * j.Width {
			out[b.From*j.Width+i] = int(binary.LittleEndian.Uint16(b.Iters[2*i:]))
		}
	}
	return out, nil
}

// Image colours escape counts: black inside the set, and outside a
// gradient on a log scale of the count, from blue (fast escape)
// to yellow near the boundary.
func Image(j Job, iters []int) *image.RGBA {
	img := image.NewRGBA(image.Rect(0, 0, j.Width, j.Height))
	for py := range j.Height {
		for px := range j.Width {
			n := iters[py*j.Width+px]
			if n >= j.MaxIter {
				img.Set(px, py, color.RGBA{A: 255})
				continue
			}
			t := math.Log1p(float64(n)) / math.Log1p(float64(j.MaxIter)) // most points escape early
			// A smooth polynomial palette (Bernstein basis).
			r := uint8(9 * (1 - t) * t * t * t * 255)
			g := uint8(15 * (1 - t) * (1 - t) * t * t * 255)
			b := uint8(min(255, 8.5*(1-t)*(1-t)*(1-t)*t*255+40))
			img.Set(px, py, color.RGBA{r, g, b, 255})
		}
	}
	return img
}

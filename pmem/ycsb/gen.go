// Package ycsb generates the YCSB core workloads A to F against a kv.Store:
// records of 10 fields of 100 bytes, keys "user<FNV-64 of the key number>",
// zipfian (scrambled) and latest request distributions, uniform scan lengths
// up to 100, as YCSB's CoreWorkload defines them. All randomness is seeded.
package ycsb

import (
	"math"
	"math/rand/v2"
	"strconv"
)

const zipfTheta = 0.99

// zipfian draws integers in [0, n) with P(i) proportional to 1/(i+1)^theta,
// by the method of Gray et al. ("Quickly generating billion-record synthetic
// databases"), as YCSB's ZipfianGenerator; n may grow (zeta is extended
// incrementally).
type zipfian struct {
	n            uint64
	theta, alpha float64
	zetan, zeta2 float64
	eta          float64
}

func zeta(from, to uint64, theta, initial float64) float64 {
	s := initial
	for i := from; i < to; i++ {
		s += 1 / math.Pow(float64(i+1), theta)
	}
	return s
}

func newZipfian(n uint64) *zipfian {
	z := &zipfian{theta: zipfTheta, alpha: 1 / (1 - zipfTheta), zeta2: zeta(0, 2, zipfTheta, 0)}
	z.zetan = zeta(0, n, zipfTheta, 0)
	z.n = n
	z.setEta()
	return z
}

// newZipfianZeta makes a generator over n items whose zeta is known.
func newZipfianZeta(n uint64, zetan float64) *zipfian {
	z := &zipfian{n: n, theta: zipfTheta, alpha: 1 / (1 - zipfTheta), zeta2: zeta(0, 2, zipfTheta, 0), zetan: zetan}
	z.setEta()
	return z
}

func (z *zipfian) setEta() {
	z.eta = (1 - math.Pow(2/float64(z.n), 1-z.theta)) / (1 - z.zeta2/z.zetan)
}

func (z *zipfian) grow(n uint64) {
	if n > z.n {
		z.zetan = zeta(z.n, n, z.theta, z.zetan)
		z.n = n
		z.setEta()
	}
}

func (z *zipfian) next(rng *rand.Rand) uint64 {
	u := rng.Float64()
	uz := u * z.zetan
	if uz < 1 {
		return 0
	}
	if uz < 1+math.Pow(0.5, z.theta) {
		return 1
	}
	v := uint64(float64(z.n) * math.Pow(z.eta*u-z.eta+1, z.alpha))
	return min(v, z.n-1)
}

// YCSB's ScrambledZipfianGenerator draws from a zipfian over 10^10 items and
// hashes the result into the key range, so popular keys are spread out.
const (
	scrambledItems = 10_000_000_000
	scrambledZetan = 26.46902820178302 // zeta(10^10, 0.99), YCSB's constant
)

type scrambledZipfian struct{ z *zipfian }

func newScrambledZipfian() *scrambledZipfian {
	return &scrambledZipfian{newZipfianZeta(scrambledItems, scrambledZetan)}
}

func (s *scrambledZipfian) next(rng *rand.Rand, n uint64) uint64 {
	return fnv64(s.z.next(rng)) % n
}

// fnv64 is YCSB's Utils.FNVhash64.
func fnv64(v uint64) uint64 {
	h := uint64(0xCBF29CE484222325)
	for i := 0; i < 8; i++ {
		h ^= v & 0xff
		h *= 1099511628211
		v >>= 8
	}
	return h
}

// Key returns the key of record number n: "user" and the FNV hash of n, as
// YCSB builds keys with hashed insert order.
func Key(n uint64) string { return "user" + strconv.FormatUint(fnv64(n), 10) }

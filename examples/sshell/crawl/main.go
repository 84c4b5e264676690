// Command crawl generates a small local stand-in for the Common Crawl
// archives that deliverable Figures 9 and 11 mine, and serves it over
// HTTP (with range requests, as the scripts' curl -r uses), so that the
// figures' sshell scripts run as written with CCBASE pointing here:
//
//	go run ./examples/sshell/crawl -dir /tmp/crawl -addr 127.0.0.1:8321
//
// Under DIR it writes crawl-data/CC-MAIN-2021-17/warc.paths.gz, listing
// -archives gzipped WARC files of -records HTTP responses each with
// deterministic Content-Length headers, and prints the averages the two
// scripts must compute: Figure 9 averages every Content-Length, Figure 11
// averages the per-archive integer averages (integer division, as its
// shell arithmetic does).
package main

import (
	"compress/gzip"
	"flag"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
)

func main() {
	dir := flag.String("dir", "", "directory to write the crawl to (required)")
	addr := flag.String("addr", "127.0.0.1:0", "address to serve it on; empty: only generate")
	archives := flag.Int("archives", 12, "WARC archives")
	records := flag.Int("records", 300, "responses per archive")
	seed := flag.Uint64("seed", 1, "seed of the sizes")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "crawl: -dir is required")
		os.Exit(2)
	}
	if err := run(*dir, *addr, *archives, *records, *seed); err != nil {
		fmt.Fprintln(os.Stderr, "crawl:", err)
		os.Exit(1)
	}
}

func writeGzip(path, text string) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	zw := gzip.NewWriter(f)
	if _, err := zw.Write([]byte(text)); err != nil {
		f.Close()
		return err
	}
	if err := zw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func run(dir, addr string, archives, records int, seed uint64) error {
	const crawl = "crawl-data/CC-MAIN-2021-17"
	rng := rand.New(rand.NewPCG(seed, 4))
	var paths []string
	var sum, n, sumOfAverages int64
	for a := range archives {
		p := fmt.Sprintf("%s/segments/1618038056325.1/warc/CC-MAIN-20210416100222-%05d.warc.gz", crawl, a)
		var b strings.Builder
		var asum int64
		for r := range records {
			size := int64(500 + rng.IntN(100000))
			asum += size
			fmt.Fprintf(&b, "WARC/1.0\r\nWARC-Type: response\r\nWARC-Record-ID: <urn:uuid:%d-%d>\r\n\r\n", a, r)
			fmt.Fprintf(&b, "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: %d\r\n\r\n<html>page %d of archive %d</html>\r\n\r\n", size, r, a)
		}
		sum += asum
		n += int64(records)
		sumOfAverages += asum / int64(records)
		if err := writeGzip(filepath.Join(dir, p), b.String()); err != nil {
			return err
		}
		paths = append(paths, p)
	}
	if err := writeGzip(filepath.Join(dir, crawl, "warc.paths.gz"), strings.Join(paths, "\n")+"\n"); err != nil {
		return err
	}
	fmt.Printf("%d archives of %d records in %s\n", archives, records, dir)
	fmt.Printf("figure 9 average: %d\n", sum/n)
	fmt.Printf("figure 11 average: %d\n", sumOfAverages/int64(archives))
	if addr == "" {
		return nil
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	fmt.Printf("CCBASE=http://%s\n", ln.Addr())
	return http.Serve(ln, http.FileServer(http.Dir(dir)))
}

package mboxscan

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// benchMbox returns the path of a generated mbox of the given size
// ("64MiB"), made by testdata/gen/genmbox once and cached in
// os.TempDir() across runs.
func benchMbox(b *testing.B, size string) string {
	b.Helper()
	benchMu.Lock()
	defer benchMu.Unlock()
	path := filepath.Join(os.TempDir(), "mailkeep-bench-"+size+"-v1.mbox")
	if _, err := os.Stat(path); err == nil {
		return path
	}
	tmp := path + ".tmp"
	cmd := exec.Command("go", "run", "../testdata/gen/genmbox", "-size", size, "-out", tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("generate %s: %v\n%s", path, err, out)
	}
	if err := os.Rename(tmp, path); err != nil {
		b.Fatal(err)
	}
	return path
}

var benchMu sync.Mutex

func benchScanMbox(b *testing.B, size string) {
	path := benchMbox(b, size)
	fi, err := os.Stat(path)
	if err != nil {
		b.Fatal(err)
	}
	// Warm the page cache: the benchmark measures the scanner, not the disk.
	if _, err := os.ReadFile(path); err != nil {
		b.Fatal(err)
	}
	b.SetBytes(fi.Size())
	b.ReportAllocs()
	var msgs int
	for b.Loop() {
		mb, err := ScanMbox(context.Background(), path, Options{})
		if err != nil {
			b.Fatal(err)
		}
		if mb.Bytes != fi.Size() || len(mb.Problems) > 0 {
			b.Fatalf("scanned %d of %d bytes, problems %q", mb.Bytes, fi.Size(), mb.Problems)
		}
		msgs = mb.Messages
	}
	b.ReportMetric(float64(msgs), "messages")
}

func BenchmarkScanMbox(b *testing.B) { benchScanMbox(b, "64MiB") }

// BenchmarkScanMboxBig scans a 1 GiB mbox; set MAILKEEP_BENCH_BIG=1 (it
// writes the file to os.TempDir() once).
func BenchmarkScanMboxBig(b *testing.B) {
	if os.Getenv("MAILKEEP_BENCH_BIG") != "1" {
		b.Skip("set MAILKEEP_BENCH_BIG=1 to scan a generated 1 GiB mbox")
	}
	benchScanMbox(b, "1GiB")
}

// BenchmarkScanSmall scans one small mbox per iteration, as a spool of
// many users' small mailboxes does: the cost is the Scanner's set-up.
func BenchmarkScanSmall(b *testing.B) {
	data := []byte(fromA + hdr("Subject: a", "Status: RO") + "a\n\n" + fromB + hdr("Subject: b") + "b\n")
	b.SetBytes(int64(len(data)))
	b.ReportAllocs()
	for b.Loop() {
		sc := NewScanner(bytes.NewReader(data), "small")
		for {
			if _, err := sc.Next(); err != nil {
				break
			}
		}
		sc.Close()
	}
}

func BenchmarkParseFromLine(b *testing.B) {
	lines := [][]byte{
		[]byte("From user@example.org Thu Nov 26 21:42:18 2026"),
		[]byte("From user@example.org Sun, 11 Nov 2007 06:58:35 +0200"),
		[]byte("From here to eternity"),
	}
	for _, l := range lines {
		b.Run(strings.Fields(string(l))[1]+fmt.Sprint(len(l)), func(b *testing.B) {
			for b.Loop() {
				ParseFromLine(l)
			}
		})
	}
}

// TestBenchScanHook lets scripts/bench.sh time a scan with the test binary
// when cmd/mailkeep does not build: with MAILKEEP_BENCH_SCAN=PATH it scans
// PATH as `mailkeep scan --format json` would and writes the result as
// JSON to stdout. Without it, it does nothing.
func TestBenchScanHook(t *testing.T) {
	path := os.Getenv("MAILKEEP_BENCH_SCAN")
	if path == "" {
		t.Skip("MAILKEEP_BENCH_SCAN not set: used by scripts/bench.sh only")
	}
	res, err := Scan(context.Background(), []string{path}, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := json.NewEncoder(os.Stdout).Encode(res); err != nil {
		t.Fatal(err)
	}
}

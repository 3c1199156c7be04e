package mail

import (
	"io"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"sync"
	"testing"
	"time"

	"github.com/mailroom/mailroom/shared/mail/mailtest"
)

// BenchmarkParse parses generated messages of growing size. The message is read from a file, as
// from an S3 stream, so the heap holds only what the parser keeps: peak-heap-B (the test binary's
// whole heap, sampled every 100µs) stays flat while the message grows from 1 KB to 30 MB.
func BenchmarkParse(b *testing.B) {
	for _, c := range mailtest.Benchmarks {
		b.Run(c.Name, func(b *testing.B) {
			path := filepath.Join(b.TempDir(), c.Kind+".eml")
			raw := mailtest.Generate(c.Kind, c.Size)
			if err := os.WriteFile(path, raw, 0o644); err != nil {
				b.Fatal(err)
			}
			size := int64(len(raw))
			raw = nil
			f, err := os.Open(path)
			if err != nil {
				b.Fatal(err)
			}
			defer f.Close()

			parse := func() {
				if _, err := f.Seek(0, io.SeekStart); err != nil {
					b.Fatal(err)
				}
				m, err := Parse(f)
				if err != nil || m.Size != size {
					b.Fatalf("Parse: %v, size %d of %d", err, m.Size, size)
				}
			}
			// One untimed parse with the collector running almost continuously, so that the
			// sampled heap is what the parser holds rather than garbage awaiting collection.
			gc := debug.SetGCPercent(1)
			runtime.GC()
			stop := sampleHeap()
			parse()
			peak := stop()
			debug.SetGCPercent(gc)

			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				parse()
			}
			b.ReportMetric(float64(peak), "peak-heap-B") // after the loop, which resets metrics
		})
	}
}

// sampleHeap records the largest in-use heap (live and not yet collected objects plus free space
// in their spans, as MemStats.HeapInuse) until the returned function is called.
func sampleHeap() func() uint64 {
	samples := []metrics.Sample{
		{Name: "/memory/classes/heap/objects:bytes"},
		{Name: "/memory/classes/heap/unused:bytes"},
	}
	var peak uint64
	read := func() {
		metrics.Read(samples)
		peak = max(peak, samples[0].Value.Uint64()+samples[1].Value.Uint64())
	}
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		tick := time.NewTicker(100 * time.Microsecond)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				read()
			}
		}
	}()
	return func() uint64 {
		close(done)
		wg.Wait()
		read()
		return peak
	}
}

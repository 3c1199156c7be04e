package export_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/mailroom/mailroom/infra/devstack/devstacktest"
	"github.com/mailroom/mailroom/shared/archive"
	"github.com/mailroom/mailroom/shared/awsclient"
	"github.com/mailroom/mailroom/shared/export"
)

// BenchmarkExport exports a mailbox of 1,000 and of 10,000 messages of about 20 KB from the
// local stack, as mbox and as zip, with production settings (8 MiB parts, 8 originals opened
// ahead) and one CPU, as template.yaml gives a function. Besides time it reports the process's
// peak resident memory and peak heap while the export ran, bytes allocated per message and AWS
// requests per message: memory stays flat as the count grows, since a message passes through and
// only the part being filled is held.
func BenchmarkExport(b *testing.B) {
	ep := devstacktest.Endpoints(b)
	counter := &awsclient.RequestCounter{}
	clients, err := awsclient.New(context.Background(), awsclient.Options{
		Region:    ep.Region,
		Endpoints: awsclient.Endpoints{DynamoDB: ep.DynamoDB, S3: ep.S3, SES: ep.SES},
		AccessKey: ep.AccessKey, SecretKey: ep.SecretKey, Counter: counter,
	})
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("messages=%d", n), func(b *testing.B) {
			f := newFixtureWith(b, clients)
			f.exporter.PartSize = 0 // the default
			seed(b, f, n, 20<<10)
			variants := []struct {
				name, format string
				prefetch     int
			}{{"mbox", export.FormatMbox, 0}, {"zip", export.FormatZip, 0}}
			if n == 1000 {
				// What opening originals ahead gains: one at a time, as a plain loop would.
				variants = append(variants, struct {
					name, format string
					prefetch     int
				}{"mbox-prefetch=1", export.FormatMbox, 1})
			}
			for _, v := range variants {
				format := v.format
				b.Run(v.name, func(b *testing.B) {
					f.exporter.Prefetch = v.prefetch
					defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(1))
					ctx := context.Background()
					runtime.GC()
					debug.FreeOSMemory()
					resetPeakRSS(b)
					stop := sampleHeap()
					var ms0, ms1 runtime.MemStats
					runtime.ReadMemStats(&ms0)
					req0, cpu0 := counter.Count(), processCPU()
					var size int64
					b.ResetTimer()
					for i := 0; i < b.N; i++ {
						job, err := f.exporter.Start(ctx, export.Request{Selection: export.Selection{Mailbox: "bench@example.com"}, Format: format})
						if err != nil {
							b.Fatal(err)
						}
						if job, err = f.exporter.Run(ctx, job.ID, time.Time{}); err != nil || job.State != export.StateDone || job.Export.Messages != n {
							b.Fatalf("export: %v, %s, %d messages", err, job.State, job.Export.Messages)
						}
						size = job.Export.Size
					}
					b.StopTimer()
					cpu := processCPU() - cpu0
					peakHeap := stop()
					runtime.ReadMemStats(&ms1)
					msgs := float64(b.N * n)
					b.ReportMetric(peakRSSMB(b), "peak-rss-MB")
					b.ReportMetric(float64(peakHeap)/(1<<20), "peak-heap-MB")
					b.ReportMetric(float64(ms1.TotalAlloc-ms0.TotalAlloc)/msgs, "alloc-B/msg")
					b.ReportMetric(float64(counter.Count()-req0)/msgs, "aws-req/msg")
					b.ReportMetric(float64(cpu.Microseconds())/msgs, "cpu-µs/msg")
					b.ReportMetric(float64(size)/(1<<20), "export-MB")
				})
			}
		})
	}
}

// seed archives n messages of about size bytes to bench@example.com, many at a time: the objects
// written straight to their archive keys and the records through the index, without parsing.
func seed(b *testing.B, f *fixture, n, size int) {
	b.Helper()
	ctx := context.Background()
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var next atomic.Int64
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				raw := message(i, size)
				id := fmt.Sprintf("bench%05d", i)
				at := start.Add(time.Duration(i) * time.Minute)
				key := f.archiver.Key(at, id)
				if _, err := f.store.Put(ctx, key, bytes.NewReader(raw), int64(len(raw))); err != nil {
					errs <- err
					return
				}
				rec := archive.Record{ID: id, Source: "ses", Key: key, RawKey: "inbound/" + id, ReceivedAt: at, ArchivedAt: at,
					EnvelopeFrom: "ana@example.org", Recipients: []string{"bench@example.com"}, Subject: fmt.Sprintf("message %d", i),
					Size: int64(len(raw)), SHA256: sum(raw)}
				if err := f.index.Put(ctx, rec); err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
}

// sampleHeap records the largest in-use heap (live and not yet collected objects, and free space
// in their spans) until the returned function is called.
func sampleHeap() func() uint64 {
	samples := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/unused:bytes"}}
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
		tick := time.NewTicker(time.Millisecond)
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

// processCPU is the user plus system CPU time this process has used: every thread, the SDK's
// and the collector's too. The local servers are other processes.
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// resetPeakRSS restarts the kernel's high-water mark of this process's resident memory (Linux).
func resetPeakRSS(b *testing.B) {
	if err := os.WriteFile("/proc/self/clear_refs", []byte("5"), 0); err != nil {
		b.Logf("peak memory not measured: %v", err)
	}
}

// peakRSSMB reads the high-water mark of resident memory (VmHWM) in MiB.
func peakRSSMB(b *testing.B) float64 {
	data, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "VmHWM:"); ok {
			kb, err := strconv.ParseFloat(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 64)
			if err != nil {
				b.Logf("VmHWM: %v", err)
				return 0
			}
			return kb / 1024
		}
	}
	return 0
}

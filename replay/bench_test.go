package replay_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/projectors"
	"github.com/prism-data/prism/subjects"
)

// benchKeys is how many records every sub-benchmark's namespace holds.
const benchKeys = 20000

// BenchmarkReplayCompacted times a new projector replaying a KeyValue
// namespace of benchKeys records into a new SQLite file, up to the
// stream's last sequence:
//
//   - written-once: each record written once;
//   - overwritten-100x: each record written 100 times, then compacted
//     (outside the timer);
//   - overwritten-100x-uncompacted: the same history, not compacted, for
//     comparison.
//
// With compaction, the second costs what the first does (ADR 012). Run it
// with: go test -run '^$' -bench BenchmarkReplayCompacted -benchtime 3x ./replay/
func BenchmarkReplayCompacted(b *testing.B) {
	js := startJetStream(b)
	for i, bc := range []struct {
		name    string
		writes  int
		compact bool
	}{
		{"written-once", 1, false},
		{"overwritten-100x", 100, true},
		{"overwritten-100x-uncompacted", 100, false},
	} {
		ns := fmt.Sprintf("bench%d", i)
		ready := false
		b.Run(bc.name, func(b *testing.B) {
			if !ready {
				namespace(b, js, ns)
				publishKeys(b, js, ns, benchKeys, bc.writes, func(i int) string { return fmt.Sprintf("%064d", i) })
				if bc.compact {
					start := time.Now()
					stats := compact(b, js, ns)
					b.Logf("compacted %d messages into %d in %v", stats.MsgsBefore, stats.MsgsAfter, time.Since(start).Round(time.Millisecond))
				}
				ready = true
			}
			info := streamInfo(b, js, ns)
			last, events := info.State.LastSeq, info.State.Msgs
			b.ResetTimer()
			var elapsed time.Duration
			for i := range b.N {
				b.StopTimer()
				target := fmt.Sprintf("replay%d", i)
				st, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), target+".db"))
				if err != nil {
					b.Fatal(err)
				}
				p, err := projectors.New(js, ns, target, st, projectors.WithLogger(discard))
				if err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
				start := time.Now()
				replayTo(b, p, last)
				elapsed += time.Since(start)
				b.StopTimer()
				stopReplay(b, js, ns, target, p, st)
				b.StartTimer()
			}
			b.ReportMetric(float64(events), "events/op")
			b.ReportMetric(float64(events)*float64(b.N)/elapsed.Seconds(), "events/s")
		})
	}
}

func replayTo(b *testing.B, p *projectors.Projector, last uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	if err := p.Start(ctx); err != nil {
		b.Fatal(err)
	}
	if err := p.WaitApplied(ctx, last); err != nil {
		b.Fatalf("replay: %v (applied %d of %d)", err, p.Applied(), last)
	}
}

// stopReplay stops p, closes its store and deletes its consumer, so
// consumers do not pile up on the stream.
func stopReplay(b *testing.B, js jetstream.JetStream, ns, target string, p *projectors.Projector, st *sqlite.Store) {
	ctx := context.Background()
	if err := p.Stop(ctx); err != nil {
		b.Fatal(err)
	}
	if err := st.Close(); err != nil {
		b.Fatal(err)
	}
	if err := js.DeleteConsumer(ctx, subjects.Stream(ns), subjects.Consumer(target)); err != nil {
		b.Fatal(err)
	}
}

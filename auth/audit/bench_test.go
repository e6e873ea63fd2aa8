package audit_test

import (
	"context"
	"testing"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/auth/audit"
	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/subjects"
)

// BenchmarkRecord is the cost of auditing a read: one Record without
// wait, until the stream has stored it (the loop waits for the spool to
// empty at the end).
func BenchmarkRecord(b *testing.B) {
	js := startStream(b)
	w, _ := newWriter(b, js)
	ctx := context.Background()
	rec := sample("orders", "read.get", "alice@example.com", "req-0123456789", "customer-4711")
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Record(ctx, rec, false); err != nil {
			b.Fatal(err)
		}
	}
	eventually(b, "the spool to empty", func() bool { return w.Stats().Pending == 0 })
	if st := w.Stats(); st.Dropped != 0 {
		b.Fatalf("%d records dropped", st.Dropped)
	}
}

// BenchmarkRecordParallel is BenchmarkRecord from many goroutines, as the
// gateway's concurrent requests call it.
func BenchmarkRecordParallel(b *testing.B) {
	js := startStream(b)
	w, _ := newWriter(b, js)
	rec := sample("orders", "read.get", "alice@example.com", "req-0123456789", "customer-4711")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		ctx := context.Background()
		for pb.Next() {
			if err := w.Record(ctx, rec, false); err != nil {
				b.Error(err)
				return
			}
		}
	})
	eventually(b, "the spool to empty", func() bool { return w.Stats().Pending == 0 })
	if st := w.Stats(); st.Dropped != 0 {
		b.Fatalf("%d records dropped", st.Dropped)
	}
}

// BenchmarkRecordWait is the cost of auditing a write: one Record that
// waits for JetStream's ack.
func BenchmarkRecordWait(b *testing.B) {
	js := startStream(b)
	w, _ := newWriter(b, js)
	ctx := context.Background()
	rec := sample("orders", "write.put", "alice@example.com", "req-0123456789", "customer-4711")
	b.ReportAllocs()
	for b.Loop() {
		if err := w.Record(ctx, rec, true); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMarshal is the encoding of one record with one id.
func BenchmarkMarshal(b *testing.B) {
	rec := sample("orders", "read.get", "alice@example.com", "req-0123456789", "customer-4711")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := rec.MarshalJSON(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkWritePath compares a write's JetStream publish alone (bare)
// with the same publish followed by its audit record with wait
// (audited), from many concurrent requests: the audit's cost on write
// throughput. Compare the two ns/op.
func BenchmarkWritePath(b *testing.B) {
	for _, audited := range []bool{false, true} {
		name := "bare"
		if audited {
			name = "audited"
		}
		b.Run(name, func(b *testing.B) {
			js := startStream(b)
			natstest.NamespaceStreams(b, js, "orders")
			w, _ := newWriter(b, js)
			rec := sample("orders", "write.put", "alice@example.com", "req-0123456789", "customer-4711")
			subject := subjects.KeyValueEvent("orders", []byte("customer-4711"))
			data := make([]byte, 200)
			b.SetParallelism(32)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := js.Publish(ctx, subject, data); err != nil {
						b.Error(err)
						return
					}
					if !audited {
						continue
					}
					if err := w.Record(ctx, rec, true); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkReadPath compares a core NATS request answered by an
// in-process responder (bare) with the same request followed by its audit
// record without wait (audited), from many concurrent requests: the
// audit's cost on read throughput. The audited run includes storing every
// record (it waits for the spool to empty).
func BenchmarkReadPath(b *testing.B) {
	for _, audited := range []bool{false, true} {
		name := "bare"
		if audited {
			name = "audited"
		}
		b.Run(name, func(b *testing.B) {
			nc, js := natstest.Start(b)
			if _, err := audit.EnsureStream(context.Background(), js, audit.StreamConfig{}); err != nil {
				b.Fatal(err)
			}
			reply := make([]byte, 200)
			sub, err := nc.Subscribe(subjects.Read("orders", "get"), func(m *nats.Msg) { _ = m.Respond(reply) })
			if err != nil {
				b.Fatal(err)
			}
			defer sub.Unsubscribe()
			w, _ := newWriter(b, js)
			rec := sample("orders", "read.get", "alice@example.com", "req-0123456789", "customer-4711")
			b.SetParallelism(32)
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				ctx := context.Background()
				for pb.Next() {
					if _, err := nc.Request(subjects.Read("orders", "get"), nil, waitFor); err != nil {
						b.Error(err)
						return
					}
					if !audited {
						continue
					}
					if err := w.Record(ctx, rec, false); err != nil {
						b.Error(err)
						return
					}
				}
			})
			eventually(b, "the spool to empty", func() bool { return w.Stats().Pending == 0 })
		})
	}
}

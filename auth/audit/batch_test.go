package audit_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/auth/audit"
	"github.com/prism-data/prism/itest/natstest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

func TestRecordsBatchedWhileTheStreamLags(t *testing.T) {
	_, js := natstest.Start(t)
	refusingStream(t, js)
	// No linger: the batches here are those of a lagging stream.
	w, reg := newWriter(t, js, audit.WithRetryBackoff(10*time.Millisecond, 20*time.Millisecond), audit.WithLinger(0))
	ctx := context.Background()
	// The first record of the subject is sent and refused; the others
	// wait behind it in open batches of at most 256 records, each sent
	// when full.
	const n = 601
	var want []string
	for i := range n {
		id := fmt.Sprintf("r%03d", i)
		if err := w.Record(ctx, sample("orders", "read.get", "alice", id, "a"), false); err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
		want = append(want, id)
	}
	// Another subject is a lane of its own.
	if err := w.Record(ctx, sample("users", "read.get", "alice", "u", "a"), false); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the refusals", func() bool { return w.Healthy() != nil })
	if _, err := audit.EnsureStream(ctx, js, audit.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "recovery", func() bool { return w.Healthy() == nil && w.Stats().Pending == 0 })

	got := requestIDs(list(t, js, audit.Filter{Namespace: "orders"}))
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Fatalf("listed %d records, want the %d recorded, each once", len(got), n)
	}
	s, err := js.Stream(ctx, subjects.AuditStream)
	if err != nil {
		t.Fatal(err)
	}
	// orders: the first alone, then 256 + 256 + 88; users: one.
	if msgs := s.CachedInfo().State.Msgs; msgs != 5 {
		t.Fatalf("%d messages in the stream, want 5", msgs)
	}
	var sizes []int
	for seq := uint64(1); seq <= 5; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, strings.Count(string(m.Data), "\n")+1)
	}
	slices.Sort(sizes)
	if !slices.Equal(sizes, []int{1, 1, 88, 256, 256}) {
		t.Fatalf("records a message: %v, want 1, 1, 88, 256, 256", sizes)
	}
	if v := metric(t, reg, "prism_audit_dropped_total", ""); v != 0 {
		t.Fatalf("dropped = %v, want 0", v)
	}
	// A limit may end the listing inside a message.
	if got := list(t, js, audit.Filter{Namespace: "orders", Since: time.Unix(0, 0), Limit: 3}); len(got) != 3 {
		t.Fatalf("limit 3 listed %d", len(got))
	}
}

// recordsPerMessage lists how many records each message of the audit
// stream holds, in stream order.
func recordsPerMessage(t *testing.T, js jetstream.JetStream) []int {
	t.Helper()
	ctx := context.Background()
	s, err := js.Stream(ctx, subjects.AuditStream)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var n []int
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq && info.State.Msgs > 0; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		n = append(n, strings.Count(string(m.Data), "\n")+1)
	}
	return n
}

func TestReadRecordsLinger(t *testing.T) {
	ctx := context.Background()
	t.Run("a waiting record sends the lingering ones at once", func(t *testing.T) {
		js := startStream(t)
		w, _ := newWriter(t, js, audit.WithLinger(10*time.Second))
		for i := range 10 {
			if err := w.Record(ctx, sample("orders", "read.get", "alice", fmt.Sprint("r", i), "a"), false); err != nil {
				t.Fatal(err)
			}
		}
		if got := recordsPerMessage(t, js); len(got) != 0 {
			t.Fatalf("records stored while lingering: %v", got)
		}
		if p := w.Stats().Pending; p != 10 {
			t.Fatalf("pending = %d, want the 10 lingering", p)
		}
		// Well before the linger ends.
		wctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		if err := w.Record(wctx, sample("orders", "read.get", "alice", "waits", "a"), true); err != nil {
			t.Fatalf("a record waited for behind lingering ones: %v", err)
		}
		if got := recordsPerMessage(t, js); !slices.Equal(got, []int{11}) {
			t.Fatalf("records a message: %v, want the 10 and the waiting one in one", got)
		}
		// Close sends what lingers.
		for i := range 5 {
			if err := w.Record(ctx, sample("orders", "read.get", "alice", fmt.Sprint("c", i), "a"), false); err != nil {
				t.Fatal(err)
			}
		}
		if err := w.Close(wctx); err != nil {
			t.Fatal(err)
		}
		if got := recordsPerMessage(t, js); !slices.Equal(got, []int{11, 5}) {
			t.Fatalf("records a message after Close: %v, want 11 then 5", got)
		}
		if got := len(list(t, js, audit.Filter{Namespace: "orders"})); got != 16 {
			t.Fatalf("listed %d records, want 16", got)
		}
	})
	t.Run("lingering records are sent together when it ends", func(t *testing.T) {
		js := startStream(t)
		w, _ := newWriter(t, js, audit.WithLinger(100*time.Millisecond))
		for i := range 3 {
			if err := w.Record(ctx, sample("orders", "read.get", "alice", fmt.Sprint("r", i), "a"), false); err != nil {
				t.Fatal(err)
			}
		}
		eventually(t, "the lingering records to be stored", func() bool { return w.Stats().Pending == 0 })
		if got := recordsPerMessage(t, js); !slices.Equal(got, []int{3}) {
			t.Fatalf("records a message: %v, want the 3 in one", got)
		}
	})
	t.Run("bounds", func(t *testing.T) {
		js := startStream(t)
		for _, d := range []time.Duration{-time.Millisecond, 11 * time.Second} {
			if _, err := audit.NewWriter(js, audit.WithLinger(d)); err == nil || status.Convert(err).Code != prismv1.Code_INVALID_ARGUMENT {
				t.Errorf("WithLinger(%v): %v, want INVALID_ARGUMENT", d, err)
			}
		}
	})
}

func TestConcurrentRecordsListedOneToOne(t *testing.T) {
	js := startStream(t)
	w, reg := newWriter(t, js)
	ctx := context.Background()
	const goroutines, each = 16, 40
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range each {
				ns := []string{"orders", "users"}[i%2]
				rec := sample(ns, "write.put", fmt.Sprint("p", g), fmt.Sprintf("g%02d-%02d", g, i), "a")
				if err := w.Record(ctx, rec, g%2 == 0); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	eventually(t, "the spool to empty", func() bool { return w.Stats().Pending == 0 })
	got := list(t, js, audit.Filter{})
	if len(got) != goroutines*each {
		t.Fatalf("listed %d records, want %d", len(got), goroutines*each)
	}
	seen := map[string]bool{}
	for _, r := range got {
		if seen[r.RequestID] {
			t.Fatalf("record %s listed twice", r.RequestID)
		}
		seen[r.RequestID] = true
		var g, i int
		if _, err := fmt.Sscanf(r.RequestID, "g%02d-%02d", &g, &i); err != nil {
			t.Fatal(err)
		}
		want := stored(sample([]string{"orders", "users"}[i%2], "write.put", fmt.Sprint("p", g), r.RequestID, "a"), "test-node")
		if fields(r) != fields(want) {
			t.Fatalf("record %s:\n got %s\nwant %s", r.RequestID, fields(r), fields(want))
		}
	}
	if v := metric(t, reg, "prism_audit_dropped_total", ""); v != 0 {
		t.Fatalf("dropped = %v, want 0", v)
	}
}

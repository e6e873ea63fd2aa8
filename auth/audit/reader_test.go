package audit_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/prism-data/prism/auth/audit"
	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// requestIDs are the request ids of recs, in order.
func requestIDs(recs []audit.Record) []string {
	out := make([]string, len(recs))
	for i, r := range recs {
		out[i] = r.RequestID
	}
	return out
}

func TestListFilters(t *testing.T) {
	js := startStream(t)
	w, _ := newWriter(t, js)
	ctx := context.Background()
	// Record times a second apart, a minute ago: the stream stores them
	// all now, so Since and Until are decided on the records' times.
	base := time.Now().Add(-time.Minute).Truncate(time.Second)
	recs := []audit.Record{
		sample("orders", "write.put", "alice", "1", "a"),
		sample("orders", "read.get", "bob", "2", "a"),
		sample("users", "write.delete", "alice", "3", "u"),
		sample("", "admin.ns.list", "ops", "4"),
		sample("orders", "admin.ns.apply", "ops", "5"),
		sample("write", "read.get", "bob", "6", "w"), // a namespace named like a kind
		sample("orders", "write.putx", "alice", "7", "a"),
	}
	for i := range recs {
		recs[i].Time = base.Add(time.Duration(i) * time.Second)
		if err := w.Record(ctx, recs[i], true); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name    string
		f       audit.Filter
		want    []string
		wantErr error
	}{
		{name: "all", f: audit.Filter{}, want: []string{"1", "2", "3", "4", "5", "6", "7"}},
		{name: "namespace", f: audit.Filter{Namespace: "orders"}, want: []string{"1", "2", "5", "7"}},
		{name: "no namespace", f: audit.Filter{Namespace: subjects.AuditNoNamespace}, want: []string{"4"}},
		{name: "principal", f: audit.Filter{Principal: "alice"}, want: []string{"1", "3", "7"}},
		{name: "op kind", f: audit.Filter{Op: "write"}, want: []string{"1", "3", "7"}},
		{name: "exact op", f: audit.Filter{Op: "write.put"}, want: []string{"1"}},
		{name: "op prefix of several tokens", f: audit.Filter{Op: "admin.ns"}, want: []string{"4", "5"}},
		{name: "read ops", f: audit.Filter{Op: "read"}, want: []string{"2", "6"}},
		{name: "namespace and op and principal", f: audit.Filter{Namespace: "orders", Op: "write", Principal: "alice"}, want: []string{"1", "7"}},
		{name: "record time since", f: audit.Filter{Since: base.Add(4 * time.Second)}, want: []string{"5", "6", "7"}},
		{name: "record time until", f: audit.Filter{Until: base.Add(2 * time.Second)}, want: []string{"1", "2", "3"}},
		{name: "limit", f: audit.Filter{Namespace: "orders", Limit: 2}, want: []string{"1", "2"}},
		{name: "nothing matches", f: audit.Filter{Namespace: "nope"}, want: nil},
		{name: "unknown principal", f: audit.Filter{Principal: "mallory"}, want: nil},
		{name: "bad namespace", f: audit.Filter{Namespace: "Not.Valid"}, wantErr: status.ErrInvalidArgument},
		{name: "wildcard op", f: audit.Filter{Op: "write.*"}, wantErr: status.ErrInvalidArgument},
		{name: "negative limit", f: audit.Filter{Limit: -1}, wantErr: status.ErrInvalidArgument},
		{name: "until before since", f: audit.Filter{Since: base, Until: base.Add(-time.Hour)}, wantErr: status.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []audit.Record
			err := audit.List(ctx, js, tt.f, func(r audit.Record) error {
				got = append(got, r)
				return nil
			})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("List(%+v) = %v, want %v", tt.f, err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ids := requestIDs(got); !slices.Equal(ids, tt.want) {
				t.Fatalf("List(%+v) = %v, want %v", tt.f, ids, tt.want)
			}
		})
	}
}

func TestListSinceStreamTime(t *testing.T) {
	js := startStream(t)
	w, _ := newWriter(t, js)
	ctx := context.Background()
	// Records stamped by the writer, in two batches: Since between them
	// starts the consumer after the first.
	for i := range 3 {
		if err := w.Record(ctx, audit.Record{Namespace: "orders", Op: "read.get", RequestID: fmt.Sprint("old-", i)}, true); err != nil {
			t.Fatal(err)
		}
	}
	mid := time.Now()
	for i := range 2 {
		if err := w.Record(ctx, audit.Record{Namespace: "orders", Op: "read.get", RequestID: fmt.Sprint("new-", i)}, true); err != nil {
			t.Fatal(err)
		}
	}
	if got := requestIDs(list(t, js, audit.Filter{Since: mid})); !slices.Equal(got, []string{"new-0", "new-1"}) {
		t.Fatalf("since %v: %v", mid, got)
	}
	if got := requestIDs(list(t, js, audit.Filter{Until: mid})); !slices.Equal(got, []string{"old-0", "old-1", "old-2"}) {
		t.Fatalf("until %v: %v", mid, got)
	}
}

func TestListStopsOnCallbackError(t *testing.T) {
	js := startStream(t)
	w, _ := newWriter(t, js)
	ctx := context.Background()
	for i := range 5 {
		if err := w.Record(ctx, sample("orders", "read.get", "alice", fmt.Sprint(i), "a"), true); err != nil {
			t.Fatal(err)
		}
	}
	stop := errors.New("enough")
	n := 0
	err := audit.List(ctx, js, audit.Filter{}, func(audit.Record) error {
		n++
		if n == 2 {
			return stop
		}
		return nil
	})
	if !errors.Is(err, stop) || n != 2 {
		t.Fatalf("List = %v after %d records, want the callback's error after 2", err, n)
	}
}

func TestListEmptyAndMissingStream(t *testing.T) {
	_, js := natstest.Start(t)
	ctx := context.Background()
	err := audit.List(ctx, js, audit.Filter{}, func(audit.Record) error { return nil })
	if !errors.Is(err, status.ErrNotFound) {
		t.Fatalf("List without an audit stream = %v, want NOT_FOUND", err)
	}
	if _, err := audit.EnsureStream(ctx, js, audit.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	if got := list(t, js, audit.Filter{}); len(got) != 0 {
		t.Fatalf("List of an empty stream: %d records", len(got))
	}
}

func TestListRejectsMalformedRecords(t *testing.T) {
	js := startStream(t)
	ctx := context.Background()
	tests := []struct {
		name, subject, data string
	}{
		{"not JSON", subjects.Audit("orders", "write.put"), "not json"},
		{"record of another subject", subjects.Audit("orders", "write.put"), `{"namespace":"users","op":"write.put"}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := js.Publish(ctx, tt.subject, []byte(tt.data)); err != nil {
				t.Fatal(err)
			}
			err := audit.List(ctx, js, audit.Filter{}, func(audit.Record) error { return nil })
			if !errors.Is(err, audit.ErrMalformedRecord) {
				t.Fatalf("List over %q = %v, want ErrMalformedRecord", tt.data, err)
			}
		})
	}
}

func TestFollow(t *testing.T) {
	js := startStream(t)
	// Without linger the stream holds the records in the order recorded.
	w, _ := newWriter(t, js, audit.WithLinger(0))
	ctx := context.Background()
	if err := w.Record(ctx, sample("orders", "write.put", "alice", "before", "a"), true); err != nil {
		t.Fatal(err)
	}
	fctx, cancel := context.WithCancel(ctx)
	defer cancel()
	got := make(chan audit.Record)
	done := make(chan error, 1)
	// Since is the start of the stream here, so that the test does not
	// race the consumer's creation; the records are new either way.
	go func() {
		done <- audit.Follow(fctx, js, audit.Filter{Namespace: "orders", Since: time.Unix(0, 0)}, func(r audit.Record) error {
			select {
			case got <- r:
			case <-fctx.Done():
			}
			return nil
		})
	}()
	next := func() audit.Record {
		t.Helper()
		select {
		case r := <-got:
			return r
		case err := <-done:
			t.Fatalf("Follow returned %v", err)
		case <-time.After(waitFor):
			t.Fatal("Follow delivered nothing")
		}
		return audit.Record{}
	}
	if r := next(); r.RequestID != "before" {
		t.Fatalf("first record %s, want before", r.RequestID)
	}
	// Records stored after Follow caught up still arrive, in order;
	// another namespace's do not.
	for i, rec := range []audit.Record{
		sample("users", "write.put", "alice", "other", "u"),
		sample("orders", "read.get", "bob", "after-1", "a"),
		sample("orders", "write.delete", "alice", "after-2", "a"),
	} {
		if err := w.Record(ctx, rec, i%2 == 0); err != nil {
			t.Fatal(err)
		}
	}
	for _, want := range []string{"after-1", "after-2"} {
		if r := next(); r.RequestID != want {
			t.Fatalf("followed %s, want %s", r.RequestID, want)
		}
	}
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Follow after cancel = %v, want context.Canceled", err)
	}

	// Follow with a limit returns once it has seen that many.
	lctx, lcancel := context.WithTimeout(ctx, waitFor)
	defer lcancel()
	var ids []string
	err := audit.Follow(lctx, js, audit.Filter{Since: time.Unix(0, 0), Limit: 2}, func(r audit.Record) error {
		ids = append(ids, r.RequestID)
		return nil
	})
	if err != nil || !slices.Equal(ids, []string{"before", "other"}) {
		t.Fatalf("Follow with limit 2 = %v, %v", ids, err)
	}
}

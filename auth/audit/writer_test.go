package audit_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/auth/audit"
	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

func TestWriterRecordsListedBack(t *testing.T) {
	js := startStream(t)
	// Without linger the stream holds the records in the order recorded.
	w, reg := newWriter(t, js, audit.WithLinger(0))
	ctx := context.Background()
	if err := w.Healthy(); err != nil {
		t.Fatalf("Healthy() of a new writer: %v", err)
	}
	type call struct {
		rec  audit.Record
		wait bool
	}
	denied := sample("orders", "read.scan", "bob", "r3")
	denied.Code = audit.Code(status.ErrPermissionDenied)
	calls := []call{
		{sample("orders", "write.put", "alice", "r1", "customer-4711"), true},
		{sample("orders", "read.get", "alice", "r2", "customer-4711"), false},
		{denied, false},
		{sample("users", "write.mutate", "svc", "r4", "u1", "u2", "u3"), true},
		{sample("", "admin.ns.list", "ops", "r5"), true},
		{sample("users", "read.get", "alice", "r6", "u1"), false},
		{sample("orders", "replay.run", "ops", "r7"), true},
		{audit.Record{Namespace: "orders", Op: "migrate.start", Principal: auth.Principal{Name: "ops", Via: auth.ViaCreds}, RequestID: "r8"}, false},
	}
	before := time.Now()
	for _, c := range calls {
		if err := w.Record(ctx, c.rec, c.wait); err != nil {
			t.Fatalf("Record(%s, wait=%v): %v", c.rec.RequestID, c.wait, err)
		}
	}
	after := time.Now()
	closeCtx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	if err := w.Close(closeCtx); err != nil {
		t.Fatalf("Close: %v", err)
	}

	got := list(t, js, audit.Filter{})
	if len(got) != len(calls) {
		t.Fatalf("listed %d records, want %d", len(got), len(calls))
	}
	for i, c := range calls {
		want := stored(c.rec, "test-node")
		if c.rec.Time.IsZero() {
			// The writer stamped it, between before and after.
			if got[i].Time.Before(before) || got[i].Time.After(after) {
				t.Errorf("record %d: time %v not stamped by Record (between %v and %v)", i, got[i].Time, before, after)
			}
			want.Time = got[i].Time
		}
		if !reflect.DeepEqual(got[i], want) {
			t.Errorf("record %d:\n got %s\nwant %s", i, fields(got[i]), fields(want))
		}
	}
	for name, want := range map[string]float64{"prism_audit_dropped_total": 0, "prism_audit_pending": 0} {
		if v := metric(t, reg, name, ""); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if v := metric(t, reg, "prism_audit_records_total", "stored"); v != float64(len(calls)) {
		t.Errorf("records stored = %v, want %d", v, len(calls))
	}
	if v := metric(t, reg, "prism_audit_records_total", "failed"); v != 0 {
		t.Errorf("records failed = %v, want 0", v)
	}
}

func TestRecordWaitReturnsOnceStored(t *testing.T) {
	js := startStream(t)
	w, _ := newWriter(t, js)
	ctx := context.Background()
	s, err := js.Stream(ctx, subjects.AuditStream)
	if err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		rec := sample("orders", "write.put", "alice", fmt.Sprint("r", i), "id")
		if err := w.Record(ctx, rec, true); err != nil {
			t.Fatal(err)
		}
		// Asked right after Record returned: the record is already there.
		m, err := s.GetLastMsgForSubject(ctx, subjects.Audit("orders", "write.put"))
		if err != nil {
			t.Fatal(err)
		}
		if m.Sequence != uint64(i+1) || !strings.Contains(string(m.Data), `"request_id":"r`+fmt.Sprint(i)+`"`) {
			t.Fatalf("after Record %d returned the last record is seq %d: %s", i, m.Sequence, m.Data)
		}
		if m.Header.Get(jetstream.MsgIDHeader) == "" {
			t.Fatal("record stored without a Nats-Msg-Id: a retry would store it twice")
		}
	}
}

func TestRecordRejectsWhatNoSubjectCanHold(t *testing.T) {
	js := startStream(t)
	w, reg := newWriter(t, js)
	tests := []struct {
		name    string
		ns, op  string
		wantErr error
	}{
		{"empty op", "orders", "", status.ErrInvalidArgument},
		{"one-token op", "orders", "write", status.ErrInvalidArgument},
		{"wildcard op", "orders", "write.*", status.ErrInvalidArgument},
		{"bad namespace", "Orders", "write.put", status.ErrInvalidArgument},
		{"no-namespace token as a namespace", "_", "write.put", status.ErrInvalidArgument},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := w.Record(context.Background(), audit.Record{Namespace: tt.ns, Op: tt.op}, true)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("Record(%q, %q) = %v, want %v", tt.ns, tt.op, err, tt.wantErr)
			}
			// The access is not audited: that is a drop, and counted.
			if v := metric(t, reg, "prism_audit_dropped_total", ""); v != float64(i+1) {
				t.Fatalf("dropped = %v, want %d", v, i+1)
			}
		})
	}
	if got := list(t, js, audit.Filter{}); len(got) != 0 {
		t.Fatalf("%d records stored, want none", len(got))
	}
}

// refusingStream creates the audit stream with a message size limit no
// record fits in, so that JetStream refuses every record.
func refusingStream(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{
		Name: subjects.AuditStream, Subjects: subjects.AuditSubjects(), Storage: jetstream.FileStorage, MaxMsgSize: 16,
	}); err != nil {
		t.Fatal(err)
	}
}

func TestSpoolOverflowFailsClosedAndRecovers(t *testing.T) {
	_, js := natstest.Start(t)
	refusingStream(t, js)
	const spool = 5
	w, reg := newWriter(t, js, audit.WithSpoolSize(spool), audit.WithRetryBackoff(10*time.Millisecond, 50*time.Millisecond))
	ctx := context.Background()

	// A write's record: the refusal comes back to the caller, who must not
	// acknowledge the write; the record stays spooled.
	first := sample("orders", "write.put", "alice", "r0", "a")
	err := w.Record(ctx, first, true)
	if !errors.Is(err, status.ErrUnavailable) || !strings.Contains(err.Error(), "audit stream unavailable") {
		t.Fatalf("Record(wait) on a refusing stream = %v, want UNAVAILABLE audit stream unavailable", err)
	}
	if err := w.Healthy(); !errors.Is(err, status.ErrUnavailable) || !strings.Contains(err.Error(), "audit stream unavailable: 1 records failed to store") {
		t.Fatalf("Healthy() while records fail = %v", err)
	}
	admitted := []audit.Record{first}
	for i := 1; i < spool; i++ {
		rec := sample("orders", "read.get", "alice", fmt.Sprint("r", i), "a")
		if err := w.Record(ctx, rec, false); err != nil {
			t.Fatalf("Record %d with room in the spool: %v", i, err)
		}
		admitted = append(admitted, rec)
	}
	// The spool is full: further records are dropped, and counted.
	const extra = 3
	for i := range extra {
		err := w.Record(ctx, sample("orders", "read.get", "alice", fmt.Sprint("x", i), "a"), i == 0)
		if !errors.Is(err, status.ErrUnavailable) || !strings.Contains(err.Error(), "dropped") {
			t.Fatalf("Record into a full spool = %v, want UNAVAILABLE ... dropped", err)
		}
	}
	if err := w.Healthy(); !errors.Is(err, status.ErrUnavailable) || !strings.Contains(err.Error(), "5 records wait to be stored, the spool's limit") {
		t.Fatalf("Healthy() with a full spool = %v", err)
	}
	if v := metric(t, reg, "prism_audit_dropped_total", ""); v != extra {
		t.Fatalf("dropped = %v, want %d", v, extra)
	}
	if v := metric(t, reg, "prism_audit_pending", ""); v != spool {
		t.Fatalf("pending = %v, want %d", v, spool)
	}
	eventually(t, "retries of the refused records", func() bool { return w.Stats().Failed > spool })

	// JetStream takes records again: the spool is flushed, none lost.
	if _, err := audit.EnsureStream(ctx, js, audit.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	eventually(t, "recovery", func() bool { return w.Healthy() == nil && w.Stats().Pending == 0 })
	got := list(t, js, audit.Filter{})
	byID := func(a, b audit.Record) int { return strings.Compare(a.RequestID, b.RequestID) }
	slices.SortFunc(got, byID)
	if len(got) != spool {
		t.Fatalf("listed %d records after recovery, want the %d spooled", len(got), spool)
	}
	for i := range admitted {
		if want := stored(admitted[i], "test-node"); !reflect.DeepEqual(got[i], want) {
			t.Errorf("record %d:\n got %s\nwant %s", i, fields(got[i]), fields(want))
		}
	}
	st := w.Stats()
	if st.Stored != spool || st.Dropped != extra || st.Pending != 0 {
		t.Fatalf("stats after recovery %+v, want %d stored, %d dropped, 0 pending", st, spool, extra)
	}
	if err := w.Record(ctx, sample("orders", "write.put", "alice", "after", "a"), true); err != nil {
		t.Fatalf("Record after recovery: %v", err)
	}
}

func TestServerRestartLosesNoRecord(t *testing.T) {
	opts := &server.Options{Host: "127.0.0.1", Port: -1, JetStream: true, StoreDir: t.TempDir(), NoLog: true, NoSigs: true}
	s := runServer(t, opts)
	opts.Port = s.Addr().(*net.TCPAddr).Port
	nc, err := nats.Connect(s.ClientURL(), nats.MaxReconnects(-1), nats.ReconnectWait(20*time.Millisecond), nats.ReconnectJitter(0, 0))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := audit.EnsureStream(ctx, js, audit.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	w, reg := newWriter(t, js, audit.WithAckTimeout(200*time.Millisecond), audit.WithRetryBackoff(20*time.Millisecond, 100*time.Millisecond))
	var want []string
	for i := range 3 {
		id := fmt.Sprint("before-", i)
		if err := w.Record(ctx, sample("orders", "write.put", "alice", id, "a"), true); err != nil {
			t.Fatal(err)
		}
		want = append(want, id)
	}

	s.Shutdown()
	s.WaitForShutdown()
	for i := range 10 {
		id := fmt.Sprint("during-", i)
		if err := w.Record(ctx, sample("orders", "read.get", "alice", id, "a"), false); err != nil {
			t.Fatalf("Record while the server is down: %v", err)
		}
		want = append(want, id)
	}
	eventually(t, "Healthy failing while the server is down", func() bool { return errors.Is(w.Healthy(), status.ErrUnavailable) })
	if err := w.Record(ctx, sample("orders", "write.put", "alice", "refused-write", "a"), true); !errors.Is(err, status.ErrUnavailable) {
		t.Fatalf("Record(wait) while the server is down = %v, want UNAVAILABLE", err)
	}
	want = append(want, "refused-write") // refused to its caller, yet kept and stored later

	runServer(t, opts)
	eventually(t, "recovery after the restart", func() bool { return w.Healthy() == nil && w.Stats().Pending == 0 })
	var got []string
	for _, r := range list(t, js, audit.Filter{}) {
		got = append(got, r.RequestID)
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("records after the restart (each once):\n got %v\nwant %v", got, want)
	}
	if v := metric(t, reg, "prism_audit_dropped_total", ""); v != 0 {
		t.Fatalf("dropped = %v, want 0", v)
	}
}

func runServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	s.Start()
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	if !s.ReadyForConnections(waitFor) {
		t.Fatal("server not ready")
	}
	return s
}

func TestCloseReportsWhatItCouldNotFlush(t *testing.T) {
	_, js := natstest.Start(t)
	refusingStream(t, js)
	w, reg := newWriter(t, js, audit.WithRetryBackoff(10*time.Millisecond, 20*time.Millisecond))
	ctx := context.Background()
	for i := range 3 {
		if err := w.Record(ctx, sample("orders", "read.get", "alice", fmt.Sprint("r", i), "a"), false); err != nil {
			t.Fatal(err)
		}
	}
	eventually(t, "the refusals", func() bool { return w.Healthy() != nil })
	closeCtx, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	err := w.Close(closeCtx)
	if !errors.Is(err, status.ErrUnavailable) || !strings.Contains(err.Error(), "3 records could not be stored before the close deadline") {
		t.Fatalf("Close = %v, want UNAVAILABLE 3 records could not be stored", err)
	}
	if again := w.Close(ctx); again != err {
		t.Fatalf("second Close = %v, want the first's %v", again, err)
	}
	if v := metric(t, reg, "prism_audit_dropped_total", ""); v != 3 {
		t.Fatalf("dropped = %v, want 3", v)
	}
	if err := w.Record(ctx, sample("orders", "read.get", "alice", "late", "a"), false); !errors.Is(err, status.ErrUnavailable) || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Record after Close = %v, want UNAVAILABLE closed", err)
	}
	if err := w.Healthy(); !errors.Is(err, status.ErrUnavailable) || !strings.Contains(err.Error(), "closed") {
		t.Fatalf("Healthy after Close = %v", err)
	}
	st := w.Stats()
	if st.Dropped != 4 || st.Pending != 0 || st.Stored != 0 {
		t.Fatalf("stats after Close %+v, want 4 dropped, 0 pending, 0 stored", st)
	}
}

func TestNewWriterOptions(t *testing.T) {
	_, js := natstest.Start(t)
	tests := []struct {
		name    string
		opts    []audit.Option
		wantErr error
	}{
		{"defaults", nil, nil},
		{"nil logger", []audit.Option{audit.WithLogger(nil)}, status.ErrInvalidArgument},
		{"nil registerer", []audit.Option{audit.WithRegisterer(nil)}, status.ErrInvalidArgument},
		{"empty node", []audit.Option{audit.WithNode("")}, status.ErrInvalidArgument},
		{"zero spool", []audit.Option{audit.WithSpoolSize(0)}, status.ErrInvalidArgument},
		{"zero ack timeout", []audit.Option{audit.WithAckTimeout(0)}, status.ErrInvalidArgument},
		{"backoff longest below first", []audit.Option{audit.WithRetryBackoff(time.Second, time.Millisecond)}, status.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := audit.NewWriter(js, tt.opts...)
			if !errors.Is(err, tt.wantErr) || (err == nil) != (tt.wantErr == nil) {
				t.Fatalf("NewWriter = %v, want %v", err, tt.wantErr)
			}
			if w != nil {
				if err := w.Close(context.Background()); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
	if _, err := audit.NewWriter(nil); !errors.Is(err, status.ErrInvalidArgument) {
		t.Fatalf("NewWriter(nil) = %v", err)
	}
	reg := prometheus.NewRegistry()
	w, err := audit.NewWriter(js, audit.WithRegisterer(reg))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close(context.Background())
	if _, err := audit.NewWriter(js, audit.WithRegisterer(reg)); err == nil {
		t.Fatal("a second writer registered its metrics on the same registry")
	}
}

func TestFullSpoolWaitsForRoom(t *testing.T) {
	js := startStream(t)
	// A spool of one: every Record but the first waits for the previous
	// record's ack.
	w, reg := newWriter(t, js, audit.WithSpoolSize(1))
	ctx := context.Background()
	const n = 200
	for i := range n {
		if err := w.Record(ctx, sample("orders", "read.get", "alice", fmt.Sprint(i), "a"), false); err != nil {
			t.Fatalf("Record %d: %v", i, err)
		}
	}
	eventually(t, "the spool to empty", func() bool { return w.Stats().Pending == 0 })
	if got := list(t, js, audit.Filter{}); len(got) != n {
		t.Fatalf("listed %d records, want %d", len(got), n)
	}
	if v := metric(t, reg, "prism_audit_dropped_total", ""); v != 0 {
		t.Fatalf("dropped = %v, want 0", v)
	}
}

func TestFullSpoolDropsWhenTheRequestEnds(t *testing.T) {
	nc, _ := natstest.Start(t)
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	// No stream, but a subscriber that never answers: records are neither
	// acked nor refused.
	sub, err := nc.SubscribeSync(subjects.AuditSubjects()[0])
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	w, reg := newWriter(t, js, audit.WithSpoolSize(2), audit.WithAckTimeout(time.Hour))
	ctx := context.Background()
	for i := range 2 {
		if err := w.Record(ctx, sample("orders", "read.get", "alice", fmt.Sprint(i), "a"), false); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Healthy(); !errors.Is(err, status.ErrUnavailable) || !strings.Contains(err.Error(), "spool's limit") {
		t.Fatalf("Healthy() with a full spool = %v", err)
	}
	rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	err = w.Record(rctx, sample("orders", "read.get", "alice", "late", "a"), false)
	if !errors.Is(err, status.ErrUnavailable) || !errors.Is(err, context.DeadlineExceeded) || !strings.Contains(err.Error(), "stayed full") {
		t.Fatalf("Record into a spool that stays full = %v", err)
	}
	if v := metric(t, reg, "prism_audit_dropped_total", ""); v != 1 {
		t.Fatalf("dropped = %v, want 1", v)
	}
	cctx, ccancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer ccancel()
	if err := w.Close(cctx); !errors.Is(err, status.ErrUnavailable) {
		t.Fatalf("Close with 2 records never acked = %v", err)
	}
}

package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/postgres/pgtest"
	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/internal/natsconn"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/subjects"
)

// replayEnv is a running stack serving one namespace with data written.
type replayEnv struct {
	dir, url string
	st       *node.Node
	c        *client.Client
	last     uint64 // stream seq of the last write
}

// newReplayEnv serves namespace n from a stack under a temporary data
// directory and writes puts, deletes and overwrites of 150 records to it
// (or appends, for a timeseries namespace).
func newReplayEnv(t *testing.T, n namespaces.Namespace, writes int) *replayEnv {
	t.Helper()
	ctx := context.Background()
	e := &replayEnv{dir: t.TempDir()}
	var admin *namespaces.AdminClient
	e.st, admin, e.c = nodetest.Start(t, node.Config{DataDir: e.dir})
	e.url = e.st.URL()
	res, err := admin.Apply(ctx, n, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, n.Name, res.Revision)
	for i := range writes {
		var seq uint64
		if n.Abstraction == namespaces.AbstractionTimeSeries {
			seq, err = e.c.TimeSeries(n.Name).Append(ctx, []byte(fmt.Sprintf("s%d", i%7)), []client.Event{{
				Time: time.Unix(1_700_000_000+int64(i), 0), ID: []byte(fmt.Sprintf("e%d", i)), Payload: []byte(fmt.Sprint(i)),
			}})
		} else {
			id := []byte(fmt.Sprintf("rec-%03d", i%150))
			if i%11 == 10 {
				seq, err = e.c.KeyValue(n.Name).Delete(ctx, id, nil)
			} else {
				seq, err = e.c.KeyValue(n.Name).Put(ctx, id, []client.Item{{Key: []byte(fmt.Sprint("k", i%3)), Value: []byte(fmt.Sprint(i))}})
			}
		}
		if err != nil {
			t.Fatalf("write %d: %v", i, err)
		}
		e.last = seq
	}
	return e
}

// flags returns replay flags for target with the defaults of the command.
func (e *replayEnv) flags(target string) replayFlags {
	return replayFlags{target: target, dataDir: e.dir, Conn: natsconn.Options{URL: e.url}, batchSize: 256, interval: 50 * time.Millisecond,
		maxLag: 5000, maxLatency: 250 * time.Millisecond, logLevel: "error"}
}

// replayCmd runs prism replay of namespace with f, answering stdin, and
// returns what it printed.
func replayCmd(t *testing.T, namespace string, f replayFlags, stdin string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err := runReplayCommand(ctx, replayIO{in: strings.NewReader(stdin), out: &out, errOut: &out}, namespace, f)
	return out.String(), err
}

// kvRecords reads every record of a KeyValue store: id -> items and
// revision.
func kvRecords(t *testing.T, st interface {
	ScanIDs(context.Context, *prismv1.ScanRequest) (*prismv1.ScanResponse, error)
	GetItems(context.Context, *prismv1.GetRequest) (*prismv1.GetResponse, error)
}) map[string]string {
	t.Helper()
	ctx := context.Background()
	out := map[string]string{}
	req := &prismv1.ScanRequest{PageSize: 500}
	for {
		resp, err := st.ScanIDs(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		for _, id := range resp.GetIds() {
			rec, err := st.GetItems(ctx, &prismv1.GetRequest{Id: id, PageSize: 1000})
			if err != nil {
				t.Fatal(err)
			}
			var b strings.Builder
			fmt.Fprintf(&b, "rev %d:", rec.GetRevision())
			for _, it := range rec.GetItems() {
				fmt.Fprintf(&b, " %s=%s", it.GetKey(), it.GetValue())
			}
			out[string(id)] = b.String()
		}
		if req.PageToken = resp.GetNextPageToken(); req.PageToken == "" {
			return out
		}
	}
}

func openSQLite(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

// primaryRecords waits until the served namespace applied e.last and
// returns its records.
func (e *replayEnv) primaryRecords(t *testing.T, ns string) map[string]string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := e.st.WaitApplied(ctx, ns, e.last); err != nil {
		t.Fatal(err)
	}
	return kvRecords(t, openSQLite(t, sqlite.TargetPath(e.dir, ns, "")))
}

var progressLine = regexp.MustCompile(`: (\d+)/(\d+) events \(`)

func TestReplayIntoNewSQLiteTarget(t *testing.T) {
	n := namespaces.Namespace{Name: "orders", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite"}
	e := newReplayEnv(t, n, 600)
	want := e.primaryRecords(t, "orders")

	f := e.flags("rebuild")
	f.maxRate, f.adaptive = 100_000, true
	out, err := replayCmd(t, "orders", f, "")
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	path := filepath.Join(e.dir, "sqlite", "orders.rebuild.db")
	if got := kvRecords(t, openSQLite(t, path)); !maps.Equal(got, want) {
		t.Fatalf("replayed target differs from the served one:\n got %v\nwant %v", got, want)
	}
	// The finished replay let go of its consumer, which would otherwise
	// hold compaction back.
	if _, err := e.st.JetStream().Consumer(context.Background(), subjects.Stream("orders"), subjects.Consumer("rebuild")); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("consumer of the finished replay: %v, want it deleted", err)
	}
	m := progressLine.FindAllStringSubmatch(out, -1)
	if len(m) == 0 {
		t.Fatalf("no progress line in the output:\n%s", out)
	}
	final := m[len(m)-1]
	if final[1] != fmt.Sprint(e.last) || final[2] != fmt.Sprint(e.last) {
		t.Fatalf("last progress line says %s/%s events, want %d/%d:\n%s", final[1], final[2], e.last, e.last, out)
	}
	if !strings.Contains(out, fmt.Sprintf("replayed %d events in", e.last)) {
		t.Fatalf("no summary in the output:\n%s", out)
	}

	// Run again: nothing left to do.
	out, err = replayCmd(t, "orders", e.flags("rebuild"), "")
	if err != nil || !strings.Contains(out, "nothing to replay") {
		t.Fatalf("second replay: %v\n%s", err, out)
	}
}

// --to-seq stops there, and the next run (to the head) resumes from it;
// --from-seq starts a new target later and is refused where it would leave
// a gap or overlap.
func TestReplaySequenceRange(t *testing.T) {
	n := namespaces.Namespace{Name: "orders", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite"}
	e := newReplayEnv(t, n, 300)
	want := e.primaryRecords(t, "orders")
	path := filepath.Join(e.dir, "sqlite", "orders.part.db")

	f := e.flags("part")
	f.toSeq = 100
	if out, err := replayCmd(t, "orders", f, ""); err != nil {
		t.Fatalf("replay to 100: %v\n%s", err, out)
	}
	st := openSQLite(t, path)
	if cp, err := st.Checkpoint(context.Background()); err != nil || cp != 100 {
		t.Fatalf("checkpoint after --to-seq 100 = %d, %v", cp, err)
	}
	f = e.flags("part")
	f.fromSeq = 50
	if out, err := replayCmd(t, "orders", f, ""); err == nil || !strings.Contains(err.Error(), "checkpoint is 100") {
		t.Fatalf("--from-seq 50 on a target at 100: %v\n%s", err, out)
	}
	f.fromSeq = 150
	if out, err := replayCmd(t, "orders", f, ""); err == nil || !strings.Contains(err.Error(), "skip the events") {
		t.Fatalf("--from-seq 150 on a target at 100: %v\n%s", err, out)
	}
	f.fromSeq = 101 // right after the checkpoint: a plain resume
	if out, err := replayCmd(t, "orders", f, ""); err != nil {
		t.Fatalf("resume: %v\n%s", err, out)
	}
	if got := kvRecords(t, st); !maps.Equal(got, want) {
		t.Fatalf("resumed target differs from the served one")
	}

	f = e.flags("late")
	f.fromSeq = e.last // only the last write
	out, err := replayCmd(t, "orders", f, "")
	if err != nil {
		t.Fatalf("--from-seq on a new target: %v\n%s", err, out)
	}
	late := kvRecords(t, openSQLite(t, filepath.Join(e.dir, "sqlite", "orders.late.db")))
	if len(late) > 1 {
		t.Fatalf("target from the last sequence holds %d records, want at most the last write's", len(late))
	}

	f = e.flags("part")
	f.toSeq = e.last + 10
	if _, err := replayCmd(t, "orders", f, ""); err == nil || !strings.Contains(err.Error(), "past the stream's last sequence") {
		t.Fatalf("--to-seq past the head: %v", err)
	}
}

// The target a running serve projects is refused, reset included; another
// target can be reset (with confirmation) and replayed again.
func TestReplayRefusesServedTargetAndResets(t *testing.T) {
	n := namespaces.Namespace{Name: "orders", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite"}
	e := newReplayEnv(t, n, 200)
	want := e.primaryRecords(t, "orders")

	for _, reset := range []bool{false, true} {
		f := e.flags("sqlite")
		f.reset, f.yes = reset, true
		out, err := replayCmd(t, "orders", f, "")
		if !errors.Is(err, projectors.ErrConsumerInUse) || !strings.Contains(err.Error(), "Stop that process first") {
			t.Fatalf("replay (reset %v) into the served target: %v\n%s", reset, err, out)
		}
	}
	if got := e.primaryRecords(t, "orders"); !maps.Equal(got, want) {
		t.Fatal("the refused reset changed the served target")
	}

	if out, err := replayCmd(t, "orders", e.flags("copy"), ""); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	f := e.flags("copy")
	f.reset = true
	if out, err := replayCmd(t, "orders", f, "no\n"); err == nil || !strings.Contains(err.Error(), "not confirmed") {
		t.Fatalf("unconfirmed reset: %v\n%s", err, out)
	}
	out, err := replayCmd(t, "orders", f, "copy\n")
	if err != nil || !strings.Contains(out, "dropped sqlite") || !strings.Contains(out, fmt.Sprintf("replayed %d events", e.last)) {
		t.Fatalf("confirmed reset: %v\n%s", err, out)
	}
	if got := kvRecords(t, openSQLite(t, filepath.Join(e.dir, "sqlite", "orders.copy.db"))); !maps.Equal(got, want) {
		t.Fatal("reset and replayed target differs from the served one")
	}
}

func TestReplayIntoPostgresTarget(t *testing.T) {
	dsn := pgtest.DSN(t)
	ns := pgtest.Namespace(t, "replay_")
	n := namespaces.Namespace{Name: ns, Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite"}
	e := newReplayEnv(t, n, 300)
	want := e.primaryRecords(t, ns)
	schema, err := replay.PostgresTargetSchema(ns, "pg")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = postgres.DropSchema(context.Background(), dsn, ns, postgres.WithSchema(schema)) })

	f := e.flags("pg")
	f.backend, f.postgresDSN = "postgres", dsn
	out, err := replayCmd(t, ns, f, "")
	if err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	// A plain schema name: no '.', nothing to quote in psql.
	if want := "prism__" + ns + "__pg"; schema != want || !strings.Contains(out, "into postgres schema "+want+"\n") {
		t.Fatalf("schema %q, want %q, in the output:\n%s", schema, want, out)
	}
	st, err := postgres.Open(context.Background(), dsn, ns, postgres.WithSchema(schema))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if got := kvRecords(t, st); !maps.Equal(got, want) {
		t.Fatalf("postgres target differs from the served one:\n got %v\nwant %v", got, want)
	}
}

func TestReplayTimeSeriesNamespace(t *testing.T) {
	n := namespaces.Namespace{Name: "metrics", Abstraction: namespaces.AbstractionTimeSeries, Backend: "sqlite"}
	e := newReplayEnv(t, n, 120)
	if out, err := replayCmd(t, "metrics", e.flags("rebuild"), ""); err != nil {
		t.Fatalf("replay: %v\n%s", err, out)
	}
	st := openSQLite(t, filepath.Join(e.dir, "sqlite", "metrics.rebuild.db"))
	total := 0
	for s := range 7 {
		resp, err := st.ReadRange(context.Background(), &prismv1.ReadRangeRequest{SeriesId: []byte(fmt.Sprintf("s%d", s)), PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		total += len(resp.GetEvents())
	}
	if total != 120 {
		t.Fatalf("replayed %d events, want 120", total)
	}
}

func TestReplayFlagsValidate(t *testing.T) {
	ok := replayFlags{target: "t", batchSize: 10, interval: time.Second}
	tests := []struct {
		name   string
		change func(*replayFlags)
		want   string
	}{
		{"no target", func(f *replayFlags) { f.target = "" }, "--target NAME is required"},
		{"bad target", func(f *replayFlags) { f.target = "Re.build" }, "lowercase"},
		{"bad backend", func(f *replayFlags) { f.backend = "natskv" }, "want sqlite, postgres or neptune"},
		{"follow and to-seq", func(f *replayFlags) { f.follow, f.toSeq = true, 5 }, "exclude each other"},
		{"from after to", func(f *replayFlags) { f.fromSeq, f.toSeq = 9, 5 }, "after --to-seq"},
		{"negative rate", func(f *replayFlags) { f.maxRate = -1 }, "--max-rate"},
		{"batch", func(f *replayFlags) { f.batchSize = 0 }, "--batch-size"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := ok
			tt.change(&f)
			if err := f.validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("validate = %v, want %q", err, tt.want)
			}
		})
	}
	if err := ok.validate(); err != nil {
		t.Fatal(err)
	}
}

// Run where no prism serve keeps its data, a SQLite replay without
// --data-dir or --sqlite-path is refused and creates nothing there; with
// serve's default ./prism-data present, it replays into it.
func TestReplayCreatesNoDataDirInTheWorkingDirectory(t *testing.T) {
	n := namespaces.Namespace{Name: "orders", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite"}
	e := newReplayEnv(t, n, 20)
	wd := t.TempDir()
	t.Chdir(wd)
	f := e.flags("rebuild")
	f.dataDir = ""
	out, err := replayCmd(t, "orders", f, "")
	if err == nil || !strings.Contains(err.Error(), "pass --data-dir DIR") {
		t.Fatalf("replay without --data-dir where there is no ./prism-data: %v\n%s", err, out)
	}
	if entries, err := os.ReadDir(wd); err != nil || len(entries) != 0 {
		t.Fatalf("the refused replay left %v in the working directory (%v)", entries, err)
	}
	if err := os.Mkdir(filepath.Join(wd, "prism-data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if out, err := replayCmd(t, "orders", f, ""); err != nil {
		t.Fatalf("replay with ./prism-data present: %v\n%s", err, out)
	}
	st := openSQLite(t, filepath.Join(wd, "prism-data", "sqlite", "orders.rebuild.db"))
	if cp, err := st.Checkpoint(context.Background()); err != nil || cp != e.last {
		t.Fatalf("checkpoint of the target under ./prism-data = %d, %v; want %d", cp, err, e.last)
	}
}

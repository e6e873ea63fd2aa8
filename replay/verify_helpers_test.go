package replay_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/types/known/timestamppb"
	_ "modernc.org/sqlite" // the "sqlite" driver, to change rows behind the store's back

	"github.com/prism-data/prism/backends/natskv"
	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/postgres/pgtest"
	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/itest/natstest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/replay"
)

// store is what the tests need of a KeyValue target.
type store interface {
	replay.Source
	ApplyKeyValue(ctx context.Context, changes []*prismv1.KeyValueChange, through uint64) error
	SweepExpired(ctx context.Context) (int64, error)
}

var (
	_ replay.Source = (*sqlite.Store)(nil)
	_ replay.Source = (*postgres.Store)(nil)
	_ replay.Source = (*natskv.Store)(nil)
)

// target is a store under test and a way to change its items table
// directly, as a bug or an operator's mistake would.
type target struct {
	name  string
	store store
	// exec runs query with ? placeholders; {items} stands for the items
	// table. NATS KV targets have none: tests corrupt only SQL ones.
	exec func(t testing.TB, query string, args ...any)
}

// kind opens a new, empty target of one backend.
type kind struct {
	name string
	open func(t testing.TB) *target
}

var (
	sqliteKind   = kind{"sqlite", openSQLite}
	postgresKind = kind{"postgres", openPostgres}
	natskvKind   = kind{"natskv", openNATSKV}
)

// openNATSKV opens a bucket on an in-process NATS server of its own.
func openNATSKV(t testing.TB) *target {
	t.Helper()
	_, js := natstest.Start(t)
	s, err := natskv.Open(context.Background(), js, "verify")
	if err != nil {
		t.Fatalf("natskv.Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return &target{name: "natskv", store: s, exec: func(t testing.TB, query string, _ ...any) {
		t.Helper()
		t.Fatalf("natskv target: no SQL to run %s", query)
	}}
}

func openSQLite(t testing.TB) *target {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ns.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatalf("sqlite.Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: url.Values{"_pragma": {"busy_timeout(5000)"}}.Encode()}
	db, err := sql.Open("sqlite", u.String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = db.Close() })
	return &target{name: "sqlite", store: s, exec: func(t testing.TB, query string, args ...any) {
		t.Helper()
		if _, err := db.Exec(strings.ReplaceAll(query, "{items}", "items"), args...); err != nil {
			t.Fatalf("sqlite %s: %v", query, err)
		}
	}}
}

func openPostgres(t testing.TB) *target {
	t.Helper()
	dsn := pgtest.DSN(t)
	ns := pgtest.Namespace(t, "verify-")
	s, err := postgres.Open(context.Background(), dsn, ns)
	if err != nil {
		t.Fatalf("postgres.Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	table := pgx.Identifier{s.Schema(), "items"}.Sanitize()
	return &target{name: "postgres", store: s, exec: func(t testing.TB, query string, args ...any) {
		t.Helper()
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		n := 0
		q := strings.ReplaceAll(query, "{items}", table)
		for strings.Contains(q, "?") {
			n++
			q = strings.Replace(q, "?", fmt.Sprintf("$%d", n), 1)
		}
		if _, err := conn.Exec(ctx, q, args...); err != nil {
			t.Fatalf("postgres %s: %v", q, err)
		}
	}}
}

func item(key, value string) *prismv1.Item {
	return &prismv1.Item{Key: []byte(key), Value: []byte(value)}
}

func itemExpiring(key, value string, at time.Time) *prismv1.Item {
	it := item(key, value)
	it.ExpireTime = timestamppb.New(at)
	return it
}

func putChange(seq uint64, id string, items ...*prismv1.Item) *prismv1.KeyValueChange {
	return &prismv1.KeyValueChange{Seq: seq, Event: &prismv1.KeyValueEvent{
		Id:     []byte(id),
		Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: items}},
	}}
}

func delChange(seq uint64, id string, keys ...string) *prismv1.KeyValueChange {
	d := &prismv1.KeyValueDelete{}
	for _, k := range keys {
		d.Keys = append(d.Keys, []byte(k))
	}
	return &prismv1.KeyValueChange{Seq: seq, Event: &prismv1.KeyValueEvent{
		Id:     []byte(id),
		Change: &prismv1.KeyValueEvent_Delete{Delete: d},
	}}
}

// recID is the id of the i-th record of a history.
func recID(i int) string { return fmt.Sprintf("rec-%05d", i) }

// history returns the changes that write n records: one to five items
// each, some expiring (some already expired when applied, some an hour
// later), then overwrites, partial and whole deletes and empty puts of
// some of them. Records rec-00000 to rec-00009 are written once and never
// changed or deleted, with a live item k0, and so are the empty id and a
// binary one. The
// sequences start at 1.
func history(n int, seed uint64) []*prismv1.KeyValueChange {
	rng := rand.New(rand.NewPCG(seed, seed+1))
	now := time.Now()
	var changes []*prismv1.KeyValueChange
	seq := uint64(0)
	add := func(c func(seq uint64) *prismv1.KeyValueChange) {
		seq++
		changes = append(changes, c(seq))
	}
	items := func(i int) []*prismv1.Item {
		var its []*prismv1.Item
		for k := range 1 + rng.IntN(5) {
			key, value := fmt.Sprintf("k%d", k), fmt.Sprintf("value-%d-%d", i, rng.Uint32())
			switch rng.IntN(8) {
			case 0:
				if i < 10 && k == 0 { // the fixed records' k0 is live, for the tests to change
					its = append(its, item(key, value))
					break
				}
				its = append(its, itemExpiring(key, value, now.Add(-time.Hour)))
			case 1:
				its = append(its, itemExpiring(key, value, now.Add(time.Hour)))
			default:
				its = append(its, item(key, value))
			}
		}
		return its
	}
	add(func(seq uint64) *prismv1.KeyValueChange { return putChange(seq, "", item("k", "the empty id")) })
	add(func(seq uint64) *prismv1.KeyValueChange { return putChange(seq, "\x00\xff bin", item("k", "binary")) })
	for i := range n {
		add(func(seq uint64) *prismv1.KeyValueChange { return putChange(seq, recID(i), items(i)...) })
	}
	for range n / 2 {
		i := 10 + rng.IntN(n-10)
		switch rng.IntN(10) {
		case 0:
			add(func(seq uint64) *prismv1.KeyValueChange { return delChange(seq, recID(i)) })
		case 1, 2:
			add(func(seq uint64) *prismv1.KeyValueChange { return delChange(seq, recID(i), "k0", "k3") })
		case 3:
			add(func(seq uint64) *prismv1.KeyValueChange { return putChange(seq, recID(i)) })
		default:
			add(func(seq uint64) *prismv1.KeyValueChange { return putChange(seq, recID(i), items(i)...) })
		}
	}
	return changes
}

// applyAll applies changes to every target in batches, each batch's
// checkpoint its last change's seq.
func applyAll(t testing.TB, changes []*prismv1.KeyValueChange, targets ...*target) {
	t.Helper()
	const batch = 500
	for start := 0; start < len(changes); start += batch {
		b := changes[start:min(start+batch, len(changes))]
		for _, tg := range targets {
			if err := tg.store.ApplyKeyValue(context.Background(), b, b[len(b)-1].GetSeq()); err != nil {
				t.Fatalf("%s: ApplyKeyValue: %v", tg.name, err)
			}
		}
	}
}

// pair opens an old and a new target and applies the same history of n
// records to both.
func pair(t testing.TB, old, new kind, n int) (*target, *target, []*prismv1.KeyValueChange) {
	t.Helper()
	o, nw := old.open(t), new.open(t)
	changes := history(n, 42)
	applyAll(t, changes, o, nw)
	return o, nw, changes
}

func verify(t testing.TB, old, new *target, opts ...replay.VerifyOption) replay.Report {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a liveness bound, far above the runs here
	defer cancel()
	r, err := replay.Verify(ctx, old.store, new.store, opts...)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	return r
}

// table renders r for failure messages.
func table(r replay.Report) string {
	var b strings.Builder
	_ = r.WriteTable(&b)
	return b.String()
}

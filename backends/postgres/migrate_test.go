package postgres_test

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prism-data/prism/backends/postgres"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// createV1Schema creates namespace ns's schema as the KeyValue-only first
// release did (schema version 1), with a record and checkpoint 7.
func createV1Schema(t testing.TB, ns string) {
	t.Helper()
	schema, err := postgres.SchemaName(ns)
	if err != nil {
		t.Fatal(err)
	}
	s := pgx.Identifier{schema}.Sanitize()
	ddl := `CREATE SCHEMA {s};
CREATE TABLE {s}.schema_version (
	one     integer NOT NULL PRIMARY KEY CHECK (one = 1),
	version integer NOT NULL
);
INSERT INTO {s}.schema_version (one, version) VALUES (1, 1);
` + postgres.MigrationV1 + `
INSERT INTO {s}.records (id, revision) VALUES ('\x7631', 7);
INSERT INTO {s}.items (id, key, value) VALUES ('\x7631', '\x6b', '\x76616c7565');
UPDATE {s}.checkpoint SET seq = 7;`
	if _, err := rawConn(t).Exec(context.Background(), strings.ReplaceAll(ddl, "{s}", s)); err != nil {
		t.Fatalf("create v1 schema: %v", err)
	}
}

// checkMigratedFromV1 checks that s, opened on a schema createV1Schema
// made, kept its KeyValue data and checkpoint and serves TimeSeries.
func checkMigratedFromV1(t testing.TB, s *postgres.Store) {
	t.Helper()
	if v := schemaVersion(t, s); v != postgres.SchemaVersion {
		t.Errorf("schema version %d after Open, want %d", v, postgres.SchemaVersion)
	}
	if cp := tsCheckpoint(t, s); cp != 7 {
		t.Errorf("checkpoint %d after migration, want 7", cp)
	}
	resp := getOne(t, s, "v1")
	if resp.GetRevision() != 7 || len(resp.GetItems()) != 1 || string(resp.GetItems()[0].GetValue()) != "value" {
		t.Errorf("v1 record after migration: %v; want revision 7, k=value", resp)
	}
}

// Opening a KeyValue-only (version 1) schema adds the TimeSeries tables and
// keeps the KeyValue data and the checkpoint, which both abstractions share.
func TestMigrateFromV1(t *testing.T) {
	ns := newNamespace(t)
	createV1Schema(t, ns)
	s := openStore(t, ns)
	checkMigratedFromV1(t, s)

	// Seq 7 is behind the checkpoint the first release reached.
	tsApply(t, s, 8, tsAppend(7, "s", tsEvent(tsAt(0, 0), "old", "")), tsAppend(8, "s", tsEvent(tsAt(1, 0), "new", "p", "k", "v")))
	got, _ := tsSearchAll(t, s, &prismv1.SearchRequest{Tags: map[string]string{"k": "v"}})
	tsEqual(t, "events after migration", got, []tsRow{{series: "s", sec: tsAt(1, 0).GetSeconds(), id: "new", tags: "k=v", body: "p"}})
	if cp := tsCheckpoint(t, s); cp != 8 {
		t.Errorf("checkpoint %d, want 8", cp)
	}
}

// Several processes upgrading one version 1 schema at once all succeed,
// and the migration runs once. The test makes the race certain: it holds a
// lock on the items table, which the last migration alters, until all six
// openers wait on a lock (the advisory lock of the migration, or the items
// table after reading the schema version); a migration that is not
// serialized has then run its version check in every opener, and the log
// the test's triggers keep counts one run per opener.
func TestConcurrentOpenMigratesOnce(t *testing.T) {
	ctx := context.Background()
	dsn := testDSN(t)
	ns := newNamespace(t)
	createV1Schema(t, ns)
	schema, err := postgres.SchemaName(ns)
	if err != nil {
		t.Fatal(err)
	}
	s := pgx.Identifier{schema}.Sanitize()
	conn := rawConn(t)
	// Every migration that runs to its end sets the schema version and the
	// rev of the items (migration 3): each of those statements logs a row.
	if _, err := conn.Exec(ctx, strings.ReplaceAll(`
CREATE TABLE {s}.test_migration_log (what text NOT NULL);
CREATE FUNCTION {s}.test_log_migration() RETURNS trigger LANGUAGE plpgsql AS
	$$BEGIN INSERT INTO {s}.test_migration_log VALUES (TG_TABLE_NAME); RETURN NULL; END$$;
CREATE TRIGGER test_log_version AFTER UPDATE ON {s}.schema_version
	FOR EACH STATEMENT EXECUTE FUNCTION {s}.test_log_migration();
CREATE TRIGGER test_log_items AFTER UPDATE ON {s}.items
	FOR EACH STATEMENT EXECUTE FUNCTION {s}.test_log_migration();`, "{s}", s)); err != nil {
		t.Fatal(err)
	}

	gate, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := gate.Exec(ctx, `LOCK TABLE `+s+`.items IN ACCESS EXCLUSIVE MODE`); err != nil {
		t.Fatal(err)
	}
	app := "prism-test-" + schema
	const openers = 6
	stores := make([]*postgres.Store, openers)
	errs := make([]error, openers)
	var wg sync.WaitGroup
	for i := range openers {
		wg.Go(func() {
			stores[i], errs[i] = postgres.Open(ctx, withApplicationName(dsn, app), ns, postgres.WithMaxConns(2))
		})
	}
	waitForLockWaiters(t, app, openers)
	if err := gate.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(func() { stores[i].Close() })
	}
	var log []string
	rows, err := conn.Query(ctx, `SELECT what FROM `+s+`.test_migration_log ORDER BY what`)
	if err != nil {
		t.Fatal(err)
	}
	if log, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		t.Fatal(err)
	}
	if want := []string{"items", "schema_version"}; !slices.Equal(log, want) {
		t.Errorf("migration log = %q, want %q: the migration ran %d times", log, want, strings.Count(strings.Join(log, ","), "schema_version"))
	}
	checkMigratedFromV1(t, stores[0])
	// One store's events are every store's.
	tsApply(t, stores[1], 9, tsAppend(9, "s", tsEvent(tsAt(0, 0), "e", "p")))
	for i, s := range stores {
		got, _ := tsReadAll(t, s, &prismv1.ReadRangeRequest{SeriesId: []byte("s")})
		tsEqual(t, "store "+string(rune('0'+i)), got, []tsRow{{series: "s", sec: tsAt(0, 0).GetSeconds(), id: "e", body: "p"}})
	}
}

// withApplicationName adds application_name to dsn, a URL or key=value.
func withApplicationName(dsn, app string) string {
	switch {
	case !strings.Contains(dsn, "://"):
		return dsn + " application_name=" + app
	case strings.Contains(dsn, "?"):
		return dsn + "&application_name=" + app
	default:
		return dsn + "?application_name=" + app
	}
}

// waitForLockWaiters returns once n sessions of application app wait on a
// lock, or fails the test if it ends first. It polls pg_stat_activity: the
// server has no way to notify a waiter count.
func waitForLockWaiters(t testing.TB, app string, n int) {
	t.Helper()
	ctx := context.Background()
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if deadline, ok := d.Deadline(); ok {
			var cancel context.CancelFunc
			ctx, cancel = context.WithDeadline(ctx, deadline)
			defer cancel()
		}
	}
	conn := rawConn(t)
	for {
		var waiting int
		// pg_sleep spaces the polls on the server side; the count decides.
		err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity, pg_sleep(0.01)
			WHERE application_name = $1 AND wait_event_type = 'Lock'`, app).Scan(&waiting)
		if err != nil {
			t.Fatalf("waiting for %d openers to wait on a lock: %v", n, err)
		}
		if waiting == n {
			return
		}
		if waiting > n {
			t.Fatalf("%d sessions of %s wait on a lock, want %d", waiting, app, n)
		}
	}
}

// Two projectors of one namespace applying the same batches at once (a
// redelivery race) leave each event once, with the first write's tags
// indexed once: writers serialize on the checkpoint row.
func TestApplyTimeSeriesConcurrentWriters(t *testing.T) {
	ns := newNamespace(t)
	stores := []*postgres.Store{openStore(t, ns), openStore(t, ns), openStore(t, ns)}
	const batches, perBatch = 40, 25
	var wg sync.WaitGroup
	errs := make([]error, len(stores))
	for i, s := range stores {
		wg.Go(func() {
			for b := range uint64(batches) {
				var changes []*prismv1.TimeSeriesChange
				for j := range uint64(perBatch) {
					seq := b*perBatch + j + 1
					changes = append(changes, tsAppend(seq, "s", tsEvent(tsAt(int64(seq), 0), "e", "p", "k", "v")))
				}
				// Every writer first redelivers the previous batch with it.
				if b > 0 {
					changes = append([]*prismv1.TimeSeriesChange{tsAppend(b*perBatch, "s", tsEvent(tsAt(int64(b*perBatch), 0), "e", "p", "k", "v"))}, changes...)
				}
				if err := s.ApplyTimeSeries(context.Background(), changes, (b+1)*perBatch); err != nil {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("writer %d: %v", i, err)
		}
	}
	if n := tsCount(t, stores[0], "ts_events"); n != batches*perBatch {
		t.Errorf("%d events, want %d", n, batches*perBatch)
	}
	if n := tsCount(t, stores[0], "ts_tags"); n != batches*perBatch {
		t.Errorf("%d tag rows, want %d", n, batches*perBatch)
	}
	if cp := tsCheckpoint(t, stores[2]); cp != batches*perBatch {
		t.Errorf("checkpoint %d, want %d", cp, batches*perBatch)
	}
}

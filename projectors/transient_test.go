package projectors_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-data/prism/backends/kafka"
	"github.com/prism-data/prism/backends/kafka/kafkatest"
	"github.com/prism-data/prism/backends/natskv"
	"github.com/prism-data/prism/backends/neptune"
	"github.com/prism-data/prism/backends/neptune/neptunetest"
	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/postgres/pgtest"
	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// The tests of this file prove, one per backend, that a transient backend
// error (locked, killed, throttled, full, a broker refusing) is retried
// with backoff and never dead-lettered: once the cause is gone the event
// is applied, the checkpoint reaches it and the dead-letter stream is
// empty. Each also checks that the failure did happen
// (prism_projector_apply_errors_total), so it cannot pass vacuously.

// publishPut publishes a put of item k=v to record id and returns its seq.
func publishPut(t *testing.T, js jetstream.JetStream, id, k, v string) uint64 {
	t.Helper()
	msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: testNS}, &prismv1.KeyValueEvent{Id: []byte(id),
		Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: []*prismv1.Item{{Key: []byte(k), Value: []byte(v)}}}}})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.PublishMsg(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	return ack.Sequence
}

// waitApplyErrors waits until the projector counted at least one failed
// apply: the transient cause is in effect.
func waitApplyErrors(t *testing.T, reg *prometheus.Registry) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for gather(t, reg)["prism_projector_apply_errors_total"] < 1 {
		if time.Now().After(deadline) {
			t.Fatal("no failed apply: the test's transient cause did not take effect")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// liftAndCheck waits until the transient cause made an apply fail, lifts
// it, and checks that the put publishPut made at seq (r1: k=v) is then
// applied and nothing was dead-lettered.
func liftAndCheck(t *testing.T, js jetstream.JetStream, p *projectors.Projector, reg *prometheus.Registry, seq uint64,
	get func(context.Context, *prismv1.GetRequest) (*prismv1.GetResponse, error), lift func() error) {
	t.Helper()
	waitApplyErrors(t, reg)
	if err := lift(); err != nil {
		t.Fatal(err)
	}
	waitApplied(t, p, seq)
	checkItem(t, get, "r1", "k", "v")
	checkNoDeadLetters(t, js)
}

// checkNoDeadLetters fails the test if the dead-letter stream holds any.
func checkNoDeadLetters(t *testing.T, js jetstream.JetStream) {
	t.Helper()
	if dl := deadLetters(t, js); len(dl) != 0 {
		t.Fatalf("%d dead letters after a transient failure (first: %q), want none", len(dl), dl[0].Header.Get(subjects.HeaderDLQReason))
	}
}

// checkItem fails unless st holds k=v in record id.
func checkItem(t *testing.T, get func(context.Context, *prismv1.GetRequest) (*prismv1.GetResponse, error), id, k, v string) {
	t.Helper()
	resp, err := get(context.Background(), &prismv1.GetRequest{Id: []byte(id)})
	if err != nil || len(resp.GetItems()) != 1 || string(resp.GetItems()[0].GetValue()) != v || string(resp.GetItems()[0].GetKey()) != k {
		t.Fatalf("record %s = %v, %v; want %s=%s", id, resp.GetItems(), err, k, v)
	}
}

// SQLite: a second connection holds the write lock past the store's busy
// timeout, so the apply fails with SQLITE_BUSY.
func TestTransientSQLiteBusyNeverDeadLetters(t *testing.T) {
	js := startJetStream(t)
	path := filepath.Join(t.TempDir(), "kv.db")
	st, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	other, err := sql.Open("sqlite", "file:"+path+"?_pragma=busy_timeout(0)")
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	other.SetMaxOpenConns(1)
	conn, err := other.Conn(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(context.Background(), "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewRegistry()
	p := startProjector(t, js, "sqlite", st, projectors.WithRegisterer(reg))
	seq := publishPut(t, js, "r1", "k", "v")
	// The first failure comes after one busy timeout (5 s).
	liftAndCheck(t, js, p, reg, seq, st.GetItems, func() error {
		_, err := conn.ExecContext(context.Background(), "ROLLBACK")
		return err
	})
}

// openPostgres opens a store of a fresh namespace schema with the session
// settings of params (appended to the test DSN), and returns it with a
// plain connection to the same database.
func openPostgres(t *testing.T, params string) (*postgres.Store, *pgx.Conn) {
	t.Helper()
	dsn := pgtest.DSN(t)
	sep := "?"
	if strings.Contains(dsn, "?") {
		sep = "&"
	}
	st, err := postgres.Open(context.Background(), dsn+sep+params, pgtest.Namespace(t, "transient-"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return st, conn
}

// lockItems locks the items table of st in a transaction of conn, rolled
// back at the end of the test if it is still open.
func lockItems(t *testing.T, conn *pgx.Conn, st *postgres.Store) pgx.Tx {
	t.Helper()
	ctx := context.Background()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = tx.Rollback(ctx) })
	if _, err := tx.Exec(ctx, fmt.Sprintf("LOCK TABLE %s.items IN ACCESS EXCLUSIVE MODE", pgx.Identifier{st.Schema()}.Sanitize())); err != nil {
		t.Fatal(err)
	}
	return tx
}

// PostgreSQL: another transaction locks the items table; the store's
// session gives up on the lock after lock_timeout (55P03).
func TestTransientPostgresLockTimeoutNeverDeadLetters(t *testing.T) {
	js := startJetStream(t)
	st, conn := openPostgres(t, "lock_timeout=100ms")
	ctx := context.Background()
	tx := lockItems(t, conn, st)
	reg := prometheus.NewRegistry()
	p := startProjector(t, js, "postgres", st, projectors.WithRegisterer(reg))
	seq := publishPut(t, js, "r1", "k", "v")
	liftAndCheck(t, js, p, reg, seq, st.GetItems, func() error { return tx.Rollback(ctx) })
}

// PostgreSQL: the store's connections are killed with pg_terminate_backend
// while it applies (as a restart or failover does to them).
func TestTransientPostgresKilledConnectionNeverDeadLetters(t *testing.T) {
	js := startJetStream(t)
	app := fmt.Sprintf("prism-transient-%d", time.Now().UnixNano())
	st, conn := openPostgres(t, "application_name="+app+"&lock_timeout=5s")
	ctx := context.Background()
	// Hold the lock so the apply is in flight on a backend when it is
	// killed; the kill ends the wait.
	tx := lockItems(t, conn, st)
	reg := prometheus.NewRegistry()
	p := startProjector(t, js, "postgres", st, projectors.WithRegisterer(reg))
	seq := publishPut(t, js, "r1", "k", "v")
	killer, err := pgx.Connect(ctx, pgtest.DSN(t))
	if err != nil {
		t.Fatal(err)
	}
	defer killer.Close(ctx)
	deadline := time.Now().Add(20 * time.Second)
	for {
		var killed int
		if err := killer.QueryRow(ctx, "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = $1 AND wait_event_type = 'Lock'", app).Scan(&killed); err != nil {
			t.Fatal(err)
		}
		if killed > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the store's apply never waited on the lock")
		}
		time.Sleep(10 * time.Millisecond)
	}
	liftAndCheck(t, js, p, reg, seq, st.GetItems, func() error { return tx.Rollback(ctx) })
}

// NATS KV: the bucket's stream refuses writes (it is full) until its
// limit is raised again.
func TestTransientNATSKVFullNeverDeadLetters(t *testing.T) {
	js := startJetStream(t)
	ctx := context.Background()
	st, err := natskv.Open(ctx, js, testNS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	bucket := "KV_" + st.Bucket()
	setMaxBytes := func(n int64) {
		t.Helper()
		s, err := js.Stream(ctx, bucket)
		if err != nil {
			t.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		cfg.MaxBytes, cfg.Discard = n, jetstream.DiscardNew
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			t.Fatal(err)
		}
	}
	info, err := js.Stream(ctx, bucket)
	if err != nil {
		t.Fatal(err)
	}
	orig := info.CachedInfo().Config
	setMaxBytes(1)
	reg := prometheus.NewRegistry()
	p := startProjector(t, js, "natskv", st, projectors.WithRegisterer(reg))
	seq := publishPut(t, js, "r1", "k", "v")
	liftAndCheck(t, js, p, reg, seq, st.GetItems, func() error {
		_, err := js.UpdateStream(ctx, orig)
		return err
	})
}

// Kafka (kfake): the broker refuses the produce requests of the data
// topic with a retriable error (not enough replicas) three times.
func TestTransientKafkaBrokerErrorsNeverDeadLetter(t *testing.T) {
	js := startJetStream(t)
	c, brokers := kafkatest.Start(t)
	st := openLogStore(t, brokers, kafka.WithMaxAttempts(1))
	failed := failCheckpointWrites(c, st.Topic(), 3)
	pub := newLogPublisher(js)
	pub.publish(t, 20, 3)
	p := newLogProjector(t, js, st)
	defer stopProjector(t, p)
	waitApplied(t, p, pub.lastSeq())
	if failed.Load() != 3 {
		t.Fatalf("%d produce requests refused, want 3", failed.Load())
	}
	checkTopic(t, st, pub)
	checkNoDeadLetters(t, js)
}

// Neptune (the stand-in): throttling and 5xx answers to the write batches.
func TestTransientNeptuneThrottlingNeverDeadLetters(t *testing.T) {
	js := startJetStream(t)
	srv := neptunetest.New(t, "eu-west-1")
	st, err := neptune.New(context.Background(), srv.URL, testNS, neptune.WithHTTPClient(srv.HTTPClient()),
		neptune.WithCredentials(srv.CredentialsProvider(), srv.Region), neptune.WithRetry(1, time.Millisecond, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = st.Close() })
	srv.FailShape("batch", 429, "ThrottlingException", 2)
	srv.FailShape("batch", 500, "InternalFailureException", 2)
	reg := prometheus.NewRegistry()
	p, err := projectors.NewGraph(js, testNS, "neptune", st, projectors.WithLogger(testLogger(t)), projectors.WithRegisterer(reg),
		projectors.WithBackoff(time.Millisecond, 20*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer stopProjector(t, p)
	msg, err := subjects.NewGraphEvent(subjects.EventMeta{Namespace: testNS}, &prismv1.GraphEvent{
		Element: &prismv1.GraphEvent_Vertex{Vertex: &prismv1.Vertex{Id: "alice", Label: "person"}}})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := js.PublishMsg(context.Background(), msg)
	if err != nil {
		t.Fatal(err)
	}
	waitApplied(t, p, ack.Sequence)
	if got := gather(t, reg)["prism_projector_apply_errors_total"]; got < 1 {
		t.Fatalf("apply errors %v: the injected faults were not hit", got)
	}
	if v, err := st.GetVertex(context.Background(), "alice"); err != nil || v.GetLabel() != "person" {
		t.Fatalf("vertex alice = %v, %v", v, err)
	}
	checkNoDeadLetters(t, js)
}

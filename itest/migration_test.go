package itest

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	_ "modernc.org/sqlite"

	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/postgres/pgtest"
	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
)

// migrationKeys is how many records the migration tests load.
const migrationKeys = 100_000

// waitState waits until the migration of name is in state want; the
// bound is a liveness limit for backfilling migrationKeys records.
func waitState(t *testing.T, p *prismProc, name string, want namespaces.MigrationState) namespaces.AdminNamespace {
	t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		n := p.nsGet(t, name)
		if n.Migration != nil && n.Migration.State == want {
			return n
		}
		if time.Now().After(deadline) {
			t.Fatalf("migration of %s never reached %s: %+v\n%s", name, want, n.Migration, p.Output())
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitReading waits until target serves the reads of name.
func waitReading(t *testing.T, p *prismProc, name, target string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		n := p.nsGet(t, name)
		for _, ts := range n.Targets {
			if ts.Target == target && ts.Role == "primary" {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s never served the reads of %s: %+v", target, name, n.Targets)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// verifyReport is the part of prism migrate verify --json the tests read.
type verifyReport struct {
	Passed    bool     `json:"passed"`
	Compared  int64    `json:"compared"`
	Matched   int64    `json:"matched"`
	Missing   int64    `json:"missing"`
	Extra     int64    `json:"extra"`
	Differing int64    `json:"differing"`
	FirstDiff []string `json:"differing_ids"`
}

func migrateVerify(t *testing.T, p *prismProc, name string) verifyReport {
	t.Helper()
	out, err := p.cli(t, "", "migrate", "verify", name, "--json", "--timeout", "2m")
	var r verifyReport
	i := strings.Index(out, "{")
	if i < 0 {
		t.Fatalf("migrate verify: %v\n%s", err, out)
	}
	if jerr := json.Unmarshal([]byte(out[i:]), &r); jerr != nil {
		t.Fatalf("migrate verify: %v / %v\n%s", err, jerr, out)
	}
	return r
}

// loadKeys writes n records rec-000000… with value "v0" through c, 16
// writers at a time.
func loadKeys(t *testing.T, ctx context.Context, kv *client.KeyValue, n int) {
	t.Helper()
	var wg sync.WaitGroup
	var failed atomic.Value
	var last atomic.Uint64 // the highest seq acknowledged
	const writers = 16
	for w := range writers {
		wg.Go(func() {
			for i := w; i < n; i += writers {
				seq, err := kv.Put(ctx, recID(i), []client.Item{{Key: []byte("v"), Value: []byte("v0")}})
				if err != nil {
					failed.Store(err)
					return
				}
				for {
					cur := last.Load()
					if seq <= cur || last.CompareAndSwap(cur, seq) {
						break
					}
				}
			}
		})
	}
	wg.Wait()
	if err := failed.Load(); err != nil {
		t.Fatal(err)
	}
	// Plain gets that follow must see every record: wait until the
	// projection applied the whole load (an eventual namespace's put
	// replies before that).
	for {
		_, err := kv.Get(ctx, recID(0), client.MinSeq(last.Load()))
		if err == nil {
			return
		}
		if !errors.Is(err, client.ErrNotConsistentYet) {
			t.Fatalf("wait for the load to be applied: %v", err)
		}
	}
}

func recID(i int) []byte { return fmt.Appendf(nil, "rec-%06d", i) }

// migrationEnv is a prism serve with a SQLite keyvalue namespace loaded
// with records rec-000000… (value "v0") and a PostgreSQL to move it to.
type migrationEnv struct {
	p         *prismProc
	name, dir string
	dsn       string
	kv        *client.KeyValue
	ctx       context.Context
}

func startMigrationEnv(t *testing.T, prefix, consistency string, keys int, serveArgs ...string) migrationEnv {
	t.Helper()
	m := migrationEnv{dsn: pgtest.DSN(t), name: pgtest.Namespace(t, prefix), dir: t.TempDir(), ctx: testCtx(t)}
	m.p = startPrism(t, m.dir, 0, append([]string{"--postgres-dsn", m.dsn}, serveArgs...)...)
	m.p.mustCLI(t, "apply", "-f", writeSpec(t, fmt.Sprintf("name: %s\nabstraction: keyvalue\nbackend: sqlite\nconsistency: %s\n", m.name, consistency)))
	_, c := m.p.connect(t)
	m.kv = c.KeyValue(m.name)
	untilServed(t, 30*time.Second, func() error {
		_, err := m.kv.Put(m.ctx, recID(0), []client.Item{{Key: []byte("v"), Value: []byte("v0")}})
		return err
	})
	loadKeys(t, m.ctx, m.kv, keys)
	return m
}

// TestMigrateSQLiteToPostgresUnderLoad moves a namespace of 100k records
// from SQLite to PostgreSQL with the CLI while a writer keeps overwriting
// records and readers keep reading: no read fails, verify passes at
// every step, rollback and a second cutover work, and at the end both
// targets and the writer's own record of what it wrote agree on every
// record (compared independently of verify, straight from the SQLite file
// and the PostgreSQL schema).
func TestMigrateSQLiteToPostgresUnderLoad(t *testing.T) {
	metrics := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	m := startMigrationEnv(t, "mig", "read-your-writes", migrationKeys, "--http-listen", metrics)
	p, name, dir, dsn, kv, ctx := m.p, m.name, m.dir, m.dsn, m.kv, m.ctx

	// The writer overwrites random records; last holds the value of each
	// record's last acknowledged write (writes to one record are made by
	// one writer, in order).
	stop := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	last := map[int]string{}
	var writes, reads, readFailures atomic.Int64
	var firstFailure atomic.Value
	const writers = 4
	for w := range writers {
		wg.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				i := rand.IntN(migrationKeys/writers)*writers + w
				v := fmt.Sprintf("w%d-%d", w, n)
				seq, err := kv.Put(ctx, recID(i), []client.Item{{Key: []byte("v"), Value: []byte(v)}})
				if err != nil {
					firstFailure.CompareAndSwap(nil, fmt.Errorf("put: %w", err))
					return
				}
				mu.Lock()
				last[i] = v
				mu.Unlock()
				writes.Add(1)
				// Read-your-writes across the cutover.
				if n%50 == 0 {
					rec, err := kv.Get(ctx, recID(i), client.MinSeq(seq))
					if err != nil || string(rec.Items[0].Value) != v {
						readFailures.Add(1)
						firstFailure.CompareAndSwap(nil, fmt.Errorf("read-your-write of %s: %+v, %v", recID(i), rec, err))
					}
				}
			}
		})
	}
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				i := rand.IntN(migrationKeys)
				rec, err := kv.Get(ctx, recID(i))
				reads.Add(1)
				if err != nil || len(rec.Items) != 1 {
					readFailures.Add(1)
					firstFailure.CompareAndSwap(nil, fmt.Errorf("get %s: %+v, %v", recID(i), rec, err))
				}
			}
		})
	}

	p.mustCLI(t, "migrate", "start", name, "--to", "postgres", "--shadow-sample", "0.2")
	waitState(t, p, name, namespaces.MigrationShadowing)
	if r := migrateVerify(t, p, name); !r.Passed || r.Compared < migrationKeys {
		t.Fatalf("verify while shadowing: %+v", r)
	}
	if out := p.mustCLI(t, "migrate", "cutover", name); !strings.Contains(out, "reads are served by postgres") {
		t.Fatalf("migrate cutover did not wait for the reads to move:\n%s", out)
	}
	waitReading(t, p, name, "postgres")
	time.Sleep(time.Second) // let traffic run against the new target
	p.mustCLI(t, "migrate", "rollback", name)
	waitReading(t, p, name, "sqlite")
	if r := migrateVerify(t, p, name); !r.Passed {
		t.Fatalf("verify after rollback: %+v", r)
	}
	p.mustCLI(t, "migrate", "cutover", name)
	waitReading(t, p, name, "postgres")
	time.Sleep(time.Second)

	close(stop)
	wg.Wait()
	if err := firstFailure.Load(); err != nil {
		t.Fatalf("%d of %d reads failed; first: %v", readFailures.Load(), reads.Load(), err)
	}
	if writes.Load() == 0 || reads.Load() == 0 {
		t.Fatalf("no traffic during the migration: %d writes, %d reads", writes.Load(), reads.Load())
	}
	t.Logf("during the migration: %d writes, %d reads, 0 failed", writes.Load(), reads.Load())

	r := migrateVerify(t, p, name)
	if !r.Passed || r.Matched != r.Compared || r.Compared != migrationKeys {
		t.Fatalf("final verify: %+v", r)
	}
	// Shadow reads ran under the load from shadowing on, and none of them
	// found a difference.
	samples := scrape(t, "http://"+metrics)
	series := func(result string) string {
		return fmt.Sprintf(`prism_gateway_shadow_reads_total{namespace=%q,result=%q}`, name, result)
	}
	if samples[series("match")] == 0 || samples[series("mismatch")] != 0 {
		t.Fatalf("shadow reads: %v matched, %v mismatched (skipped %v); want some matches and no mismatch",
			samples[series("match")], samples[series("mismatch")], samples[series("skipped")])
	}
	t.Logf("shadow reads: %v matched, %v skipped, 0 mismatched", samples[series("match")], samples[series("skipped")])
	// Independent comparison: both targets hold exactly what the writer
	// last wrote to every record.
	want := make(map[string]string, migrationKeys)
	for i := range migrationKeys {
		want[string(recID(i))] = "v0"
	}
	for i, v := range last {
		want[string(recID(i))] = v
	}
	compareTargets(t, filepath.Join(dir, "sqlite", name+".db"), dsn, name, want)

	p.mustCLI(t, "migrate", "finalize", name)
	waitState(t, p, name, namespaces.MigrationFinalized)
	for _, id := range []int{0, migrationKeys / 2, migrationKeys - 1} {
		rec, err := kv.Get(ctx, recID(id))
		if err != nil || string(rec.Items[0].Value) != want[string(recID(id))] {
			t.Fatalf("get %s after finalize: %+v, %v", recID(id), rec, err)
		}
	}
}

// compareTargets reads every item of namespace name from its SQLite file
// and its PostgreSQL schema and checks both hold exactly want (id → value
// of item "v").
func compareTargets(t *testing.T, sqlitePath, dsn, name string, want map[string]string) {
	t.Helper()
	ctx := context.Background()
	db, err := sql.Open("sqlite", "file:"+sqlitePath+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fromSQLite := map[string]string{}
	rows, err := db.QueryContext(ctx, `SELECT id, key, value FROM items`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id, key, value []byte
		if err := rows.Scan(&id, &key, &value); err != nil {
			t.Fatal(err)
		}
		if string(key) != "v" {
			t.Fatalf("sqlite: unexpected item %q of %q", key, id)
		}
		fromSQLite[string(id)] = string(value)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	schema, err := postgres.SchemaName(name)
	if err != nil {
		t.Fatal(err)
	}
	fromPG := map[string]string{}
	prows, err := conn.Query(ctx, `SELECT id, key, value FROM `+pgx.Identifier{schema, "items"}.Sanitize())
	if err != nil {
		t.Fatal(err)
	}
	for prows.Next() {
		var id, key, value []byte
		if err := prows.Scan(&id, &key, &value); err != nil {
			t.Fatal(err)
		}
		fromPG[string(id)] = string(value)
	}
	if err := prows.Err(); err != nil {
		t.Fatal(err)
	}
	for target, got := range map[string]map[string]string{"sqlite": fromSQLite, "postgres": fromPG} {
		if len(got) != len(want) {
			t.Errorf("%s holds %d records, want %d", target, len(got), len(want))
		}
		bad := 0
		for id, v := range want {
			if got[id] != v {
				if bad++; bad <= 5 {
					t.Errorf("%s: %s = %q, want %q", target, id, got[id], v)
				}
			}
		}
		if bad > 0 {
			t.Errorf("%s: %d records differ from what was written", target, bad)
		}
	}
}

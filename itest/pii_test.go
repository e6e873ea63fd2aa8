package itest

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/postgres/pgtest"
	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// piiValues are PII values unique to one run, so that finding one on disk
// can only mean this run stored it in plaintext.
type piiValues struct{ email, name, phone string }

func newPIIValues(t *testing.T) piiValues {
	t.Helper()
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	r := hex.EncodeToString(b[:])
	return piiValues{email: "ada." + r + "@example.com", name: "Ada Lovelace" + r, phone: "+44 20 7946 " + r}
}

func (v piiValues) items(nick string) []client.Item {
	return []client.Item{item("email", v.email), item("name", v.name), item("phone", v.phone), item("nick", nick)}
}

// needles are what must not appear anywhere Prism stores or logs: each
// value, and its plain base64 (standard and URL, padded or not).
func (v piiValues) needles() []string {
	var out []string
	for _, s := range []string{v.email, v.name, v.phone} {
		out = append(out, s,
			base64.StdEncoding.EncodeToString([]byte(s)), base64.RawStdEncoding.EncodeToString([]byte(s)),
			base64.URLEncoding.EncodeToString([]byte(s)), base64.RawURLEncoding.EncodeToString([]byte(s)))
	}
	return out
}

// findNeedles returns the needles in b, named with where.
func findNeedles(where string, b []byte, needles []string) []string {
	var found []string
	for _, n := range needles {
		if bytes.Contains(b, []byte(n)) {
			found = append(found, fmt.Sprintf("%s holds %q", where, n))
		}
	}
	return found
}

const piiSpec = "name: %s\nabstraction: keyvalue\nbackend: %s\nconsistency: strong\nfields: [email, name, phone, nick]\npii: {email: email, name: name, phone: phone}\n"

// TestPIIIsNeverStoredInPlaintext writes known PII values through a
// KeyValue namespace on each backend that serves one and a TimeSeries
// namespace (a tag and the payload), follows them with
// a subscription, sends one sealed event to the dead letters, forgets a
// record, migrates a namespace to PostgreSQL by replaying its stream, and
// then reads every byte Prism stored: the data directory (JetStream's
// store with the namespace streams, the NATS KV buckets, the DLQ and the
// audit stream; the SQLite files), every PostgreSQL row raw, and the
// process's debug log. None holds a value or its plain base64. Kafka is
// not in the list: it serves log namespaces only, which cannot declare
// PII fields.
func TestPIIIsNeverStoredInPlaintext(t *testing.T) {
	dsn := pgtest.DSN(t)
	sqliteNS, pgNS := pgtest.Namespace(t, "piisq-"), pgtest.Namespace(t, "piipg-")
	kvNS := "piikv"
	dir := t.TempDir()
	tsNS := "piits"
	tsSpec := "name: piits\nabstraction: timeseries\nbackend: sqlite\nconsistency: strong\nfields: [email, region]\npii: {email: email, payload: name}\n"
	cfg := configDir(t, fmt.Sprintf(piiSpec, sqliteNS, "sqlite"), fmt.Sprintf(piiSpec, pgNS, "postgres"), fmt.Sprintf(piiSpec, kvNS, "natskv"), tsSpec)
	p := startPrism(t, dir, 0, "--config", cfg, "--postgres-dsn", dsn, "--log-level", "debug")
	nc, c := p.connect(t)
	ctx := testCtx(t)
	v := newPIIValues(t)

	for _, ns := range []string{sqliteNS, pgNS, kvNS} {
		kv := c.KeyValue(ns)
		if _, err := kv.Put(ctx, []byte("u1"), v.items("first")); err != nil {
			t.Fatalf("%s: put: %v", ns, err)
		}
		if _, err := kv.Mutate(ctx, []client.Mutation{{ID: []byte("u2"), Items: v.items("second")}, {ID: []byte("u3"), Items: v.items("third")}}); err != nil {
			t.Fatalf("%s: mutate: %v", ns, err)
		}
		// Development mode: every caller may read PII, and does.
		rec, err := kv.Get(ctx, []byte("u2"))
		if err != nil || itemMap(rec.Items)["email"] != v.email || itemMap(rec.Items)["nick"] != "second" {
			t.Fatalf("%s: get u2 = %+v, %v", ns, rec, err)
		}
		// A subscription shows them too (through Prism, by itself).
		sub, err := c.Subscribe(ctx, ns)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := sub.Next(ctx)
		_ = sub.Stop()
		if err != nil || ch.KeyValue.GetPut() == nil || protoItems(ch.KeyValue.GetPut().GetItems())["phone"] != v.phone {
			t.Fatalf("%s: first change %+v, %v", ns, ch, err)
		}
	}

	// TimeSeries: a PII tag and payload, read back, found by the tag within
	// the series, followed.
	series := c.TimeSeries(tsNS)
	at := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	if _, err := series.Append(ctx, []byte("s1"), []client.Event{{Time: at, ID: []byte("e1"), Tags: map[string]string{"email": v.email, "region": "second"}, Payload: []byte(v.name)}}); err != nil {
		t.Fatal(err)
	}
	evs, _, err := series.Search(ctx, map[string]string{"email": v.email}, client.InSeries([]byte("s1")))
	if err != nil || len(evs) != 1 || evs[0].Tags["email"] != v.email || string(evs[0].Payload) != v.name {
		t.Fatalf("timeseries search by the PII tag = %+v, %v", evs, err)
	}
	sub, err := c.Subscribe(ctx, tsNS)
	if err != nil {
		t.Fatal(err)
	}
	ch, err := sub.Next(ctx)
	_ = sub.Stop()
	if err != nil || ch.TimeSeries == nil || ch.TimeSeries.GetEvents()[0].GetTags()["email"] != v.email || len(ch.TimeSeries.GetEvents()[0].GetTags()) != 2 {
		t.Fatalf("timeseries change %+v, %v", ch, err)
	}

	// A sealed event that cannot be applied goes to the dead letters as it
	// is stored: its ciphertext.
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	deadLetter(t, ctx, js, sqliteNS)

	// Compaction folds u1's two puts into one event of the sealed values
	// as they are: they still open.
	if _, err := c.KeyValue(sqliteNS).Put(ctx, []byte("u1"), []client.Item{item("nick", "again")}); err != nil {
		t.Fatal(err)
	}
	p.mustCLI(t, "compact", sqliteNS)
	if rec, err := c.KeyValue(sqliteNS).Get(ctx, []byte("u1")); err != nil || itemMap(rec.Items)["email"] != v.email || itemMap(rec.Items)["nick"] != "again" {
		t.Fatalf("u1 after compaction = %+v, %v", rec, err)
	}

	// Forget u3, then move the namespace to a new backend by replaying its
	// stream: the forgotten values are unreadable there too.
	if out := p.mustCLI(t, "forget", sqliteNS, "u3"); !strings.Contains(out, "u3") {
		t.Fatalf("prism forget: %s", out)
	}
	p.mustCLI(t, "migrate", "start", sqliteNS, "--to", "postgres")
	waitState(t, p, sqliteNS, namespaces.MigrationShadowing)
	if r := migrateVerify(t, p, sqliteNS); !r.Passed {
		t.Fatalf("verify of the PII namespace: %+v", r)
	}
	p.mustCLI(t, "migrate", "cutover", sqliteNS)
	waitReading(t, p, sqliteNS, "postgres")
	kv := c.KeyValue(sqliteNS)
	rec, err := kv.Get(ctx, []byte("u3"))
	if got := itemMap(rec.Items); err != nil || len(got) != 1 || got["nick"] != "third" {
		t.Fatalf("forgotten u3 read from the replayed backend = %v, %v; want only nick", got, err)
	}
	rec, err = kv.Get(ctx, []byte("u1"))
	if got := itemMap(rec.Items); err != nil || got["email"] != v.email || got["name"] != v.name {
		t.Fatalf("u1 read from the replayed backend = %v, %v", got, err)
	}
	p.stop()

	needles := v.needles()
	found := scanTree(t, dir, needles)
	found = append(found, scanPostgres(t, dsn, []string{sqliteNS, pgNS}, needles)...)
	found = append(found, findNeedles("the debug log", []byte(p.Output()), needles)...)
	for _, f := range found {
		t.Error(f)
	}
	// The scan could not pass by reading nothing: the non-PII values are
	// there, in the same files and rows.
	if len(scanTree(t, dir, []string{"second"})) == 0 || len(scanPostgres(t, dsn, []string{pgNS}, []string{"second"})) == 0 {
		t.Fatal("the non-PII value is nowhere in the stored bytes: the scan reads nothing")
	}
	for _, stream := range []string{"PRISM_AUDIT", subjects.DeadLetterStream, subjects.Stream(kvNS)} {
		if m, _ := filepath.Glob(filepath.Join(dir, "jetstream", "*", "*", "streams", stream, "msgs", "*.blk")); len(m) == 0 {
			t.Fatalf("no stored messages of stream %s under the data directory: the scan missed it", stream)
		}
	}
	if !strings.Contains(p.Output(), "level=DEBUG") {
		t.Fatal("the log holds no debug line: it was not at debug level")
	}
}

// deadLetter republishes u1's stored put of ns under a type that does not
// match its data, and waits for it in the dead letters.
func deadLetter(t *testing.T, ctx context.Context, js jetstream.JetStream, ns string) {
	t.Helper()
	st, err := js.Stream(ctx, subjects.Stream(ns))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := st.GetLastMsgForSubject(ctx, subjects.KeyValueEvent(ns, []byte("u1")))
	if err != nil {
		t.Fatal(err)
	}
	poison := nats.NewMsg(stored.Subject)
	poison.Header, poison.Data = stored.Header, stored.Data
	poison.Header.Set(subjects.HeaderType, subjects.TypeKeyValueDelete)
	poison.Header.Del(subjects.HeaderMsgID)
	if _, err := js.PublishMsg(ctx, poison); err != nil {
		t.Fatal(err)
	}
	dlq, err := js.Stream(ctx, subjects.DeadLetterStream)
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		m, err := dlq.GetLastMsgForSubject(ctx, subjects.DeadLetter(ns))
		if err == nil {
			if !bytes.Equal(m.Data, stored.Data) {
				t.Fatalf("dead letter of %s holds other data than the stored event", ns)
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no dead letter for %s: %v", ns, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// scanTree reads every file under dir and returns where it found needles.
func scanTree(t *testing.T, dir string, needles []string) []string {
	t.Helper()
	var found []string
	files := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		files++
		rel, _ := filepath.Rel(dir, path)
		found = append(found, findNeedles(rel, b, needles)...)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files == 0 {
		t.Fatalf("no file under %s", dir)
	}
	return found
}

// scanPostgres reads every row of every table of the namespaces' schemas
// as the server sends it, and returns where it found needles.
func scanPostgres(t *testing.T, dsn string, nss []string, needles []string) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var found []string
	for _, ns := range nss {
		rows, err := conn.Query(ctx, `SELECT table_schema, table_name FROM information_schema.tables WHERE table_schema LIKE '%' || $1 || '%'`, ns)
		if err != nil {
			t.Fatal(err)
		}
		var tables []pgx.Identifier
		for rows.Next() {
			var schema, table string
			if err := rows.Scan(&schema, &table); err != nil {
				t.Fatal(err)
			}
			tables = append(tables, pgx.Identifier{schema, table})
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		if len(tables) == 0 {
			t.Fatalf("no PostgreSQL table of namespace %s", ns)
		}
		for _, tbl := range tables {
			rows, err := conn.Query(ctx, `SELECT * FROM `+tbl.Sanitize())
			if err != nil {
				t.Fatal(err)
			}
			for rows.Next() {
				for _, raw := range rows.RawValues() {
					found = append(found, findNeedles(tbl.Sanitize(), raw, needles)...)
				}
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
		}
	}
	return found
}

func itemMap(items []client.Item) map[string]string {
	m := map[string]string{}
	for _, it := range items {
		m[string(it.Key)] = string(it.Value)
	}
	return m
}

func protoItems(items []*prismv1.Item) map[string]string {
	m := map[string]string{}
	for _, it := range items {
		m[string(it.GetKey())] = string(it.GetValue())
	}
	return m
}

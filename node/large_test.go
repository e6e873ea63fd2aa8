package node_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/backends/postgres/pgtest"
	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
	"github.com/prism-data/prism/pii"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/subjects"
)

// largeValue returns n pseudo-random bytes (incompressible, so nothing
// can pass by accident through a shortcut).
func largeValue(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := range 8 {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// largeNode serves one keyvalue namespace on backend and returns its node
// and a handle.
func largeNode(t *testing.T, name, backend string) (*node.Node, *namespaces.AdminClient, *client.KeyValue) {
	t.Helper()
	st, admin, cl := nodetest.Start(t, node.Config{})
	res, err := admin.Apply(context.Background(), namespaces.Namespace{Name: name, Abstraction: namespaces.AbstractionKeyValue, Backend: backend}, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, name, res.Revision)
	return st, admin, cl.KeyValue(name, client.ReadYourWrites())
}

// bigSize is the size of the large values the tests write: 20 MiB, 4 MiB
// under the race detector (raceDetector).
func bigSize() int {
	if raceDetector {
		return 4 << 20
	}
	return 20 << 20
}

// TestLargeValueSQLite writes a 20 MiB value beside a small one through
// the Go client, which uploads it in parts, and reads both back byte for
// byte from SQLite.
func TestLargeValueSQLite(t *testing.T) {
	_, _, kv := largeNode(t, "large", "sqlite")
	ctx := context.Background()
	big := largeValue(bigSize(), 1)
	seq, err := kv.Put(ctx, []byte("doc"), []client.Item{{Key: []byte("body"), Value: big}, {Key: []byte("name"), Value: []byte("report.pdf")}})
	if err != nil {
		t.Fatal(err)
	}
	rec, err := kv.Get(ctx, []byte("doc"))
	if err != nil {
		t.Fatal(err)
	}
	if rec.Revision != seq || len(rec.Items) != 2 {
		t.Fatalf("get = revision %d, %d items; want revision %d, 2 items", rec.Revision, len(rec.Items), seq)
	}
	if !bytes.Equal(rec.Items[0].Value, big) {
		t.Fatalf("body: got %d bytes, not the %d written", len(rec.Items[0].Value), len(big))
	}
	if string(rec.Items[1].Value) != "report.pdf" {
		t.Fatalf("name = %q", rec.Items[1].Value)
	}
}

// getBody reads item "body" of record id and checks it is want, byte for
// byte.
func getBody(t *testing.T, what string, kv *client.KeyValue, id string, want []byte) {
	t.Helper()
	rec, err := kv.Get(context.Background(), []byte(id), client.Keys([]byte("body")))
	if err != nil {
		t.Fatalf("%s: get %s: %v", what, id, err)
	}
	if len(rec.Items) != 1 || !bytes.Equal(rec.Items[0].Value, want) {
		t.Fatalf("%s: get %s = %d items (first %d bytes); want the %d bytes written", what, id, len(rec.Items), len(rec.Items[0].Value), len(want))
	}
}

// TestLargeValueCompactMigrate overwrites a large value with a 20 MiB one, compacts the
// stream (the rollup carries the reference, not the value), and migrates
// the namespace from SQLite to PostgreSQL: the backfill replays the
// compacted stream into the new backend, verify passes, and after the
// cutover PostgreSQL returns the latest value byte for byte.
func TestLargeValueCompactMigrate(t *testing.T) {
	ctx := context.Background()
	dsn := pgtest.DSN(t)
	name := pgtest.Namespace(t, "large")
	st, admin, c := nodetest.Start(t, node.Config{PostgresDSN: dsn})
	res, err := admin.Apply(ctx, namespaces.Namespace{Name: name, Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Consistency: namespaces.Strong}, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, name, res.Revision)
	kv := c.KeyValue(name)
	first, latest := largeValue(1<<20, 2), largeValue(bigSize(), 3)
	// Without tokens: compaction leaves a record whose last write has one
	// alone for the duplicate window.
	noToken := client.IdempotencyToken("")
	for _, v := range [][]byte{first, latest} {
		if _, err := kv.Put(ctx, []byte("doc"), []client.Item{{Key: []byte("body"), Value: v}}, noToken); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := kv.Put(ctx, []byte("small"), []client.Item{{Key: []byte("body"), Value: []byte("tiny")}}, noToken); err != nil {
		t.Fatal(err)
	}
	stats, err := replay.Compact(ctx, st.JetStream(), name)
	if err != nil || stats.RolledUp != 1 {
		t.Fatalf("compact = %+v, %v; want the large record rolled up", stats, err)
	}
	getBody(t, "sqlite after compaction", kv, "doc", latest)

	if _, err := admin.StartMigration(ctx, name, namespaces.Target{Backend: "postgres"}, namespaces.MigrationOptions{}, "test"); err != nil {
		t.Fatal(err)
	}
	waitMigration(t, admin, name, namespaces.MigrationShadowing)
	if rep := verifyNow(t, admin, name); !rep.Report.Passed() || rep.Report.Compared != 2 {
		t.Fatalf("verify: %+v", rep)
	}
	if _, err := admin.Migrate(ctx, namespaces.AdminMigrateCutover, name, "test"); err != nil {
		t.Fatal(err)
	}
	waitRoles(t, admin, name, map[string]string{"sqlite": "shadow", "postgres": "primary"})
	getBody(t, "postgres", kv, "doc", latest)
	getBody(t, "postgres", kv, "small", []byte("tiny"))
}

// rawCall sends req in binary protobuf on conn and decodes the reply into
// resp; it returns the error code of an error reply ("" for none).
func rawCall(t *testing.T, conn *nats.Conn, subject string, req, resp proto.Message) string {
	t.Helper()
	data, err := proto.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(subjects.HeaderContentTypeReq, subjects.ContentTypeProto)
	reply, err := conn.RequestMsg(msg, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if code := reply.Header.Get(subjects.HeaderErrorCode); code != "" {
		return code
	}
	if err := proto.Unmarshal(reply.Data, resp); err != nil {
		t.Fatal(err)
	}
	return ""
}

// TestLargeValueCrashedUpload: an upload abandoned after 3 of its 40
// parts (the client crashed) changes nothing a reader sees, a put naming
// it is refused, and CollectBlobs purges its parts while keeping those of
// a value a put references, which still reads back whole.
func TestLargeValueCrashedUpload(t *testing.T) {
	ctx := context.Background()
	st, _, kv := largeNode(t, "crash", "sqlite")
	_, conn := nodetest.Client(t, st.URL())
	if _, err := kv.Put(ctx, []byte("doc"), []client.Item{{Key: []byte("body"), Value: []byte("v0")}}); err != nil {
		t.Fatal(err)
	}
	kept := largeValue(2<<20, 4)
	if _, err := kv.Put(ctx, []byte("other"), []client.Item{{Key: []byte("body"), Value: kept}}); err != nil {
		t.Fatal(err)
	}

	big := largeValue(bigSize(), 5)
	var up prismv1.UploadResponse
	if code := rawCall(t, conn, subjects.Write("crash", "upload"), &prismv1.UploadRequest{Id: []byte("doc"), Key: []byte("body"), Size: uint64(len(big))}, &up); code != "" {
		t.Fatalf("upload: %s", code)
	}
	part := int(up.GetMaxPartBytes())
	for i := range 3 {
		var pr prismv1.UploadPartResponse
		req := &prismv1.UploadPartRequest{UploadId: up.GetUploadId(), Id: []byte("doc"), Key: []byte("body"), Index: uint32(i), Data: big[i*part : (i+1)*part]}
		if code := rawCall(t, conn, subjects.Write("crash", "part"), req, &pr); code != "" {
			t.Fatalf("part %d: %s", i, code)
		}
	}
	// The client is gone. The record is as it was.
	getBody(t, "after the abandoned upload", kv, "doc", []byte("v0"))
	// A put naming the incomplete upload is refused; nothing is written.
	sum := sha256.Sum256(big)
	put := &prismv1.PutRequest{Id: []byte("doc"), Items: []*prismv1.Item{{Key: []byte("body"), Chunked: &prismv1.ChunkedValue{UploadId: up.GetUploadId(), Size: uint64(len(big)), Sha256: sum[:]}}}}
	var wr prismv1.WriteResponse
	if code := rawCall(t, conn, subjects.Write("crash", "put"), put, &wr); code != prismv1.Code_INVALID_ARGUMENT.String() {
		t.Fatalf("put of an incomplete upload: %q, %v; want INVALID_ARGUMENT", code, &wr)
	}
	getBody(t, "after the refused put", kv, "doc", []byte("v0"))

	blobs := subjects.BlobStream("crash")
	stats, err := replay.CollectBlobs(ctx, st.JetStream(), "crash", time.Nanosecond)
	if err != nil {
		t.Fatal(err)
	}
	if stats.Blobs != 2 || stats.Referenced != 1 || stats.Purged != 1 || stats.MessagesRemoved != 3 {
		t.Fatalf("collect = %+v; want the abandoned upload (3 parts) purged, the referenced one kept", stats)
	}
	s, err := st.JetStream().Stream(ctx, blobs)
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(ctx); err != nil || info.State.Msgs != 4 {
		t.Fatalf("blob stream after collection: %v, %v; want the 4 parts of the kept value", info, err)
	}
	getBody(t, "kept value after collection", kv, "other", kept)
}

// TestLargeValuePII: a 3 MiB value of a PII field is sealed before any
// part is stored: no part on the blob stream and no byte of the SQLite
// file holds a plaintext run of it, and a reader with read_pii gets it
// back whole.
func TestLargeValuePII(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, admin, c := nodetest.Start(t, node.Config{DataDir: dir})
	ns := namespaces.Namespace{
		Name: "people", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Consistency: namespaces.Strong,
		Fields: namespaces.NewNames("scan"),
		PII:    namespaces.NewPIIFields(namespaces.PIIField{Name: "scan", Kind: pii.KindGeneric}),
	}
	res, err := admin.Apply(ctx, ns, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, ns.Name, res.Revision)
	kv := c.KeyValue(ns.Name)
	secret := largeValue(3<<20, 6)
	if _, err := kv.Put(ctx, []byte("u1"), []client.Item{{Key: []byte("scan"), Value: secret}}); err != nil {
		t.Fatal(err)
	}
	rec, err := kv.Get(ctx, []byte("u1"))
	if err != nil || len(rec.Items) != 1 || !bytes.Equal(rec.Items[0].Value, secret) {
		t.Fatalf("get = %v; want the %d bytes written", err, len(secret))
	}
	// Runs of 32 bytes from across the value: none may be stored.
	var runs [][]byte
	for off := 0; off+32 <= len(secret); off += 256 << 10 {
		runs = append(runs, secret[off:off+32])
	}
	s, err := st.JetStream().Stream(ctx, subjects.BlobStream(ns.Name))
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil || info.State.Msgs == 0 {
		t.Fatalf("blob stream: %v, %v", info, err)
	}
	for seq := info.State.FirstSeq; seq <= info.State.LastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			if bytes.Contains(m.Data, r) {
				t.Fatalf("blob part at seq %d holds plaintext of the PII value", seq)
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(dir, "sqlite", ns.Name+"*"))
	if len(files) == 0 {
		t.Fatal("no SQLite file of the namespace")
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range runs {
			if bytes.Contains(b, r) {
				t.Fatalf("%s holds plaintext of the PII value", f)
			}
		}
	}
}

// TestLargeValueRefusedOnNATSKV: a natskv namespace, whose values are
// bounded by the NATS max_payload, refuses a large value up front with
// INVALID_ARGUMENT; nothing is stored.
func TestLargeValueRefusedOnNATSKV(t *testing.T) {
	_, _, kv := largeNode(t, "onkv", "natskv")
	_, err := kv.Put(context.Background(), []byte("doc"), []client.Item{{Key: []byte("body"), Value: largeValue(1<<20, 7)}})
	if !errors.Is(err, client.ErrInvalidArgument) || !strings.Contains(err.Error(), "natskv") {
		t.Fatalf("large put on natskv = %v; want INVALID_ARGUMENT naming natskv", err)
	}
	if _, err := kv.Get(context.Background(), []byte("doc")); !errors.Is(err, client.ErrNotFound) {
		t.Fatalf("get after the refused put = %v; want NOT_FOUND", err)
	}
}

// BenchmarkLargeValue20MiB puts and gets one 20 MiB value through the Go
// client, gateway, blob stream, projector and SQLite of one node (strong
// consistency: the put returns once SQLite holds it).
//
//	go test ./node/ -run '^$' -bench LargeValue -benchtime 5x
func BenchmarkLargeValue20MiB(b *testing.B) {
	st, admin, cl := nodetest.Start(b, node.Config{})
	ctx := context.Background()
	res, err := admin.Apply(ctx, namespaces.Namespace{Name: "bench", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite", Consistency: namespaces.Strong}, 0, "test")
	if err != nil {
		b.Fatal(err)
	}
	nodetest.WaitServing(b, admin, "bench", res.Revision)
	_ = st
	kv := cl.KeyValue("bench")
	v := largeValue(20<<20, 8)
	b.SetBytes(int64(len(v)))
	b.ResetTimer()
	for b.Loop() {
		if _, err := kv.Put(ctx, []byte("doc"), []client.Item{{Key: []byte("body"), Value: v}}); err != nil {
			b.Fatal(err)
		}
		if _, err := kv.Get(ctx, []byte("doc")); err != nil {
			b.Fatal(err)
		}
	}
}

// TestLargeValueReadProtocol is the read side a JSON client sees: a get
// answers a large item with its size and SHA-256, slices of it are read
// at the get's revision, and once the record is written again a slice at
// the old revision is CONFLICT, so no value is assembled from two writes.
func TestLargeValueReadProtocol(t *testing.T) {
	ctx := context.Background()
	st, _, kv := largeNode(t, "reads", "sqlite")
	_, conn := nodetest.Client(t, st.URL())
	v1, v2 := largeValue(1<<20, 9), largeValue(1<<20, 10)
	seq, err := kv.Put(ctx, []byte("doc"), []client.Item{{Key: []byte("body"), Value: v1}})
	if err != nil {
		t.Fatal(err)
	}
	var got prismv1.GetResponse
	if code := rawCall(t, conn, subjects.Read("reads", "get"), &prismv1.GetRequest{Id: []byte("doc"), MinSeq: seq}, &got); code != "" {
		t.Fatal(code)
	}
	sum := sha256.Sum256(v1)
	if len(got.GetItems()) != 1 || got.GetItems()[0].GetValue() != nil || got.GetItems()[0].GetChunked().GetSize() != 1<<20 || !bytes.Equal(got.GetItems()[0].GetChunked().GetSha256(), sum[:]) {
		t.Fatalf("get = %v; want the item as size and sha256 without value", &got)
	}
	var assembled []byte
	for len(assembled) < len(v1) {
		var slice prismv1.GetValueResponse
		req := &prismv1.GetValueRequest{Id: []byte("doc"), Key: []byte("body"), Revision: got.GetRevision(), Offset: uint64(len(assembled))}
		if code := rawCall(t, conn, subjects.Read("reads", "value"), req, &slice); code != "" {
			t.Fatal(code)
		}
		if len(slice.GetData()) == 0 || len(slice.GetData()) > 512<<10 {
			t.Fatalf("slice of %d bytes", len(slice.GetData()))
		}
		assembled = append(assembled, slice.GetData()...)
	}
	if !bytes.Equal(assembled, v1) {
		t.Fatal("the slices do not make the value written")
	}
	var slice prismv1.GetValueResponse
	past := &prismv1.GetValueRequest{Id: []byte("doc"), Key: []byte("body"), Revision: got.GetRevision(), Offset: 2 << 20}
	if code := rawCall(t, conn, subjects.Read("reads", "value"), past, &slice); code != prismv1.Code_INVALID_ARGUMENT.String() {
		t.Fatalf("offset past the end: %q", code)
	}
	seq2, err := kv.Put(ctx, []byte("doc"), []client.Item{{Key: []byte("body"), Value: v2}})
	if err != nil {
		t.Fatal(err)
	}
	stale := &prismv1.GetValueRequest{Id: []byte("doc"), Key: []byte("body"), Revision: got.GetRevision(), MinSeq: seq2}
	if code := rawCall(t, conn, subjects.Read("reads", "value"), stale, &slice); code != prismv1.Code_CONFLICT.String() {
		t.Fatalf("slice at the old revision after a write: %q; want CONFLICT", code)
	}
	getBody(t, "after the second write", kv, "doc", v2)
}

// TestLargeValueLimit: Config.MaxValueBytes lowers the largest value; a
// larger one is INVALID_ARGUMENT naming the limit, before any part is
// stored.
func TestLargeValueLimit(t *testing.T) {
	ctx := context.Background()
	st, admin, cl := nodetest.Start(t, node.Config{MaxValueBytes: 1 << 20})
	res, err := admin.Apply(ctx, namespaces.Namespace{Name: "capped", Abstraction: namespaces.AbstractionKeyValue, Backend: "sqlite"}, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, "capped", res.Revision)
	kv := cl.KeyValue("capped")
	if _, err := kv.Put(ctx, []byte("doc"), []client.Item{{Key: []byte("body"), Value: largeValue(1<<20+8, 11)}}); !errors.Is(err, client.ErrInvalidArgument) || !strings.Contains(err.Error(), "the limit is 1048576") {
		t.Fatalf("put above the limit = %v; want INVALID_ARGUMENT naming 1048576", err)
	}
	s, err := st.JetStream().Stream(ctx, subjects.BlobStream("capped"))
	if err != nil {
		t.Fatal(err)
	}
	if info, err := s.Info(ctx); err != nil || info.State.Msgs != 0 {
		t.Fatalf("blob stream after the refused put: %v, %v; want empty", info, err)
	}
	if _, err := kv.Put(ctx, []byte("doc"), []client.Item{{Key: []byte("body"), Value: largeValue(1<<20, 12)}}); err != nil {
		t.Fatalf("put at the limit: %v", err)
	}
}

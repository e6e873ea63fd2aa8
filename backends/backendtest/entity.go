package backendtest

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// FeatureEntity is the Entity abstraction: EntityBackend.
const FeatureEntity Feature = "entity"

// EntityBackend is the contract of an Entity projection target (the Entity
// methods of sqlite.Store, plus Checkpoint and Close). Its methods are
// safe for concurrent use.
//
// ApplyEntity applies puts and deletes in order and sets the checkpoint to
// through in one atomic transaction; changes at or below the stored
// checkpoint are skipped, a call with through at or below it changes
// nothing. A put replaces the record of its id (record bytes, revision =
// the change's seq) and all its index entries; a delete removes both. An
// invalid change fails the batch with Errors.InvalidChange before anything
// is written. One checkpoint serves every abstraction of a backend.
//
// GetEntity returns the record of an id, nil when there is none.
// ScanEntities returns one page of the records whose key in one index is in
// [From, To) (empty To: unbounded), ordered by (key bytes, id bytes),
// descending if asked, PageSize as for KeyValue reads, a page token it did
// not make refused with Errors.InvalidPageToken.
type EntityBackend interface {
	Checkpoint(ctx context.Context) (uint64, error)
	ApplyEntity(ctx context.Context, changes []*prismv1.EntityChange, through uint64) error
	GetEntity(ctx context.Context, id []byte) (*prismv1.EntityRecord, error)
	ScanEntities(ctx context.Context, req *prismv1.EntityScanRequest) (*prismv1.EntityScanResponse, error)
	Close() error
}

func init() {
	known = append(known, feature{
		name:       FeatureEntity,
		implements: func(b any) bool { _, ok := b.(EntityBackend); return ok },
		check:      checkEntityConfig,
		run:        runEntity,
	})
}

func checkEntityConfig(t testing.TB, cfg Config) {
	t.Helper()
	if cfg.Errors.InvalidChange == nil || cfg.Errors.InvalidPageToken == nil || cfg.Errors.InvalidBatch == nil {
		t.Fatal("backendtest: feature entity needs Errors.InvalidChange, InvalidPageToken and InvalidBatch")
	}
}

// u64 is an index key of an unsigned number: 8 big-endian bytes.
func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func enPut(seq uint64, id string, record string, ix ...*prismv1.IndexEntry) *prismv1.EntityChange {
	return &prismv1.EntityChange{Seq: seq, Event: &prismv1.EntityEvent{Id: []byte(id), Record: []byte(record), Indexes: ix}}
}

func enDel(seq uint64, id string) *prismv1.EntityChange {
	return &prismv1.EntityChange{Seq: seq, Event: &prismv1.EntityEvent{Id: []byte(id), Delete: true}}
}

func entry(index string, key []byte) *prismv1.IndexEntry {
	return &prismv1.IndexEntry{Index: index, Key: key}
}

func enBackend(t testing.TB, cfg Config) EntityBackend {
	t.Helper()
	return open(t, cfg, newClock(t0).Now).(EntityBackend)
}

func enApply(t testing.TB, b EntityBackend, through uint64, changes ...*prismv1.EntityChange) {
	t.Helper()
	if err := b.ApplyEntity(context.Background(), changes, through); err != nil {
		t.Fatalf("ApplyEntity(through %d): %v", through, err)
	}
}

// enGet returns "record@rev" of id, or "" when there is none.
func enGet(t testing.TB, b EntityBackend, id string) string {
	t.Helper()
	rec, err := b.GetEntity(context.Background(), []byte(id))
	if err != nil {
		t.Fatalf("GetEntity(%s): %v", id, err)
	}
	if rec == nil {
		return ""
	}
	if string(rec.GetId()) != id {
		t.Errorf("GetEntity(%s) returned id %q", id, rec.GetId())
	}
	return fmt.Sprintf("%s@%d", rec.GetRecord(), rec.GetRevision())
}

// enScanAll follows the pages of req and returns the ids in order and the
// number of pages.
func enScanAll(t testing.TB, b EntityBackend, req *prismv1.EntityScanRequest) ([]string, int) {
	t.Helper()
	var ids []string
	for pages := 1; ; pages++ {
		resp, err := b.ScanEntities(context.Background(), req)
		if err != nil {
			t.Fatalf("ScanEntities: %v", err)
		}
		for _, r := range resp.GetRecords() {
			ids = append(ids, string(r.GetId()))
		}
		if resp.GetNextPageToken() == "" {
			return ids, pages
		}
		if size := effectivePageSize(req.GetPageSize()); len(resp.GetRecords()) != size {
			t.Fatalf("page %d has %d records, not the page size %d, but a next page", pages, len(resp.GetRecords()), size)
		}
		req = &prismv1.EntityScanRequest{Index: req.GetIndex(), From: req.GetFrom(), To: req.GetTo(), Descending: req.GetDescending(), PageSize: req.GetPageSize(), PageToken: resp.GetNextPageToken()}
		if pages > 1000 {
			t.Fatal("more than 1000 pages")
		}
	}
}

func runEntity(t *testing.T, cfg Config) {
	ctx := context.Background()
	t.Run("put get replace delete", func(t *testing.T) {
		b := enBackend(t, cfg)
		enApply(t, b, 2, enPut(1, "u1", "v1", entry("age", u64(30))), enPut(2, "u2", "w1"))
		if got := enGet(t, b, "u1"); got != "v1@1" {
			t.Errorf("u1 = %q, want v1@1", got)
		}
		enApply(t, b, 4, enPut(3, "u1", "v2", entry("age", u64(31))), enDel(4, "u2"))
		if got := enGet(t, b, "u1"); got != "v2@3" {
			t.Errorf("u1 after replace = %q, want v2@3", got)
		}
		if got := enGet(t, b, "u2"); got != "" {
			t.Errorf("u2 after delete = %q, want none", got)
		}
		if got := enGet(t, b, "nobody"); got != "" {
			t.Errorf("missing record = %q, want none", got)
		}
		ids, _ := enScanAll(t, b, &prismv1.EntityScanRequest{Index: "age", From: u64(30), To: u64(31)})
		if len(ids) != 0 {
			t.Errorf("the replaced index entry 30 still finds %v", ids)
		}
		ids, _ = enScanAll(t, b, &prismv1.EntityScanRequest{Index: "age", From: u64(31), To: u64(32)})
		if !slices.Equal(ids, []string{"u1"}) {
			t.Errorf("index 31 finds %v, want [u1]", ids)
		}
		if cp, err := b.Checkpoint(ctx); err != nil || cp != 4 {
			t.Errorf("Checkpoint = %d, %v; want 4", cp, err)
		}
	})
	t.Run("one batch, several changes of a record", func(t *testing.T) {
		b := enBackend(t, cfg)
		enApply(t, b, 6,
			enPut(1, "a", "a1", entry("n", u64(1))), enDel(2, "a"), enPut(3, "a", "a3", entry("n", u64(3))),
			enPut(4, "b", "b4", entry("n", u64(4))), enPut(5, "c", "c5"), enDel(6, "b"))
		for id, want := range map[string]string{"a": "a3@3", "b": "", "c": "c5@5"} {
			if got := enGet(t, b, id); got != want {
				t.Errorf("%s = %q, want %q", id, got, want)
			}
		}
		if ids, _ := enScanAll(t, b, &prismv1.EntityScanRequest{Index: "n"}); !slices.Equal(ids, []string{"a"}) {
			t.Errorf("index n finds %v, want [a] (the entries of a1 and b4 are gone)", ids)
		}
	})
	t.Run("lineage", func(t *testing.T) {
		b := enBackend(t, cfg)
		put := enPut(1, "u1", "v1", entry("age", u64(30)))
		put.Lineage = &prismv1.EntityLineage{EventId: "ev-1", Seq: 1, Time: timestamppb.New(t0), Principal: "writer"}
		enApply(t, b, 2, put, enPut(2, "u2", "w1"))
		rec, err := b.GetEntity(ctx, []byte("u1"))
		if err != nil || !proto.Equal(rec.GetLineage(), put.Lineage) {
			t.Errorf("GetEntity lineage = %v, %v; want %v", rec.GetLineage(), err, put.Lineage)
		}
		if rec, err := b.GetEntity(ctx, []byte("u2")); err != nil || rec.GetLineage() != nil {
			t.Errorf("a put without lineage reads back %v, %v", rec.GetLineage(), err)
		}
		resp, err := b.ScanEntities(ctx, &prismv1.EntityScanRequest{Index: "age"})
		if err != nil || len(resp.GetRecords()) != 1 || !proto.Equal(resp.GetRecords()[0].GetLineage(), put.Lineage) {
			t.Errorf("ScanEntities = %v, %v; want u1 with its lineage", resp, err)
		}
	})
	t.Run("redelivery is skipped", func(t *testing.T) {
		b := enBackend(t, cfg)
		enApply(t, b, 2, enPut(1, "u1", "v1"), enPut(2, "u1", "v2"))
		enApply(t, b, 3, enPut(1, "u1", "old"), enPut(2, "u1", "old"), enPut(3, "u2", "x"))
		if got := enGet(t, b, "u1"); got != "v2@2" {
			t.Errorf("u1 = %q after a redelivered batch, want v2@2", got)
		}
		enApply(t, b, 3, enDel(3, "u2"))
		if got := enGet(t, b, "u2"); got != "x@3" {
			t.Errorf("a batch at the checkpoint changed u2: %q", got)
		}
	})
	t.Run("invalid change writes nothing", func(t *testing.T) {
		b := enBackend(t, cfg)
		for _, c := range []*prismv1.EntityChange{
			{Seq: 2, Event: &prismv1.EntityEvent{Record: []byte("no id")}},
			{Seq: 2, Event: &prismv1.EntityEvent{Id: []byte("u")}},
			{Seq: 2, Event: &prismv1.EntityEvent{Id: []byte("u"), Delete: true, Record: []byte("x")}},
			{Seq: 2, Event: &prismv1.EntityEvent{Id: []byte("u"), Record: []byte("x"), Indexes: []*prismv1.IndexEntry{{Key: []byte("k")}}}},
		} {
			err := b.ApplyEntity(ctx, []*prismv1.EntityChange{enPut(1, "ok", "v"), c}, 2)
			if !errors.Is(err, cfg.Errors.InvalidChange) {
				t.Errorf("ApplyEntity(%v) = %v, want InvalidChange", c, err)
			}
		}
		if got := enGet(t, b, "ok"); got != "" {
			t.Errorf("a refused batch stored %q", got)
		}
		err := b.ApplyEntity(ctx, []*prismv1.EntityChange{enPut(3, "a", "v")}, 2)
		if !errors.Is(err, cfg.Errors.InvalidBatch) {
			t.Errorf("seq above through: %v, want InvalidBatch", err)
		}
	})
	t.Run("scan order and pages", func(t *testing.T) { runEntityScan(t, cfg) })
	if cfg.FailCheckpointWrites != nil {
		t.Run("atomic with the checkpoint", func(t *testing.T) {
			b := enBackend(t, cfg)
			restore := cfg.FailCheckpointWrites(t, b)
			if err := b.ApplyEntity(ctx, []*prismv1.EntityChange{enPut(1, "u1", "v", entry("age", u64(1)))}, 1); err == nil {
				t.Fatal("ApplyEntity succeeded though the checkpoint write fails")
			}
			restore()
			if got := enGet(t, b, "u1"); got != "" {
				t.Errorf("the failed batch stored %q", got)
			}
			if ids, _ := enScanAll(t, b, &prismv1.EntityScanRequest{Index: "age"}); len(ids) != 0 {
				t.Errorf("the failed batch indexed %v", ids)
			}
		})
	}
}

// runEntityScan fills one index with ties (several records per key) and
// checks every range, both orders and several page sizes against the
// order the contract states.
func runEntityScan(t *testing.T, cfg Config) {
	b := enBackend(t, cfg)
	type rec struct {
		id  string
		key []byte
	}
	var recs []rec
	var changes []*prismv1.EntityChange
	for i := 0; i < 25; i++ {
		r := rec{id: fmt.Sprintf("id-%02d", (i*7)%25), key: u64(uint64(i % 10))}
		recs = append(recs, r)
		changes = append(changes, enPut(uint64(i+1), r.id, "r", entry("n", r.key), entry("other", []byte("x"))))
	}
	enApply(t, b, uint64(len(changes)), changes...)
	want := func(from, to []byte, desc bool) []string {
		var in []rec
		for _, r := range recs {
			if bytes.Compare(r.key, from) >= 0 && (len(to) == 0 || bytes.Compare(r.key, to) < 0) {
				in = append(in, r)
			}
		}
		slices.SortFunc(in, func(a, b rec) int {
			if c := bytes.Compare(a.key, b.key); c != 0 {
				return c
			}
			return bytes.Compare([]byte(a.id), []byte(b.id))
		})
		ids := make([]string, len(in))
		for i, r := range in {
			ids[i] = r.id
		}
		if desc {
			slices.Reverse(ids)
		}
		return ids
	}
	for _, c := range []struct {
		name     string
		from, to []byte
	}{
		{"all", nil, nil},
		{"from", u64(3), nil},
		{"to", nil, u64(4)},
		{"range", u64(2), u64(7)},
		{"equal", u64(5), append(u64(5), 0)},
		{"empty", u64(20), u64(30)},
	} {
		for _, desc := range []bool{false, true} {
			for _, size := range []uint32{0, 1, 3, 25} {
				req := &prismv1.EntityScanRequest{Index: "n", From: c.from, To: c.to, Descending: desc, PageSize: size}
				got, pages := enScanAll(t, b, req)
				w := want(c.from, c.to, desc)
				if !slices.Equal(got, w) {
					t.Errorf("%s desc=%v size=%d: %v, want %v", c.name, desc, size, got, w)
				}
				if n := effectivePageSize(size); len(w) > 0 && pages != (len(w)+n-1)/n && pages != (len(w)+n-1)/n+1 {
					t.Errorf("%s desc=%v size=%d: %d pages for %d records", c.name, desc, size, pages, len(w))
				}
			}
		}
	}
	if ids, _ := enScanAll(t, b, &prismv1.EntityScanRequest{Index: "missing"}); len(ids) != 0 {
		t.Errorf("an unknown index finds %v", ids)
	}
	_, err := b.ScanEntities(context.Background(), &prismv1.EntityScanRequest{Index: "n", PageToken: "not a token!"})
	if !errors.Is(err, cfg.Errors.InvalidPageToken) {
		t.Errorf("bad page token: %v, want InvalidPageToken", err)
	}
}

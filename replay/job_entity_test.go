package replay_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/postgres/pgtest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/subjects"
)

// An entity namespace's stream replays into PostgreSQL (the migration by
// replay of a SQLite namespace): the same records, revisions, lineage and
// index order as the SQLite projection of the same stream, and the
// unique-index claims on the stream are skipped.
func TestJobReplaysAnEntityNamespaceIntoPostgres(t *testing.T) {
	dsn := pgtest.DSN(t)
	ctx := context.Background()
	js := startJetStream(t)
	ns := namespace(t, js, pgtest.Namespace(t, "en-replay-"))
	key := func(n int) []byte { return binary.BigEndian.AppendUint64(nil, uint64(n)^1<<63) }
	var last uint64
	for i := range 60 {
		id := []byte(fmt.Sprintf("u%02d", i%25))
		ev := &prismv1.EntityEvent{Id: id, Record: []byte(fmt.Sprint("v", i)), Indexes: []*prismv1.IndexEntry{{Index: "n", Key: key(i % 7)}}}
		if i%9 == 8 {
			ev = &prismv1.EntityEvent{Id: id, Delete: true}
		}
		meta := subjects.EventMeta{Namespace: ns, Principal: "writer"}
		if i%5 == 0 {
			claim, err := subjects.NewEntityClaim(meta, &prismv1.EntityClaim{Index: "n", Key: key(i % 7), Owner: id})
			if err != nil {
				t.Fatal(err)
			}
			publishMsg(t, js, claim)
		}
		msg, err := subjects.NewEntityEvent(meta, ev)
		if err != nil {
			t.Fatal(err)
		}
		last = publishMsg(t, js, msg)
	}
	run := func(target string, storage replay.Target) replay.Store {
		t.Helper()
		return replayInto(t, js, ns, subjects.AbstractionEntity, target, storage, last)
	}
	schema, err := replay.PostgresTargetSchema(ns, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = postgres.DropSchema(context.Background(), dsn, ns, postgres.WithSchema(schema)) })
	lite := run("sqlite", replay.SQLiteTarget{Path: t.TempDir() + "/en.db"})
	pg := run("postgres", replay.PostgresTarget{DSN: dsn, Namespace: ns, Schema: schema})

	type reader interface {
		GetEntity(ctx context.Context, id []byte) (*prismv1.EntityRecord, error)
		ScanEntities(ctx context.Context, req *prismv1.EntityScanRequest) (*prismv1.EntityScanResponse, error)
	}
	dump := func(st replay.Store) string {
		r := st.(reader)
		out := ""
		for i := range 25 {
			rec, err := r.GetEntity(ctx, []byte(fmt.Sprintf("u%02d", i)))
			if err != nil {
				t.Fatal(err)
			}
			if rec != nil && (rec.GetLineage().GetPrincipal() != "writer" || rec.GetLineage().GetSeq() != rec.GetRevision()) {
				t.Errorf("u%02d lineage %v, revision %d", i, rec.GetLineage(), rec.GetRevision())
			}
			out += fmt.Sprintf("%s=%s@%d ", rec.GetId(), rec.GetRecord(), rec.GetRevision())
		}
		page, err := r.ScanEntities(ctx, &prismv1.EntityScanRequest{Index: "n", Descending: true, PageSize: 1000})
		if err != nil {
			t.Fatal(err)
		}
		for _, rec := range page.GetRecords() {
			out += string(rec.GetId()) + ","
		}
		return out
	}
	a, b := dump(lite), dump(pg)
	if a != b {
		t.Errorf("sqlite and postgres differ:\n%s\n%s", a, b)
	}
	if rec, _ := lite.(reader).GetEntity(ctx, []byte("u03")); rec != nil {
		t.Errorf("u03 was deleted last (event 53), yet it reads %v", rec)
	}
	if rec, _ := pg.(reader).GetEntity(ctx, []byte("u09")); rec == nil || !proto.Equal(&prismv1.EntityRecord{Id: rec.Id, Record: []byte("v59"), Revision: rec.Revision, Lineage: rec.Lineage}, rec) {
		t.Errorf("u09 = %v, want v59", rec)
	}
	// Verify compares the records with their lineage and index entries:
	// the two targets match, and a row changed behind the projector's
	// back in the target is reported.
	verify := func() replay.Report {
		t.Helper()
		rep, err := replay.Verify(ctx, replay.EntityVerifySource(lite.(replay.EntitySource)), replay.EntityVerifySource(pg.(replay.EntitySource)), replay.WithRangeSize(4), replay.WithPageSize(7))
		if err != nil {
			t.Fatal(err)
		}
		return rep
	}
	if rep := verify(); !rep.Passed() || rep.Compared != 22 || rep.OldRecords != 22 || rep.NewRecords != 22 {
		t.Fatalf("verify of the replayed target = %+v, want 22 records that all match", rep)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	tamper := func(q string) {
		t.Helper()
		if _, err := conn.Exec(ctx, strings.ReplaceAll(q, "{s}", pgx.Identifier{schema}.Sanitize())); err != nil {
			t.Fatal(err)
		}
	}
	tamper(`UPDATE {s}.en_index SET key = '\x01'::bytea WHERE id = 'u09'::bytea`)
	tamper(`UPDATE {s}.en_records SET record = 'v0'::bytea WHERE id = 'u11'::bytea`)
	tamper(`DELETE FROM {s}.en_index WHERE id = 'u12'::bytea`)
	tamper(`DELETE FROM {s}.en_records WHERE id = 'u13'::bytea`)
	rep := verify()
	if rep.Passed() || rep.Differing != 3 || rep.Missing != 1 || strings.Join(rep.DifferingIDs, ",") != "u09,u11,u12" || strings.Join(rep.MissingIDs, ",") != "u13" {
		t.Errorf("verify of a tampered target = %+v, want u09, u11, u12 differing and u13 missing", rep)
	}
}

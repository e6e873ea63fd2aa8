package sqlite

import (
	"context"
	"database/sql"
	"path/filepath"
	"testing"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// A database written at schema version 2 (revisions in a records table)
// opens at the latest version with every record's revision on its rows.
func TestMigrateRecordsOntoItems(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "old.db")
	db, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range migrations[:2] {
		if _, err := db.Exec(m); err != nil {
			t.Fatal(err)
		}
	}
	for _, q := range []string{
		`PRAGMA user_version = 2`,
		`INSERT INTO items (id, key, value) VALUES (x'61', x'6b31', x'31'), (x'61', x'6b32', x'32'), (x'62', x'6b', x'33')`,
		`INSERT INTO records (id, revision) VALUES (x'61', 17), (x'62', 4)`,
		`UPDATE checkpoint SET seq = 17`,
	} {
		if _, err := db.Exec(q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	db.Close()

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for id, want := range map[string]uint64{"a": 17, "b": 4} {
		resp, err := s.GetItems(ctx, &prismv1.GetRequest{Id: []byte(id)})
		if err != nil || resp.GetRevision() != want {
			t.Fatalf("record %s after migration: revision %d, %v; want %d", id, resp.GetRevision(), err, want)
		}
	}
	if cp, err := s.Checkpoint(ctx); err != nil || cp != 17 {
		t.Fatalf("checkpoint after migration = %d, %v", cp, err)
	}
	var version, tables int
	raw, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	defer raw.Close()
	if err := raw.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil || version != len(migrations) {
		t.Fatalf("user_version = %d, %v", version, err)
	}
	if err := raw.QueryRow(`SELECT count(*) FROM sqlite_schema WHERE name = 'records'`).Scan(&tables); err != nil || tables != 0 {
		t.Fatalf("records table left: %d, %v", tables, err)
	}
	// A delete of one key after the migration keeps the record, at the
	// delete's sequence.
	del := &prismv1.KeyValueChange{Seq: 18, Event: &prismv1.KeyValueEvent{Id: []byte("a"), Change: &prismv1.KeyValueEvent_Delete{Delete: &prismv1.KeyValueDelete{Keys: [][]byte{[]byte("k1")}}}}}
	if err := s.ApplyKeyValue(ctx, []*prismv1.KeyValueChange{del}, 18); err != nil {
		t.Fatal(err)
	}
	resp, err := s.GetItems(ctx, &prismv1.GetRequest{Id: []byte("a")})
	if err != nil || resp.GetRevision() != 18 || len(resp.GetItems()) != 1 {
		t.Fatalf("after a partial delete: %v, %v", resp, err)
	}
}

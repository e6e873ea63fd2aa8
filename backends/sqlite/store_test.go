package sqlite_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/prism-data/prism/backends/sqlite"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

func TestOpenOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    []sqlite.Option
		wantErr bool
	}{
		{name: "defaults"},
		{name: "clock and read conns", opts: []sqlite.Option{sqlite.WithClock(time.Now), sqlite.WithReadConns(1)}},
		{name: "nil clock", opts: []sqlite.Option{sqlite.WithClock(nil)}, wantErr: true},
		{name: "zero read conns", opts: []sqlite.Option{sqlite.WithReadConns(0)}, wantErr: true},
		{name: "negative read conns", opts: []sqlite.Option{sqlite.WithReadConns(-3)}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ns.db")
			s, err := sqlite.Open(context.Background(), path, tt.opts...)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Open error = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil {
				if s != nil {
					t.Fatal("Open returned a Store with an error")
				}
				return
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestOpenEmptyPath(t *testing.T) {
	if _, err := sqlite.Open(context.Background(), ""); err == nil {
		t.Fatal("Open(\"\") succeeded")
	}
}

// A path with URI metacharacters must open the file it names.
func TestOpenPathWithURICharacters(t *testing.T) {
	path := filepath.Join(t.TempDir(), "a?b#c%20d&e.db")
	s, err := sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	apply(t, s, 1, put(1, "id", item("k", "v")))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(path); err != nil {
		t.Fatalf("database file not at the path given: %v", err)
	}
	s, err = sqlite.Open(context.Background(), path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if got := kvs(get(t, s, &prismv1.GetRequest{Id: []byte("id")}).GetItems()); !slices.Equal(got, []kv{{"k", "v"}}) {
		t.Fatalf("items after reopen = %v", got)
	}
}

// Persistence of data and checkpoint across reopen, Close and ErrClosed are
// checked by the conformance suite; here, that reopening migrates
// idempotently.
func TestReopenKeepsSchemaVersion(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ns.db")
	var versions []int
	for range 2 {
		s, err := sqlite.Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		apply(t, s, uint64(len(versions)+1), put(uint64(len(versions)+1), "id", item("k", "v")))
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		var version int
		if err := rawDB(t, path).QueryRow("PRAGMA user_version").Scan(&version); err != nil {
			t.Fatal(err)
		}
		versions = append(versions, version)
	}
	if versions[0] < 1 || versions[1] != versions[0] {
		t.Fatalf("schema versions after open and reopen = %v, want the same one, at least 1", versions)
	}
}

// A database from a newer build must be refused, not silently used.
func TestOpenRefusesNewerSchema(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ns.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	db := rawDB(t, path)
	if _, err := db.Exec("PRAGMA user_version = 999"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	if s, err := sqlite.Open(ctx, path); err == nil {
		s.Close()
		t.Fatal("Open accepted schema version 999")
	}
}

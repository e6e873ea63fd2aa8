package sqlite_test

import (
	"context"
	"errors"
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

func TestCheckpointPersistsAcrossReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "ns.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if cp := checkpoint(t, s); cp != 0 {
		t.Fatalf("new store checkpoint = %d, want 0", cp)
	}
	apply(t, s, 42, put(40, "a", item("k", "v")), put(41, "b", item("k", "w")))
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	// Reopening migrates again (idempotently) and keeps data and checkpoint.
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if cp := checkpoint(t, s); cp != 42 {
		t.Fatalf("checkpoint after reopen = %d, want 42", cp)
	}
	resp := get(t, s, &prismv1.GetRequest{Id: []byte("b")})
	if resp.GetRevision() != 41 || !slices.Equal(kvs(resp.GetItems()), []kv{{"k", "w"}}) {
		t.Fatalf("record b after reopen = %v", resp)
	}
}

func TestCloseIsIdempotentAndFinal(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "ns.db"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("first Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	calls := map[string]error{}
	_, calls["Checkpoint"] = s.Checkpoint(ctx)
	calls["ApplyKeyValue"] = s.ApplyKeyValue(ctx, []*prismv1.KeyValueChange{put(1, "a", item("k", "v"))}, 1)
	_, calls["GetItems"] = s.GetItems(ctx, &prismv1.GetRequest{Id: []byte("a")})
	_, calls["ScanIDs"] = s.ScanIDs(ctx, &prismv1.ScanRequest{})
	_, calls["SweepExpired"] = s.SweepExpired(ctx)
	for name, err := range calls {
		if !errors.Is(err, sqlite.ErrClosed) {
			t.Errorf("%s after Close: err = %v, want ErrClosed", name, err)
		}
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

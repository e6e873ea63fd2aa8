package sqlite_test

import (
	"context"
	"encoding/base64"
	"errors"
	"slices"
	"testing"

	"github.com/prism-data/prism/backends/sqlite"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// Reads (keys, ranges, pagination, binary ids and keys, invalid requests)
// are checked by the conformance suite (conformance_test.go); these tests
// cover the SQLite page token format: base64url of the last key or id, and
// "~" after the empty one.

// fiveItems is a record with keys a..e (values A..E), applied at seq 1.
func fiveItems(t *testing.T) *sqlite.Store {
	t.Helper()
	s, _ := openStore(t)
	apply(t, s, 1, put(1, "r",
		item("a", "A"), item("b", "B"), item("c", "C"), item("d", "D"), item("e", "E")))
	return s
}

func TestInvalidPageToken(t *testing.T) {
	s := fiveItems(t)
	ctx := context.Background()
	for _, token := range []string{"!!!", "a=", "YQ==", "~~", base64.RawURLEncoding.EncodeToString(nil) + "@", "Y"} {
		t.Run(token, func(t *testing.T) {
			if _, err := s.GetItems(ctx, &prismv1.GetRequest{Id: []byte("r"), PageToken: token}); !errors.Is(err, sqlite.ErrInvalidPageToken) {
				t.Errorf("GetItems: err = %v, want ErrInvalidPageToken", err)
			}
			if _, err := s.ScanIDs(ctx, &prismv1.ScanRequest{PageToken: token}); !errors.Is(err, sqlite.ErrInvalidPageToken) {
				t.Errorf("ScanIDs: err = %v, want ErrInvalidPageToken", err)
			}
		})
	}
	// A well-formed token continues after the key it names.
	resp := get(t, s, &prismv1.GetRequest{Id: []byte("r"), PageToken: base64.RawURLEncoding.EncodeToString([]byte("c"))})
	if got := kvs(resp.GetItems()); !slices.Equal(got, []kv{{"d", "D"}, {"e", "E"}}) {
		t.Errorf("after token of %q: %v", "c", got)
	}
}

// base64 of the empty key is "", the token of the first page, so the page
// after the empty key (or id) has the token "~".
func TestPageTokenAfterEmptyKey(t *testing.T) {
	s, _ := openStore(t)
	apply(t, s, 2, put(1, "", item("", "empty"), item("a", "A")), put(2, "b", item("k", "v")))

	resp := get(t, s, &prismv1.GetRequest{PageSize: 1})
	if got := kvs(resp.GetItems()); !slices.Equal(got, []kv{{"", "empty"}}) || resp.GetNextPageToken() != "~" {
		t.Fatalf("first page = %v token %q, want the empty key and token ~", got, resp.GetNextPageToken())
	}
	resp = get(t, s, &prismv1.GetRequest{PageSize: 1, PageToken: "~"})
	if got := kvs(resp.GetItems()); !slices.Equal(got, []kv{{"a", "A"}}) || resp.GetNextPageToken() != "" {
		t.Fatalf("page after ~ = %v token %q, want a=A and no token", got, resp.GetNextPageToken())
	}

	scan, err := s.ScanIDs(context.Background(), &prismv1.ScanRequest{PageSize: 1})
	if err != nil {
		t.Fatal(err)
	}
	if len(scan.GetIds()) != 1 || len(scan.GetIds()[0]) != 0 || scan.GetNextPageToken() != "~" {
		t.Fatalf("first scan page = %q token %q, want the empty id and token ~", scan.GetIds(), scan.GetNextPageToken())
	}
	scan, err = s.ScanIDs(context.Background(), &prismv1.ScanRequest{PageSize: 1, PageToken: "~"})
	if err != nil {
		t.Fatal(err)
	}
	if len(scan.GetIds()) != 1 || string(scan.GetIds()[0]) != "b" || scan.GetNextPageToken() != "" {
		t.Fatalf("scan page after ~ = %q token %q, want [b] and no token", scan.GetIds(), scan.GetNextPageToken())
	}
}

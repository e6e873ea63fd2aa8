package kit

import (
	"bytes"
	"encoding/base64"
	"slices"
	"strconv"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

const (
	// DefaultPageSize is the page size of a read whose page_size is 0.
	DefaultPageSize = 100
	// MaxPageSize caps the page size of every read.
	MaxPageSize = 1000
)

// PageSize returns the number of entries a page of a read holds for the
// requested page_size n: DefaultPageSize for 0, at most MaxPageSize.
func PageSize(n uint32) int {
	switch {
	case n == 0:
		return DefaultPageSize
	case n > MaxPageSize:
		return MaxPageSize
	}
	return int(n)
}

// EmptyKeyToken is the page token after the empty key (or id): base64 of
// nothing is "", which already means "from the start". '~' is outside the
// base64url alphabet, so no other token can equal it.
const EmptyKeyToken = "~"

// tokenEncoding is the encoding of every page token: unpadded base64url,
// strict so that each token has one spelling.
var tokenEncoding = base64.RawURLEncoding.Strict()

// EncodeKeyToken returns the page token of a KeyValue read (GetItems,
// ScanIDs) whose page ended at last, a key or record id: its base64url
// (unpadded) encoding, or EmptyKeyToken for the empty one.
func EncodeKeyToken(last []byte) string {
	if len(last) == 0 {
		return EmptyKeyToken
	}
	return tokenEncoding.EncodeToString(last)
}

// DecodeKeyToken reverses EncodeKeyToken. ok is false for "" (the first
// page); for EmptyKeyToken last is empty and ok true.
//
// Errors: a *RequestError (Token) for a token EncodeKeyToken cannot have
// made.
func DecodeKeyToken(token string) (last []byte, ok bool, err error) {
	switch token {
	case "":
		return nil, false, nil
	case EmptyKeyToken:
		return []byte{}, true, nil
	}
	last, err = tokenEncoding.DecodeString(token)
	if err != nil || len(last) == 0 {
		return nil, false, badToken(token)
	}
	return last, true, nil
}

// badToken is the error of a page token that kit did not make.
func badToken(token string) *RequestError {
	return &RequestError{Token: true, Detail: strconv.Quote(token)}
}

// KeyPage cuts entries, read one past a page of size (so a next page shows),
// to the page, and returns it with its next page token: empty when entries
// fit in the page, else EncodeKeyToken of the last kept entry's key.
func KeyPage[E any](entries []E, size int, key func(E) []byte) ([]E, string) {
	if len(entries) <= size {
		return entries, ""
	}
	return entries[:size], EncodeKeyToken(key(entries[size-1]))
}

// After returns the index of the lower bound of a key or id read that
// resumes after a page token: 0 (inclusive, from start) without one, 1
// (exclusive, after the token's key) with one, and the bound.
func After(start, after []byte, hasAfter bool) (exclusive int, lower []byte) {
	if hasAfter && bytes.Compare(after, start) >= 0 {
		return 1, after
	}
	return 0, NonNil(start)
}

// ScanIDPage reads a ScanIDs page from rows of one bytes column, the ids in
// order, read one past a page of size. The caller closes rows.
func ScanIDPage(rows Rows, size int) (*prismv1.ScanResponse, error) {
	resp := &prismv1.ScanResponse{}
	for rows.Next() {
		var id []byte
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		resp.Ids = append(resp.Ids, NonNil(id))
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	resp.Ids, resp.NextPageToken = KeyPage(resp.Ids, size, func(id []byte) []byte { return id })
	return resp, nil
}

// KeysAfter returns the keys of a read by keys that its page still has to
// read: those after the page token's key (all without one), sorted in byte
// order, without repeats, never nil.
func KeysAfter(keys [][]byte, after []byte, hasAfter bool) [][]byte {
	out := make([][]byte, 0, len(keys))
	for _, k := range keys {
		if !hasAfter || bytes.Compare(k, after) > 0 {
			out = append(out, NonNil(k))
		}
	}
	slices.SortFunc(out, bytes.Compare)
	return slices.CompactFunc(out, bytes.Equal)
}

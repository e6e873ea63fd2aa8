package audit_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/auth/audit"
	"github.com/prism-data/prism/status"
)

func TestHashID(t *testing.T) {
	id := []byte("customer-4711")
	h := audit.HashID("orders", id)
	sum := sha256.Sum256([]byte("orders\x00customer-4711"))
	if want := hex.EncodeToString(sum[:16]); h != want {
		t.Fatalf("HashID = %s, want %s", h, want)
	}
	if h != audit.HashID("orders", id) {
		t.Fatal("HashID is not stable")
	}
	if strings.Contains(h, string(id)) || strings.Contains(h, hex.EncodeToString(id)) {
		t.Fatalf("HashID %s shows the id", h)
	}
	if h == audit.HashID("users", id) {
		t.Fatal("the same id hashes alike in two namespaces")
	}
	// The separator keeps ("ab", "c") and ("a", "bc") apart.
	if audit.HashID("ab", []byte("c")) == audit.HashID("a", []byte("bc")) {
		t.Fatal("namespace and id run together")
	}
	long := []byte(strings.Repeat("x", 1000))
	sum = sha256.Sum256(append([]byte("orders\x00"), long...))
	if got := audit.HashID("orders", long); got != hex.EncodeToString(sum[:16]) {
		t.Fatalf("HashID of a long id = %s", got)
	}
}

func TestCode(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"nil", nil, "OK"},
		{"permission denied", status.ErrPermissionDenied, "PERMISSION_DENIED"},
		{"wrapped", fmt.Errorf("handle: %w", status.Newf(status.ErrNotFound.Code, "no record")), "NOT_FOUND"},
		{"deadline", context.DeadlineExceeded, "DEADLINE_EXCEEDED"},
		{"other", errors.New("boom"), "INTERNAL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := audit.Code(tt.err); got != tt.want {
				t.Fatalf("Code(%v) = %q, want %q", tt.err, got, tt.want)
			}
		})
	}
}

func TestRecordJSON(t *testing.T) {
	rec := sample("orders", "write.put", "alice@example.com", "req-1", "customer-4711", "customer-4712")
	rec.Node = "gw-1"
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), "customer-47") {
		t.Fatalf("the JSON shows an id in clear: %s", data)
	}
	// The documented document, field by field.
	var doc map[string]any
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatalf("%v: %s", err, data)
	}
	want := map[string]any{
		"time":       "2030-01-02T03:04:05.123456789Z",
		"principal":  map[string]any{"name": "alice@example.com", "groups": []any{"eng", "ops"}, "via": "oidc"},
		"namespace":  "orders",
		"op":         "write.put",
		"count":      2.0,
		"ids":        []any{audit.HashID("orders", []byte("customer-4711")), audit.HashID("orders", []byte("customer-4712"))},
		"code":       "OK",
		"latency_us": 1234.0,
		"request_id": "req-1",
		"trace_id":   "4bf92f3577b34da6a3ce929d0e0e4736",
		"seq":        42.0,
		"node":       "gw-1",
	}
	if !reflect.DeepEqual(doc, want) {
		t.Fatalf("JSON document:\n got %v\nwant %v", doc, want)
	}
	var back audit.Record
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if exp := stored(rec, ""); !reflect.DeepEqual(back, exp) {
		t.Fatalf("round trip:\n got %#v\nwant %#v", fields(back), fields(exp))
	}

	// A record without ids, principal groups or namespace still has every
	// field.
	data, err = json.Marshal(audit.Record{Op: "admin.ns.list", Principal: auth.Anonymous})
	if err != nil {
		t.Fatal(err)
	}
	doc = nil
	if err := json.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	keys := slices.Sorted(func(yield func(string) bool) {
		for k := range doc {
			if !yield(k) {
				return
			}
		}
	})
	if want := []string{"code", "count", "ids", "latency_us", "namespace", "node", "op", "principal", "request_id", "seq", "time", "trace_id"}; !slices.Equal(keys, want) {
		t.Fatalf("fields %v, want %v", keys, want)
	}
	if ids, ok := doc["ids"].([]any); !ok || len(ids) != 0 {
		t.Fatalf("ids of a record without ids: %v", doc["ids"])
	}
}

func TestRecordIDsCapped(t *testing.T) {
	ids := make([]string, 150)
	for i := range ids {
		ids[i] = fmt.Sprintf("id-%d", i)
	}
	rec := sample("orders", "write.mutate", "svc", "r", ids...)
	rec.Count = 0
	data, err := json.Marshal(rec)
	if err != nil {
		t.Fatal(err)
	}
	var back audit.Record
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if back.Count != 150 || len(back.IDs) != audit.MaxIDs {
		t.Fatalf("count %d, %d ids; want 150, %d", back.Count, len(back.IDs), audit.MaxIDs)
	}
	for i, h := range back.IDs {
		if h != audit.HashID("orders", []byte(ids[i])) {
			t.Fatalf("ids[%d] = %s, want the hash of %s", i, h, ids[i])
		}
	}
}

func TestRecordStringHidesIDs(t *testing.T) {
	rec := sample("orders", "read.get", "alice", "r", "customer-4711")
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		s := fmt.Sprintf(verb, rec)
		if strings.Contains(s, "customer-4711") || strings.Contains(s, "4711") {
			t.Errorf("%s of a record shows its id: %s", verb, s)
		}
	}
	s := rec.String()
	for _, want := range []string{"2030-01-02T03:04:05.123456Z", "alice", "orders", "read.get", " 1 ", "OK", "1.234ms"} {
		if !strings.Contains(s, want) {
			t.Errorf("String() = %q lacks %q", s, want)
		}
	}
	if s := (audit.Record{Op: "admin.ns.list"}).String(); !strings.Contains(s, " - ") {
		t.Errorf("String() of a record on no namespace = %q, want a '-' for it", s)
	}
}

// canon is s as encoding/json reads it back after writing it: invalid
// UTF-8 becomes U+FFFD.
func canon(s string) string {
	b, _ := json.Marshal(s)
	var out string
	_ = json.Unmarshal(b, &out)
	return out
}

func FuzzRecordJSON(f *testing.F) {
	f.Add("alice", "grp", "req-1", "trace", "node", []byte("id"), int64(0), uint64(1))
	f.Add("a\"b\\c\n\t\r\x00\x1f", "\u2028\u2029<>&", "\xff\xfe", "é日本", "\x7f", []byte{0, 0xff}, int64(-5), uint64(0))
	f.Fuzz(func(t *testing.T, name, group, reqID, traceID, node string, id []byte, latency int64, seq uint64) {
		rec := audit.Record{
			Time:      time.Unix(0, latency).UTC(),
			Principal: auth.Principal{Name: name, Groups: []string{group, name}, Via: group},
			Namespace: "orders",
			Op:        "read.get",
			RawIDs:    [][]byte{id},
			Code:      "OK",
			Latency:   time.Duration(latency),
			RequestID: reqID,
			TraceID:   traceID,
			Seq:       seq,
			Node:      node,
		}
		data, err := json.Marshal(rec)
		if err != nil {
			t.Fatal(err)
		}
		if !json.Valid(data) {
			t.Fatalf("invalid JSON: %q", data)
		}
		var back audit.Record
		if err := json.Unmarshal(data, &back); err != nil {
			t.Fatalf("%v: %q", err, data)
		}
		want := stored(rec, "")
		want.Principal = auth.Principal{Name: canon(name), Groups: []string{canon(group), canon(name)}, Via: canon(group)}
		want.RequestID, want.TraceID, want.Node = canon(reqID), canon(traceID), canon(node)
		if !reflect.DeepEqual(back, want) {
			t.Fatalf("round trip of %q:\n got %#v\nwant %#v", data, fields(back), fields(want))
		}
	})
}

// fields shows a record's fields (its %v is String, which leaves most
// out).
func fields(r audit.Record) string {
	return fmt.Sprintf("{Time:%v Principal:%+v Namespace:%q Op:%q Count:%d IDs:%q Code:%q Latency:%v RequestID:%q TraceID:%q Seq:%d Node:%q}",
		r.Time, r.Principal, r.Namespace, r.Op, r.Count, r.IDs, r.Code, r.Latency, r.RequestID, r.TraceID, r.Seq, r.Node)
}

package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/auth/audit"
	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/status"
)

// auditRecords writes recs to a fresh server's audit stream and returns
// its URL.
func auditRecords(t *testing.T, recs ...audit.Record) (string, *audit.Writer) {
	t.Helper()
	s := natstest.Server(t)
	js := natstest.JetStream(t, natstest.Connect(t, s))
	ctx := context.Background()
	if _, err := audit.EnsureStream(ctx, js, audit.StreamConfig{}); err != nil {
		t.Fatal(err)
	}
	w, err := audit.NewWriter(js, audit.WithNode("gw-1"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = w.Close(context.Background()) })
	for _, r := range recs {
		if err := w.Record(ctx, r, true); err != nil {
			t.Fatal(err)
		}
	}
	return s.ClientURL(), w
}

func auditRecord(ns, op, principal, reqID, code string, ids ...string) audit.Record {
	raw := make([][]byte, len(ids))
	for i, id := range ids {
		raw[i] = []byte(id)
	}
	return audit.Record{
		Time:      time.Now().Add(-time.Minute).Truncate(time.Microsecond).UTC(),
		Principal: auth.Principal{Name: principal, Groups: []string{"eng"}, Via: auth.ViaOIDC},
		Namespace: ns, Op: op, Count: len(ids), RawIDs: raw, Code: code,
		Latency: 1500 * time.Microsecond, RequestID: reqID, TraceID: "t-" + reqID, Seq: 7,
	}
}

// jsonLines decodes --json output: one record a line.
func jsonLines(t *testing.T, out string) []audit.Record {
	t.Helper()
	var recs []audit.Record
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		if line == "" {
			continue
		}
		var r audit.Record
		if err := json.Unmarshal([]byte(line), &r); err != nil {
			t.Fatalf("line %q: %v", line, err)
		}
		recs = append(recs, r)
	}
	return recs
}

func requestIDsOf(recs []audit.Record) string {
	ids := make([]string, len(recs))
	for i, r := range recs {
		ids[i] = r.RequestID
	}
	return strings.Join(ids, ",")
}

func TestAuditCommandJSON(t *testing.T) {
	recs := []audit.Record{
		auditRecord("orders", "write.put", "alice", "r1", "OK", "customer-4711"),
		auditRecord("orders", "read.get", "bob", "r2", "PERMISSION_DENIED", "customer-4711"),
		auditRecord("users", "write.delete", "alice", "r3", "OK", "u-1", "u-2"),
		auditRecord("", "admin.ns.list", "ops", "r4", "OK"),
	}
	url, _ := auditRecords(t, recs...)
	out, err := runCLI(t, "audit", "--nats-url", url, "--json")
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if strings.Contains(out, "customer-4711") || strings.Contains(out, "u-1") {
		t.Fatalf("the output shows an id in clear:\n%s", out)
	}
	got := jsonLines(t, out)
	if len(got) != len(recs) {
		t.Fatalf("%d records, want %d:\n%s", len(got), len(recs), out)
	}
	for i, r := range recs {
		want := r
		want.IDs = []string{}
		for _, id := range r.RawIDs {
			want.IDs = append(want.IDs, audit.HashID(r.Namespace, id))
		}
		want.RawIDs, want.Node = nil, "gw-1"
		if g, w := mustJSON(t, got[i]), mustJSON(t, want); g != w {
			t.Errorf("record %d:\n got %s\nwant %s", i, g, w)
		}
	}

	tests := []struct {
		name    string
		args    []string
		want    string // request ids, in order
		wantErr error
	}{
		{name: "namespace", args: []string{"--namespace", "orders"}, want: "r1,r2"},
		{name: "no namespace", args: []string{"--namespace", "_"}, want: "r4"},
		{name: "op kind", args: []string{"--op", "write"}, want: "r1,r3"},
		{name: "exact op", args: []string{"--op", "read.get"}, want: "r2"},
		{name: "principal", args: []string{"--principal", "alice"}, want: "r1,r3"},
		{name: "limit", args: []string{"--limit", "3"}, want: "r1,r2,r3"},
		{name: "since all", args: []string{"--since", "all"}, want: "r1,r2,r3,r4"},
		{name: "since after them", args: []string{"--since", "30s"}, want: ""},
		{name: "until before them", args: []string{"--until", "2h"}, want: ""},
		{name: "since as a time", args: []string{"--since", time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)}, want: "r1,r2,r3,r4"},
		{name: "bad namespace", args: []string{"--namespace", "Not.Valid"}, wantErr: status.ErrInvalidArgument},
		{name: "until before since", args: []string{"--since", "1h", "--until", "2h"}, wantErr: status.ErrInvalidArgument},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out, err := runCLI(t, append([]string{"audit", "--nats-url", url, "--json"}, tt.args...)...)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v\n%s", err, tt.wantErr, out)
				}
				return
			}
			if err != nil {
				t.Fatalf("%v\n%s", err, out)
			}
			if got := requestIDsOf(jsonLines(t, out)); got != tt.want {
				t.Fatalf("records %q, want %q", got, tt.want)
			}
		})
	}
}

func mustJSON(t *testing.T, r audit.Record) string {
	t.Helper()
	b, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestAuditCommandHuman(t *testing.T) {
	url, _ := auditRecords(t,
		auditRecord("orders", "write.put", "alice", "r1", "OK", "customer-4711"),
		auditRecord("", "admin.ns.list", "ops", "r2", "PERMISSION_DENIED"),
	)
	out, err := runCLI(t, "audit", "--nats-url", url)
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 3 {
		t.Fatalf("want a header and 2 lines:\n%s", out)
	}
	for _, want := range []string{"TIME", "PRINCIPAL", "NAMESPACE", "OP", "COUNT", "CODE", "LATENCY"} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("header %q lacks %s", lines[0], want)
		}
	}
	for i, want := range [][]string{{"alice", "orders", "write.put", " 1 ", "OK", "1.5ms"}, {"ops", " - ", "admin.ns.list", " 0 ", "PERMISSION_DENIED"}} {
		for _, w := range want {
			if !strings.Contains(lines[i+1], w) {
				t.Errorf("line %q lacks %q", lines[i+1], w)
			}
		}
	}
	if strings.Contains(out, "customer-4711") {
		t.Fatalf("the output shows an id:\n%s", out)
	}
}

func TestAuditCommandBadFlags(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		wantErr string
	}{
		{"bad since", []string{"--since", "yesterday"}, `--since "yesterday": want a duration back from now like 1h`},
		{"negative since", []string{"--since", "-1h"}, "must not be negative"},
		{"bad until", []string{"--until", "2025-13-01"}, `--until "2025-13-01"`},
		{"until all", []string{"--until", "all"}, "all is for --since"},
		{"argument", []string{"orders"}, `unknown command "orders"`},
		{"no server", []string{"--nats-url", "nats://127.0.0.1:1"}, "connect to nats://127.0.0.1:1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runCLI(t, append([]string{"audit"}, tt.args...)...)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestAuditCommandNoStream(t *testing.T) {
	s := natstest.Server(t)
	_, err := runCLI(t, "audit", "--nats-url", s.ClientURL())
	if !errors.Is(err, status.ErrNotFound) || !strings.Contains(err.Error(), "PRISM account") {
		t.Fatalf("err = %v, want NOT_FOUND naming the PRISM account", err)
	}
}

// syncBuffer is a bytes.Buffer safe for a command writing while the test
// reads.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestAuditCommandFollow(t *testing.T) {
	url, w := auditRecords(t,
		auditRecord("orders", "write.put", "alice", "r1", "OK", "a"),
		auditRecord("orders", "read.get", "alice", "r2", "OK", "a"),
	)
	root := newRootCmd()
	var out syncBuffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs([]string{"audit", "--nats-url", url, "--json", "-f", "--since", "all", "--namespace", "orders"})
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()
	waitLines := func(n int) {
		t.Helper()
		for strings.Count(out.String(), "\n") < n {
			select {
			case err := <-done:
				t.Fatalf("audit -f returned %v with:\n%s", err, out.String())
			case <-ctx.Done():
				t.Fatalf("audit -f printed only:\n%s", out.String())
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	waitLines(2)
	// Printed what was there and still running: new records appear.
	for _, r := range []audit.Record{auditRecord("users", "write.put", "alice", "other", "OK"), auditRecord("orders", "write.delete", "bob", "r3", "OK", "a")} {
		if err := w.Record(ctx, r, true); err != nil {
			t.Fatal(err)
		}
	}
	waitLines(3)
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("audit -f after interrupt: %v", err)
	}
	if got := requestIDsOf(jsonLines(t, out.String())); got != "r1,r2,r3" {
		t.Fatalf("followed %q, want r1,r2,r3", got)
	}
}

package subjects_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/prism-data/prism/subjects"
)

func TestEncodeID(t *testing.T) {
	tests := []struct {
		name string
		id   []byte
		want string
	}{
		{"plain", []byte("user-1_A"), "user-1_A"},
		{"empty", []byte{}, "~"},
		{"dot", []byte("a.b"), "a~2Eb"},
		{"wildcards", []byte("*>"), "~2A~3E"},
		{"tilde", []byte("~"), "~7E"},
		{"space", []byte("a b"), "a~20b"},
		{"binary", []byte{0, 0xff}, "~00~FF"},
		{"unicode", []byte("é"), "~C3~A9"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := subjects.EncodeID(tt.id)
			if got != tt.want {
				t.Fatalf("EncodeID(%q) = %q, want %q", tt.id, got, tt.want)
			}
			if subjects.EncodedLen(tt.id) != len(got) {
				t.Fatalf("EncodedLen = %d, want %d", subjects.EncodedLen(tt.id), len(got))
			}
			back, err := subjects.DecodeID(got)
			if err != nil || !bytes.Equal(back, tt.id) {
				t.Fatalf("DecodeID(%q) = %q, %v", got, back, err)
			}
		})
	}
}

func TestDecodeIDRejectsNonCanonical(t *testing.T) {
	for _, tok := range []string{"", "~2e", "~41", "a~", "a~2", "~~", "a.b", "~G0", "a b", "*"} {
		if _, err := subjects.DecodeID(tok); !errors.Is(err, subjects.ErrInvalidEncoding) {
			t.Errorf("DecodeID(%q) err = %v, want ErrInvalidEncoding", tok, err)
		}
	}
}

func TestValidateNamespace(t *testing.T) {
	tests := []struct {
		ns      string
		wantErr bool
	}{
		{"demo", false},
		{"orders-v2_eu", false},
		{"a", false},
		{strings.Repeat("a", 64), false},
		{strings.Repeat("a", 65), true},
		{"", true},
		{"Demo", true},
		{"1abc", true},
		{"a.b", true},
		{"a*", true},
		{"dlq", true},
	}
	for _, tt := range tests {
		err := subjects.ValidateNamespace(tt.ns)
		if (err != nil) != tt.wantErr {
			t.Errorf("ValidateNamespace(%q) = %v, wantErr %v", tt.ns, err, tt.wantErr)
		}
		if err != nil && !errors.Is(err, subjects.ErrInvalidNamespace) {
			t.Errorf("ValidateNamespace(%q) err %v is not ErrInvalidNamespace", tt.ns, err)
		}
	}
}

func TestParseRequest(t *testing.T) {
	got, err := subjects.ParseRequest(subjects.Write("demo", "put"))
	if err != nil || got != (subjects.Request{Namespace: "demo", Kind: subjects.KindWrite, Op: "put"}) {
		t.Fatalf("ParseRequest = %+v, %v", got, err)
	}
	got, err = subjects.ParseRequest(subjects.Read("demo", "get"))
	if err != nil || got.Kind != subjects.KindRead || got.Op != "get" {
		t.Fatalf("ParseRequest = %+v, %v", got, err)
	}
	for _, bad := range []string{"prism.demo.put", "nats.demo.write.put", "prism.Demo.write.put", "prism.demo.erase.put", "prism.demo.write."} {
		if _, err := subjects.ParseRequest(bad); err == nil {
			t.Errorf("ParseRequest(%q) accepted", bad)
		}
	}
}

func TestParseEvent(t *testing.T) {
	id := []byte("order.42 ~*")
	subj := subjects.KeyValueEvent("shop", id)
	if strings.Count(subj, ".") != 4 {
		t.Fatalf("event subject %q has the wrong number of tokens", subj)
	}
	ev, err := subjects.ParseEvent(subj)
	if err != nil || ev.Namespace != "shop" || ev.Abstraction != subjects.AbstractionKeyValue || !bytes.Equal(ev.ID, id) || ev.IsMarker() {
		t.Fatalf("ParseEvent(%q) = %+v, %v", subj, ev, err)
	}
	m, err := subjects.ParseEvent(subjects.Marker("shop", "tok-1"))
	if err != nil || !m.IsMarker() || string(m.ID) != "tok-1" {
		t.Fatalf("ParseEvent(marker) = %+v, %v", m, err)
	}
	if !strings.HasPrefix(subj, strings.TrimSuffix(subjects.StreamSubjects("shop")[0], ">")) {
		t.Fatalf("event subject %q is not captured by the stream", subj)
	}
	series := []byte("cpu/host 1")
	tsSubj := subjects.TimeSeriesEvent("shop", series)
	if tsSubj != "prism.shop.events.ts.cpu~2Fhost~201" {
		t.Fatalf("TimeSeriesEvent = %q", tsSubj)
	}
	ts, err := subjects.ParseEvent(tsSubj)
	if err != nil || ts.Namespace != "shop" || ts.Abstraction != subjects.AbstractionTimeSeries || !bytes.Equal(ts.ID, series) || ts.IsMarker() {
		t.Fatalf("ParseEvent(%q) = %+v, %v", tsSubj, ts, err)
	}
	if !strings.HasPrefix(tsSubj, strings.TrimSuffix(subjects.StreamSubjects("shop")[0], ">")) {
		t.Fatalf("event subject %q is not captured by the stream", tsSubj)
	}
	if got, want := subjects.AllTimeSeriesEvents("shop"), "prism.shop.events.ts.*"; got != want {
		t.Fatalf("AllTimeSeriesEvents = %q, want %q", got, want)
	}
	for _, bad := range []string{"prism.shop.events.kv", "prism.shop.events.ts", "prism.shop.events.gr.a", "prism.shop.events.kv.~2e", "prism.shop.events.ts.~2e", "prism.shop.write.kv.a"} {
		if _, err := subjects.ParseEvent(bad); err == nil {
			t.Errorf("ParseEvent(%q) accepted", bad)
		}
	}
}

func TestNames(t *testing.T) {
	if got := subjects.Stream("orders-v2"); got != "PRISM_ORDERS-V2" {
		t.Errorf("Stream = %q", got)
	}
	if got := subjects.DeadLetter("demo"); got != "prism.dlq.demo" {
		t.Errorf("DeadLetter = %q", got)
	}
	if got := subjects.Changes("demo"); got != "prism.demo.changes.>" {
		t.Errorf("Changes = %q", got)
	}
}

func FuzzEncodeID(f *testing.F) {
	for _, s := range []string{"", "a", "a.b", "*", ">", "~", "é", "\x00\xff", "user-1"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, id []byte) {
		tok := subjects.EncodeID(id)
		if tok == "" {
			t.Fatal("empty token")
		}
		for i := 0; i < len(tok); i++ {
			c := tok[i]
			if c == '.' || c == '*' || c == '>' || c <= ' ' || c >= 0x7f {
				t.Fatalf("EncodeID(%q) = %q contains %q", id, tok, c)
			}
		}
		back, err := subjects.DecodeID(tok)
		if err != nil || !bytes.Equal(back, id) {
			t.Fatalf("round trip of %q via %q = %q, %v", id, tok, back, err)
		}
	})
}

func FuzzDecodeID(f *testing.F) {
	for _, s := range []string{"~", "a~2Eb", "~2e", "abc", "~FF"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		id, err := subjects.DecodeID(tok)
		if err != nil {
			return
		}
		if again := subjects.EncodeID(id); again != tok {
			t.Fatalf("DecodeID(%q) = %q re-encodes to %q: not canonical", tok, id, again)
		}
	})
}

func TestOwnerSubjectOutsideNamespaces(t *testing.T) {
	if got := subjects.Owner("orders", "verify"); got != "prism.$owner.verify.orders" {
		t.Fatalf("Owner = %q", got)
	}
	for _, ns := range []string{"orders", "read", "write"} {
		got := subjects.Owner(ns, "verify")
		if _, err := subjects.ParseRequest(got); err == nil {
			t.Fatalf("ParseRequest(%q) succeeded: an owner subject must not parse as a namespace request", got)
		}
	}
}

func TestForwarded(t *testing.T) {
	req := subjects.Read("orders", "get")
	fwd := subjects.Forwarded(req)
	if fwd != "prism.$fwd.orders.read.get" {
		t.Fatalf("Forwarded(%q) = %q", req, fwd)
	}
	if got, ok := subjects.Unforward(fwd); !ok || got != req {
		t.Fatalf("Unforward(%q) = %q, %v; want %q", fwd, got, ok, req)
	}
	if _, err := subjects.ParseRequest(fwd); err == nil {
		t.Errorf("a forwarded subject parses as a request: the gateways' own subscriptions would take it")
	}
	// The namespace's wildcard matches its forwarded requests, and no
	// other namespace's.
	all := subjects.AllForwarded("orders")
	if all != "prism.$fwd.orders.>" {
		t.Fatalf("AllForwarded = %q", all)
	}
	for subj, want := range map[string]bool{
		subjects.Forwarded(subjects.Write("orders", "put")):      true,
		subjects.Forwarded(subjects.Read("orders2", "get")):      false,
		subjects.Forwarded(subjects.Subscribe("orders", "open")): true,
	} {
		if got := strings.HasPrefix(subj, strings.TrimSuffix(all, ">")); got != want {
			t.Errorf("%s matched by %s: %v, want %v", subj, all, got, want)
		}
	}
	for _, s := range []string{req, "prism.$fwdx.orders.read.get", ""} {
		if _, ok := subjects.Unforward(s); ok {
			t.Errorf("Unforward(%q): ok, want not a forwarded subject", s)
		}
	}
}

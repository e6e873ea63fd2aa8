package gateway_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"strings"
	"testing"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/pii"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

const (
	tsEmail   = "ada.lovelace@example.com"
	tsEmail2  = "bob.babbage@example.com"
	tsPayload = "the secret note"
)

// piiTSEnv serves tsNS on SQLite with tags email (PII, kind email) and
// region, and a PII payload; "writer" may write and read, "reader" read,
// "support" read and read_pii.
func piiTSEnv(t *testing.T, redaction string) (*tsEnv, *env) {
	t.Helper()
	sec := testSecurity{grants: map[string][]auth.Permission{
		"writer":  {auth.Write, auth.Read},
		"reader":  {auth.Read},
		"support": {auth.Read, auth.ReadPII},
	}}
	e := newTSEnv(t, tsEnvConfig{
		sqlite: true, kek: testKEK(t),
		opts: []gateway.Option{gateway.WithSecurity(sec), gateway.WithAuditor(&testAuditor{})},
		namespace: func(n *namespaces.Namespace) {
			n.Fields = namespaces.NewNames("email", "region")
			n.PII = namespaces.NewPIIFields(namespaces.PIIField{Name: "email", Kind: pii.KindEmail}, namespaces.PIIField{Name: namespaces.PIIPayload, Kind: pii.KindGeneric})
			n.PIIRedaction = redaction
		},
	})
	return e, &env{nc: e.nc, js: e.js}
}

// appendPII appends two events to series s1 as writer and returns the
// sequence.
func appendPII(t *testing.T, e *env) uint64 {
	t.Helper()
	req := appendReq("s1",
		tsEvent(t0, "e1", map[string]string{"email": tsEmail, "region": "eu"}, tsPayload),
		tsEvent(t0.Add(1), "e2", map[string]string{"email": tsEmail2, "region": "us"}, "other"))
	var w prismv1.WriteResponse
	if er := callAs(t, e, "writer", subjects.Write(tsNS, "append"), req, &w); er != nil {
		t.Fatalf("append: %v", er)
	}
	return w.GetSeq()
}

func readRangeAs(t *testing.T, e *env, who string, seq uint64) []*prismv1.TimeSeriesEvent {
	t.Helper()
	var resp prismv1.EventsResponse
	if er := callAs(t, e, who, subjects.Read(tsNS, "range"), &prismv1.ReadRangeRequest{SeriesId: []byte("s1"), MinSeq: seq}, &resp); er != nil {
		t.Fatalf("range as %s: %v", who, er)
	}
	var out []*prismv1.TimeSeriesEvent
	for _, se := range resp.GetEvents() {
		for k := range se.GetEvent().GetTags() {
			if strings.HasPrefix(k, "~pii.") {
				t.Fatalf("range as %s returned the sealed tag %s", who, k)
			}
		}
		out = append(out, se.GetEvent())
	}
	return out
}

func TestTimeSeriesPIIIsSealedAndShownPerCaller(t *testing.T) {
	ts, e := piiTSEnv(t, "")
	seq := appendPII(t, e)

	st, err := ts.js.Stream(context.Background(), subjects.Stream(tsNS))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := st.GetMsg(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range []string{tsEmail, tsEmail2, tsPayload, "lovelace"} {
		for _, form := range []string{v, base64.StdEncoding.EncodeToString([]byte(v)), base64.RawURLEncoding.EncodeToString([]byte(v))} {
			if bytes.Contains(stored.Data, []byte(form)) {
				t.Fatalf("the stored event holds %q", form)
			}
		}
	}
	if !bytes.Contains(stored.Data, []byte("eu")) {
		t.Fatal("the non-PII tag is missing from the event (the scan above could not fail)")
	}
	app, err := subjects.DecodeTimeSeriesEvent(stored.Subject, stored.Header, stored.Data)
	if err != nil {
		t.Fatal(err)
	}
	first := app.GetEvents()[0]
	if !pii.IsToken(first.GetTags()["email"]) || first.GetTags()["~pii.email"] == "" {
		t.Fatalf("stored tags %v: want a token and the sealed value", first.GetTags())
	}
	if _, err := pii.Inspect(first.GetPayload()); err != nil {
		t.Fatalf("the stored payload is not sealed: %v", err)
	}

	for _, tc := range []struct {
		who                   string
		email, email2, paylod string
	}{
		{"support", tsEmail, tsEmail2, tsPayload},
		{"reader", "a***@example.com", "b***@example.com", "***"},
	} {
		evs := readRangeAs(t, e, tc.who, seq)
		if len(evs) != 2 || evs[0].GetTags()["email"] != tc.email || evs[1].GetTags()["email"] != tc.email2 ||
			string(evs[0].GetPayload()) != tc.paylod || evs[0].GetTags()["region"] != "eu" || len(evs[0].GetTags()) != 2 {
			t.Errorf("range as %s = %v, want email %q/%q payload %q region eu", tc.who, evs, tc.email, tc.email2, tc.paylod)
		}
	}

	// Search by a PII tag: within the series, for a caller with read_pii.
	search := func(who string, req *prismv1.SearchRequest) (*prismv1.EventsResponse, *prismv1.Error) {
		var resp prismv1.EventsResponse
		req.MinSeq = seq
		er := callAs(t, e, who, subjects.Read(tsNS, "search"), req, &resp)
		return &resp, er
	}
	resp, er := search("support", &prismv1.SearchRequest{SeriesId: []byte("s1"), Tags: map[string]string{"email": tsEmail}})
	if er != nil || len(resp.GetEvents()) != 1 || string(resp.GetEvents()[0].GetEvent().GetEventId()) != "e1" || resp.GetEvents()[0].GetEvent().GetTags()["email"] != tsEmail {
		t.Fatalf("search by email in s1 = %v, %v; want e1", resp, er)
	}
	if _, er := search("support", &prismv1.SearchRequest{Tags: map[string]string{"email": tsEmail}}); !isCode(er, prismv1.Code_INVALID_ARGUMENT) || !strings.Contains(er.GetMessage(), "series_id") || strings.Contains(er.GetMessage(), "ada") {
		t.Fatalf("search by email across series: %v, want INVALID_ARGUMENT asking for series_id, naming no value", er)
	}
	if _, er := search("reader", &prismv1.SearchRequest{SeriesId: []byte("s1"), Tags: map[string]string{"email": tsEmail}}); !isCode(er, prismv1.Code_PERMISSION_DENIED) {
		t.Fatalf("search by email without read_pii: %v, want PERMISSION_DENIED", er)
	}
	if resp, er := search("reader", &prismv1.SearchRequest{Tags: map[string]string{"region": "us"}}); er != nil || len(resp.GetEvents()) != 1 || resp.GetEvents()[0].GetEvent().GetTags()["email"] != "b***@example.com" {
		t.Fatalf("search by region as reader = %v, %v; want e2, masked", resp, er)
	}

	// Prism's own tags cannot be written or searched.
	var w prismv1.WriteResponse
	forged := appendReq("s1", tsEvent(t0.Add(2), "e3", map[string]string{"~pii.email": "x"}, ""))
	if er := callAs(t, e, "writer", subjects.Write(tsNS, "append"), forged, &w); !isCode(er, prismv1.Code_INVALID_ARGUMENT) {
		t.Fatalf("append with a ~pii. tag: %v, want INVALID_ARGUMENT", er)
	}
	if _, er := search("support", &prismv1.SearchRequest{SeriesId: []byte("s1"), Tags: map[string]string{"~pii.email": "x"}}); !isCode(er, prismv1.Code_INVALID_ARGUMENT) {
		t.Fatalf("search by a ~pii. tag: %v, want INVALID_ARGUMENT", er)
	}

	// A retry with the same token is recognised through the keyed hash.
	retry := appendReq("s2", tsEvent(t0, "r1", map[string]string{"email": tsEmail}, tsPayload))
	retry.IdempotencyToken = "tok-ts"
	var a, b prismv1.WriteResponse
	if er := callAs(t, e, "writer", subjects.Write(tsNS, "append"), retry, &a); er != nil {
		t.Fatal(er)
	}
	if er := callAs(t, e, "writer", subjects.Write(tsNS, "append"), retry, &b); er != nil || !b.GetDuplicate() || b.GetSeq() != a.GetSeq() {
		t.Fatalf("retry = %v, %v; want the duplicate of %d", &b, er, a.GetSeq())
	}

	// The sealed email of s1 moved into series s3 does not open there.
	moved := &prismv1.TimeSeriesAppend{SeriesId: []byte("s3"), Events: []*prismv1.TimeSeriesEvent{{EventTime: first.GetEventTime(), EventId: []byte("m1"), Tags: first.GetTags()}}}
	movedSeq := publishForged(t, ts.js)(subjects.NewTimeSeriesEvent(subjects.EventMeta{Namespace: tsNS, Time: fixedNow}, moved))
	var got prismv1.EventsResponse
	er = callAs(t, e, "support", subjects.Read(tsNS, "range"), &prismv1.ReadRangeRequest{SeriesId: []byte("s3"), MinSeq: movedSeq}, &got)
	if !isCode(er, prismv1.Code_INTERNAL) || strings.Contains(er.GetMessage(), "ada") {
		t.Fatalf("range of a moved ciphertext: %v, want INTERNAL naming no value", er)
	}
}

func TestTimeSeriesPIIOmitAndForget(t *testing.T) {
	ts, e := piiTSEnv(t, namespaces.RedactOmit)
	seq := appendPII(t, e)
	evs := readRangeAs(t, e, "reader", seq)
	if len(evs) != 2 || len(evs[0].GetTags()) != 1 || evs[0].GetTags()["region"] != "eu" || evs[0].GetPayload() != nil {
		t.Fatalf("range as reader with omit = %v, want region only", evs)
	}
	if forgot, err := ts.keyring.Forget(context.Background(), tsNS, []byte("s1"), "test"); err != nil || !forgot {
		t.Fatalf("Forget = %v, %v", forgot, err)
	}
	evs = readRangeAs(t, e, "support", seq)
	if len(evs) != 2 || len(evs[0].GetTags()) != 1 || evs[0].GetTags()["region"] != "eu" || evs[0].GetPayload() != nil {
		t.Fatalf("range of a forgotten series as support = %v, want region only", evs)
	}
	var resp prismv1.EventsResponse
	if er := callAs(t, e, "support", subjects.Read(tsNS, "search"), &prismv1.SearchRequest{SeriesId: []byte("s1"), Tags: map[string]string{"email": tsEmail}, MinSeq: seq}, &resp); er != nil || len(resp.GetEvents()) != 0 {
		t.Fatalf("search by email of a forgotten series = %v, %v; want nothing", &resp, er)
	}
}

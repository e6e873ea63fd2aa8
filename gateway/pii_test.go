package gateway_test

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/pii"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

func testKEK(t testing.TB) pii.KEK {
	t.Helper()
	path := filepath.Join(t.TempDir(), "kek")
	if err := pii.GenerateKeyFile(path); err != nil {
		t.Fatal(err)
	}
	k, err := pii.LoadFileKEK(path)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const (
	testEmail = "ada.lovelace@example.com"
	testName  = "Ada Lovelace"
)

// piiEnv serves testNS with fields email (kind email), name (kind name)
// and nick (not PII), to "reader" (read), "support" (read and read_pii)
// and "writer" (write and read).
func piiEnv(t *testing.T, redaction string) (*env, *testAuditor) {
	t.Helper()
	aud := &testAuditor{}
	sec := testSecurity{grants: map[string][]auth.Permission{
		"writer":  {auth.Write, auth.Read},
		"reader":  {auth.Read},
		"support": {auth.Read, auth.ReadPII},
	}}
	e := newEnv(t, envConfig{
		kek:  testKEK(t),
		opts: []gateway.Option{gateway.WithSecurity(sec), gateway.WithAuditor(aud)},
		namespace: func(n *namespaces.Namespace) {
			n.Fields = namespaces.NewNames("email", "name", "nick")
			n.PII = namespaces.NewPIIFields(namespaces.PIIField{Name: "email", Kind: pii.KindEmail}, namespaces.PIIField{Name: "name", Kind: pii.KindName})
			n.PIIRedaction = redaction
		},
	})
	return e, aud
}

func profilePut(id string) *prismv1.PutRequest {
	return &prismv1.PutRequest{Id: []byte(id), Items: []*prismv1.Item{
		{Key: []byte("email"), Value: []byte(testEmail)},
		{Key: []byte("name"), Value: []byte(testName)},
		{Key: []byte("nick"), Value: []byte("countess")},
	}}
}

// items returns a get reply's items as key → value.
func items(resp *prismv1.GetResponse) map[string]string {
	out := map[string]string{}
	for _, it := range resp.GetItems() {
		out[string(it.GetKey())] = string(it.GetValue())
	}
	return out
}

func TestPIIIsSealedBeforeItIsStored(t *testing.T) {
	e, _ := piiEnv(t, "")
	var w prismv1.WriteResponse
	if er := callAs(t, e, "writer", subjects.Write(testNS, "put"), profilePut("u1"), &w); er != nil {
		t.Fatalf("put: %v", er)
	}
	// The stream holds ciphertext for the PII fields, plaintext for the rest.
	stored := storedMsg(t, e.js, w.GetSeq())
	for _, v := range []string{testEmail, testName, "Lovelace"} {
		if bytes.Contains(stored.Data, []byte(v)) {
			t.Fatalf("the stored event holds %q in plaintext", v)
		}
	}
	if !bytes.Contains(stored.Data, []byte("countess")) {
		t.Fatal("the non-PII field is missing from the event (the scan above could not fail)")
	}
	if h := stored.Header.Get(subjects.HeaderRequestHash); len(h) < 5 || h[:5] != "hmac-" {
		t.Errorf("request hash %q is not keyed", h)
	}
	ev, err := subjects.DecodeKeyValueEvent(stored.Subject, stored.Header, stored.Data)
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range ev.GetPut().GetItems() {
		_, err := pii.Inspect(it.GetValue())
		if sealed := err == nil; sealed != (string(it.GetKey()) != "nick") {
			t.Errorf("item %s: sealed %v", it.GetKey(), sealed)
		}
	}

	// Each caller sees what it may.
	get := &prismv1.GetRequest{Id: []byte("u1"), MinSeq: w.GetSeq()}
	for _, tc := range []struct {
		who  string
		want map[string]string
	}{
		{"support", map[string]string{"email": testEmail, "name": testName, "nick": "countess"}},
		{"writer", map[string]string{"email": "a***@example.com", "name": "A*** L***", "nick": "countess"}},
		{"reader", map[string]string{"email": "a***@example.com", "name": "A*** L***", "nick": "countess"}},
	} {
		var got prismv1.GetResponse
		if er := callAs(t, e, tc.who, subjects.Read(testNS, "get"), get, &got); er != nil {
			t.Fatalf("get as %s: %v", tc.who, er)
		}
		if g := items(&got); len(g) != len(tc.want) || g["email"] != tc.want["email"] || g["name"] != tc.want["name"] || g["nick"] != tc.want["nick"] {
			t.Errorf("get as %s = %v, want %v", tc.who, g, tc.want)
		}
	}

	// A retry with the same token is recognised through the keyed hash; a
	// different body under it is refused.
	retry := profilePut("u2")
	retry.IdempotencyToken = "tok-1"
	var first, again prismv1.WriteResponse
	if er := callAs(t, e, "writer", subjects.Write(testNS, "put"), retry, &first); er != nil {
		t.Fatal(er)
	}
	if er := callAs(t, e, "writer", subjects.Write(testNS, "put"), retry, &again); er != nil || !again.GetDuplicate() || again.GetSeq() != first.GetSeq() {
		t.Fatalf("retry = %v, %v; want the duplicate of seq %d", &again, er, first.GetSeq())
	}
	retry.Items[0].Value = []byte("other@example.com")
	if er := callAs(t, e, "writer", subjects.Write(testNS, "put"), retry, &again); !isCode(er, prismv1.Code_IDEMPOTENCY_MISMATCH) {
		t.Fatalf("the token with another body: %v, want IDEMPOTENCY_MISMATCH", er)
	}
}

func TestPIIRedactionOmit(t *testing.T) {
	e, _ := piiEnv(t, namespaces.RedactOmit)
	var w prismv1.WriteResponse
	if er := callAs(t, e, "writer", subjects.Write(testNS, "put"), profilePut("u1"), &w); er != nil {
		t.Fatal(er)
	}
	var got prismv1.GetResponse
	if er := callAs(t, e, "reader", subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte("u1"), MinSeq: w.GetSeq()}, &got); er != nil {
		t.Fatal(er)
	}
	if g := items(&got); len(g) != 1 || g["nick"] != "countess" {
		t.Errorf("get without read_pii = %v, want only nick", g)
	}
}

func TestPIIMovedCiphertextDoesNotOpen(t *testing.T) {
	e, _ := piiEnv(t, "")
	var w1, w2 prismv1.WriteResponse
	if er := callAs(t, e, "writer", subjects.Write(testNS, "put"), profilePut("u1"), &w1); er != nil {
		t.Fatal(er)
	}
	// Copy u1's sealed email into u2, as someone with backend access could.
	stored := storedMsg(t, e.js, w1.GetSeq())
	ev, err := subjects.DecodeKeyValueEvent(stored.Subject, stored.Header, stored.Data)
	if err != nil {
		t.Fatal(err)
	}
	moved := &prismv1.PutRequest{Id: []byte("u2"), Items: []*prismv1.Item{{Key: []byte("nick"), Value: ev.GetPut().GetItems()[0].GetValue()}}}
	if er := callAs(t, e, "writer", subjects.Write(testNS, "put"), moved, &w2); er != nil {
		t.Fatal(er)
	}
	// Stored under nick (not PII) it is returned as stored: ciphertext.
	var got prismv1.GetResponse
	if er := callAs(t, e, "support", subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte("u2"), MinSeq: w2.GetSeq()}, &got); er != nil {
		t.Fatal(er)
	}
	if bytes.Contains(got.GetItems()[0].GetValue(), []byte(testEmail)) {
		t.Fatal("a ciphertext moved to another field opened")
	}
	// Moved into another record's PII field by someone who can publish on
	// the stream, it does not decrypt: the read fails rather than show it.
	forged := &prismv1.KeyValueEvent{Id: []byte("u3"), Change: &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{
		Items: []*prismv1.Item{{Key: []byte("email"), Value: ev.GetPut().GetItems()[0].GetValue()}}}}}
	seq := publishForged(t, e.js)(subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: testNS, Time: fixedNow}, forged))
	for _, who := range []string{"support", "reader"} {
		er := callAs(t, e, who, subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte("u3"), MinSeq: seq}, &got)
		if !isCode(er, prismv1.Code_INTERNAL) || bytes.Contains([]byte(er.GetMessage()), []byte("ada")) {
			t.Errorf("get of a moved ciphertext as %s: %v, want INTERNAL naming no value", who, er)
		}
	}
}

func TestPIIWithoutKeyringIsRefused(t *testing.T) {
	e := newEnv(t, envConfig{namespace: func(n *namespaces.Namespace) {
		n.Fields = namespaces.NewNames("email")
		n.PII = namespaces.GenericPII("email")
	}})
	before := streamMsgs(t, e.js)
	var w prismv1.WriteResponse
	er := call(t, e.nc, subjects.Write(testNS, "put"), putReq("u1", "email", testEmail), &w, encJSON)
	if !isCode(er, prismv1.Code_FAILED_PRECONDITION) || !bytes.Contains([]byte(er.GetMessage()), []byte("--pii-kek")) {
		t.Fatalf("put without a keyring: %v, want FAILED_PRECONDITION naming --pii-kek", er)
	}
	if streamMsgs(t, e.js) != before {
		t.Fatal("a refused write was stored")
	}
}

func TestPIIForgottenRecordIsLeftOut(t *testing.T) {
	e, _ := piiEnv(t, "")
	var w prismv1.WriteResponse
	if er := callAs(t, e, "writer", subjects.Write(testNS, "put"), profilePut("u1"), &w); er != nil {
		t.Fatal(er)
	}
	if _, err := e.keyring.Forget(context.Background(), testNS, []byte("u1"), "dpo"); err != nil {
		t.Fatal(err)
	}
	var got prismv1.GetResponse
	if er := callAs(t, e, "support", subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte("u1"), MinSeq: w.GetSeq()}, &got); er != nil {
		t.Fatal(er)
	}
	if g := items(&got); len(g) != 1 || g["nick"] != "countess" {
		t.Errorf("get of a forgotten record = %v, want only the non-PII nick", g)
	}
}

func TestPIIMutateSealsEveryPut(t *testing.T) {
	e, _ := piiEnv(t, "")
	var w prismv1.WriteResponse
	req := mutateReq("tok-m", mPut("u1", "email", "one@example.com", nil), mPut("u2", "email", "two@example.com", nil))
	if er := callAs(t, e, "writer", subjects.Write(testNS, "mutate"), req, &w); er != nil {
		t.Fatal(er)
	}
	for _, m := range natstest.Msgs(t, e.js, subjects.Stream(testNS)) {
		if bytes.Contains(m.Data, []byte("@example.com")) {
			t.Fatalf("event %d holds an email in plaintext", m.Sequence)
		}
	}
	if er := callAs(t, e, "writer", subjects.Write(testNS, "mutate"), req, &w); er != nil || !w.GetDuplicate() {
		t.Fatalf("retried mutate: %v, %v; want a duplicate", &w, er)
	}
	for id, want := range map[string]string{"u1": "one@example.com", "u2": "two@example.com"} {
		var got prismv1.GetResponse
		if er := callAs(t, e, "support", subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte(id), MinSeq: w.GetSeq()}, &got); er != nil {
			t.Fatal(er)
		}
		if g := items(&got); g["email"] != want {
			t.Errorf("%s = %v, want email %s", id, g, want)
		}
	}
}

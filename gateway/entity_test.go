package gateway_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/examples/userprofile"
	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/pii"
	"github.com/prism-data/prism/projectors"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// enEnv is a gateway serving the entity namespace testNS of the example's
// UserProfile (strong consistency), projected by a real projector into a
// real SQLite store, with a keyring for its PII fields, to "writer"
// (write, read), "reader" (read) and "support" (read, read_pii).
type enEnv struct {
	nc *nats.Conn
	js jetstream.JetStream
	// dir holds the SQLite files.
	dir string
	aud *testAuditor
}

func newEnEnv(t *testing.T) *enEnv {
	t.Helper()
	cfg, err := namespaces.EntityConfigOf((&userprofile.UserProfile{}).ProtoReflect().Descriptor())
	if err != nil {
		t.Fatal(err)
	}
	return newEnEnvOf(t, cfg)
}

// newEnEnvOf is newEnEnv for the message of cfg.
func newEnEnvOf(t *testing.T, cfg namespaces.EntityConfig) *enEnv {
	t.Helper()
	ctx := context.Background()
	nc, js := natstest.Start(t)
	ns := namespaces.Namespace{Name: testNS, Abstraction: namespaces.AbstractionEntity, Backend: "sqlite", Consistency: namespaces.Strong, Entity: cfg}
	if err := namespaces.EnsureStreams(ctx, js, ns); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "en.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = store.Close() })
	proj, err := projectors.NewEntity(js, testNS, "sqlite", store, projectors.WithBatchSize(16))
	if err != nil {
		t.Fatal(err)
	}
	if err := proj.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = proj.Stop(context.Background()) })
	keyring, err := pii.OpenKeyring(ctx, js, pii.KeyringConfig{KEK: testKEK(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(keyring.Close)
	sec := testSecurity{grants: map[string][]auth.Permission{
		"writer":  {auth.Write, auth.Read},
		"reader":  {auth.Read},
		"support": {auth.Read, auth.ReadPII},
	}}
	aud := &testAuditor{}
	gw, err := gateway.New(nc, gateway.WithKeyring(keyring), gateway.WithSecurity(sec), gateway.WithAuditor(aud), gateway.WithConsistencyWait(5*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if err := gw.AddEntityNamespace(ns, store, proj); err != nil {
		t.Fatal(err)
	}
	if err := gw.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = gw.Drain(context.Background()) })
	return &enEnv{nc: nc, js: js, dir: dir, aud: aud}
}

// send sends body as principal in encoding e and returns the reply.
func (e *enEnv) send(t *testing.T, principal, op string, body []byte, enc enc) *nats.Msg {
	t.Helper()
	kind, name, _ := strings.Cut(op, ".")
	subject := subjects.Write(testNS, name)
	if kind == "read" {
		subject = subjects.Read(testNS, name)
	}
	msg := nats.NewMsg(subject)
	msg.Data = body
	msg.Header.Set(testPrincipalHeader, principal)
	if enc == encProto {
		msg.Header.Set(subjects.HeaderContentTypeReq, subjects.ContentTypeProto)
	}
	reply, err := e.nc.RequestMsg(msg, 10*time.Second)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return reply
}

// jsonPut puts the protojson record as writer and returns the reply's
// error code ("" for success) and the write's seq.
func (e *enEnv) jsonPut(t *testing.T, record string) (string, uint64) {
	t.Helper()
	reply := e.send(t, "writer", "write.put", []byte(`{"record":`+record+`}`), encJSON)
	if code := reply.Header.Get(subjects.HeaderErrorCode); code != "" {
		return code, 0
	}
	var w prismv1.WriteResponse
	if err := protojson.Unmarshal(reply.Data, &w); err != nil {
		t.Fatal(err)
	}
	return "", w.GetSeq()
}

// jsonGet gets user as principal: the record and revision, or the code.
func (e *enEnv) jsonGet(t *testing.T, principal, user string) (*userprofile.UserProfile, uint64, string) {
	t.Helper()
	reply := e.send(t, principal, "read.get", fmt.Appendf(nil, `{"key":%q}`, user), encJSON)
	if code := reply.Header.Get(subjects.HeaderErrorCode); code != "" {
		return nil, 0, code
	}
	var resp struct {
		Record   json.RawMessage
		Revision string
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		t.Fatalf("reply %s: %v", reply.Data, err)
	}
	var p userprofile.UserProfile
	if err := protojson.Unmarshal(resp.Record, &p); err != nil {
		t.Fatalf("record %s is not protojson of UserProfile: %v", resp.Record, err)
	}
	var rev uint64
	fmt.Sscan(resp.Revision, &rev)
	return &p, rev, ""
}

func TestEntityJSONCallersSendTheirOwnMessage(t *testing.T) {
	e := newEnEnv(t)
	code, seq := e.jsonPut(t, `{"userId":"u1","email":"ada@example.com","name":"Ada Lovelace","createdAt":"1815"}`)
	if code != "" {
		t.Fatalf("put: %s", code)
	}
	got, rev, code := e.jsonGet(t, "support", "u1")
	want := &userprofile.UserProfile{UserId: "u1", Email: "ada@example.com", Name: "Ada Lovelace", CreatedAt: 1815}
	if code != "" || !proto.Equal(got, want) || rev != seq {
		t.Errorf("get as support = %v rev %d (%s), want %v rev %d", got, rev, code, want, seq)
	}
	// The event is on the record's subject and holds no PII in plaintext.
	stored, err := e.js.Stream(context.Background(), subjects.Stream(testNS))
	if err != nil {
		t.Fatal(err)
	}
	m, err := stored.GetMsg(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	if m.Subject != subjects.EntityEvent(testNS, []byte("u1")) || m.Header.Get(subjects.HeaderType) != subjects.TypeEntityPut {
		t.Errorf("event on %s type %s", m.Subject, m.Header.Get(subjects.HeaderType))
	}
	for _, plain := range []string{"ada@example.com", "Ada Lovelace"} {
		if strings.Contains(string(m.Data), plain) {
			t.Errorf("the event holds %q in plaintext", plain)
		}
	}
	// Nor does the SQLite projection (the get above was served from it).
	files, _ := filepath.Glob(filepath.Join(e.dir, "en.db*"))
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, plain := range []string{"ada@example.com", "Ada Lovelace"} {
			if strings.Contains(string(b), plain) {
				t.Errorf("%s holds %q in plaintext", filepath.Base(f), plain)
			}
		}
	}
	if len(files) == 0 {
		t.Error("no SQLite files to scan")
	}
	// A caller without read_pii sees the masks.
	masked, _, code := e.jsonGet(t, "reader", "u1")
	if code != "" || masked.GetEmail() != pii.Mask(pii.KindEmail, want.Email) || masked.GetName() != pii.Mask(pii.KindName, want.Name) || masked.GetCreatedAt() != 1815 {
		t.Errorf("get as reader = %v (%s), want masked email and name", masked, code)
	}
	if masked.GetEmail() == want.Email || masked.GetName() == want.Name {
		t.Errorf("a reader without read_pii sees %v", masked)
	}
}

func TestEntityRefusesWhatIsNotTheMessage(t *testing.T) {
	e := newEnEnv(t)
	for _, c := range []struct {
		name, record string
	}{
		{"unknown field", `{"userId":"u1","nickname":"x"}`},
		{"wrong type", `{"userId":"u1","createdAt":"yesterday"}`},
		{"string for a number", `{"userId":"u1","createdAt":{"a":1}}`},
		{"no primary key", `{"email":"a@example.com"}`},
		{"not an object", `"u1"`},
	} {
		if code, _ := e.jsonPut(t, c.record); code != prismv1.Code_INVALID_ARGUMENT.String() {
			t.Errorf("%s: %s, want INVALID_ARGUMENT", c.name, code)
		}
	}
	rec, _ := proto.Marshal(&userprofile.UserProfile{UserId: "u1"})
	for _, c := range []struct {
		name   string
		record []byte
	}{
		{"unknown field number", protowire.AppendBytes(protowire.AppendTag(rec, 9, protowire.BytesType), []byte("x"))},
		{"wrong wire type", protowire.AppendVarint(protowire.AppendTag(rec, 2, protowire.VarintType), 7)},
	} {
		body, _ := proto.Marshal(&prismv1.EntityPutRequest{Record: c.record})
		reply := e.send(t, "writer", "write.put", body, encProto)
		if code := reply.Header.Get(subjects.HeaderErrorCode); code != prismv1.Code_INVALID_ARGUMENT.String() {
			t.Errorf("binary %s: %q, want INVALID_ARGUMENT", c.name, code)
		}
	}
	if n := len(natstest.Msgs(t, e.js, subjects.Stream(testNS))); n != 0 {
		t.Errorf("refused puts stored %d events", n)
	}
}

func TestEntityQueryByIndex(t *testing.T) {
	e := newEnEnv(t)
	created := []int64{-5, 3, -1, 0, 7, 3, -300, 42, 3, 1 << 40}
	for i, at := range created {
		if code, _ := e.jsonPut(t, fmt.Sprintf(`{"userId":"u%d","createdAt":"%d"}`, i, at)); code != "" {
			t.Fatalf("put u%d: %s", i, code)
		}
	}
	query := func(t *testing.T, req *prismv1.EntityQueryRequest) ([]string, string) {
		t.Helper()
		var ids []string
		for pages := 0; ; pages++ {
			b, _ := protojson.Marshal(req)
			reply := e.send(t, "reader", "read.query", b, encJSON)
			if code := reply.Header.Get(subjects.HeaderErrorCode); code != "" {
				return nil, code
			}
			var resp struct {
				Records []struct {
					Record json.RawMessage
				}
				NextPageToken string
			}
			if err := json.Unmarshal(reply.Data, &resp); err != nil {
				t.Fatal(err)
			}
			for _, r := range resp.Records {
				var p userprofile.UserProfile
				if err := protojson.Unmarshal(r.Record, &p); err != nil {
					t.Fatal(err)
				}
				ids = append(ids, fmt.Sprintf("%s:%d", p.UserId, p.CreatedAt))
			}
			if resp.NextPageToken == "" || pages > 20 {
				return ids, ""
			}
			req.PageToken = resp.NextPageToken
		}
	}
	for _, c := range []struct {
		name string
		req  *prismv1.EntityQueryRequest
		want string
	}{
		{"range across zero", &prismv1.EntityQueryRequest{Index: "created_at", From: "-5", To: "4", PageSize: 2}, "[u0:-5 u2:-1 u3:0 u1:3 u5:3 u8:3]"},
		{"descending", &prismv1.EntityQueryRequest{Index: "created_at", From: "3", Descending: true, PageSize: 3}, "[u9:1099511627776 u7:42 u4:7 u8:3 u5:3 u1:3]"},
		{"equal", &prismv1.EntityQueryRequest{Index: "created_at", Equal: proto.String("3")}, "[u1:3 u5:3 u8:3]"},
		{"all", &prismv1.EntityQueryRequest{Index: "created_at", To: "-4"}, "[u6:-300 u0:-5]"},
		{"empty range", &prismv1.EntityQueryRequest{Index: "created_at", From: "10", To: "5"}, "[]"},
	} {
		got, code := query(t, c.req)
		if code != "" || fmt.Sprint(got) != c.want {
			t.Errorf("%s: %v (%s), want %s", c.name, got, code, c.want)
		}
	}
	for _, c := range []struct {
		name string
		req  *prismv1.EntityQueryRequest
	}{
		{"unknown index", &prismv1.EntityQueryRequest{Index: "email"}},
		{"bad bound", &prismv1.EntityQueryRequest{Index: "created_at", From: "soon"}},
		{"equal and range", &prismv1.EntityQueryRequest{Index: "created_at", From: "1", Equal: proto.String("3")}},
		{"no index", &prismv1.EntityQueryRequest{}},
		{"bad token", &prismv1.EntityQueryRequest{Index: "created_at", PageToken: "AA"}},
	} {
		if _, code := query(t, c.req); code != prismv1.Code_INVALID_ARGUMENT.String() {
			t.Errorf("%s: %q, want INVALID_ARGUMENT", c.name, code)
		}
	}
}

func TestEntityDelete(t *testing.T) {
	e := newEnEnv(t)
	if code, _ := e.jsonPut(t, `{"userId":"u1","createdAt":"1"}`); code != "" {
		t.Fatal(code)
	}
	if acc, _ := e.aud.last(t); acc.Op != "write.put" || fmt.Sprintf("%q", acc.IDs) != `["u1"]` || acc.Count != 1 || acc.Principal.Name != "writer" {
		t.Errorf("the put was audited as %+v, want write.put of u1 by writer", acc)
	}
	reply := e.send(t, "writer", "write.delete", []byte(`{"key":"u1"}`), encJSON)
	if code := reply.Header.Get(subjects.HeaderErrorCode); code != "" {
		t.Fatalf("delete: %s", code)
	}
	if acc, _ := e.aud.last(t); acc.Op != "write.delete" || fmt.Sprintf("%q", acc.IDs) != `["u1"]` {
		t.Errorf("the delete was audited as %+v", acc)
	}
	if _, _, code := e.jsonGet(t, "reader", "u1"); code != prismv1.Code_NOT_FOUND.String() {
		t.Errorf("get after delete: %q, want NOT_FOUND", code)
	}
	reply = e.send(t, "reader", "read.query", []byte(`{"index":"created_at"}`), encJSON)
	if string(reply.Data) != "{}" {
		t.Errorf("query after delete: %s, want no records", reply.Data)
	}
	reply = e.send(t, "writer", "write.scan", nil, encJSON)
	if code := reply.Header.Get(subjects.HeaderErrorCode); code != prismv1.Code_UNIMPLEMENTED.String() {
		t.Errorf("a keyvalue operation on an entity namespace: %q, want UNIMPLEMENTED", code)
	}
}

func TestEntityLineage(t *testing.T) {
	e := newEnEnv(t)
	code, seq := e.jsonPut(t, `{"userId":"u1","createdAt":"1"}`)
	if code != "" {
		t.Fatal(code)
	}
	stream, err := e.js.Stream(context.Background(), subjects.Stream(testNS))
	if err != nil {
		t.Fatal(err)
	}
	stored, err := stream.GetMsg(context.Background(), seq)
	if err != nil {
		t.Fatal(err)
	}
	for _, op := range []string{"read.get", "read.query"} {
		var req proto.Message = &prismv1.EntityGetRequest{Key: "u1", Lineage: true}
		if op == "read.query" {
			req = &prismv1.EntityQueryRequest{Index: "created_at", Lineage: true}
		}
		reply := e.send(t, "reader", op, mustMarshal(t, req), encProto)
		var l *prismv1.EntityLineage
		if op == "read.get" {
			var resp prismv1.EntityGetResponse
			if err := proto.Unmarshal(reply.Data, &resp); err != nil {
				t.Fatal(err)
			}
			l = resp.GetLineage()
		} else {
			var resp prismv1.EntityQueryResponse
			if err := proto.Unmarshal(reply.Data, &resp); err != nil || len(resp.GetRecords()) != 1 {
				t.Fatalf("query: %v %v", resp.GetRecords(), err)
			}
			l = resp.GetRecords()[0].GetLineage()
		}
		if l.GetSeq() != seq || l.GetEventId() != stored.Header.Get(subjects.HeaderID) || l.GetPrincipal() != "writer" ||
			l.GetTime().AsTime().Format(time.RFC3339Nano) != stored.Header.Get(subjects.HeaderTime) {
			t.Errorf("%s lineage = %v, want seq %d, event %s, principal writer, time %s", op, l, seq, stored.Header.Get(subjects.HeaderID), stored.Header.Get(subjects.HeaderTime))
		}
	}
	// Without asking, no lineage.
	reply := e.send(t, "reader", "read.get", []byte(`{"key":"u1"}`), encJSON)
	if strings.Contains(string(reply.Data), "lineage") {
		t.Errorf("a get without lineage returned %s", reply.Data)
	}
}

func mustMarshal(t *testing.T, m proto.Message) []byte {
	t.Helper()
	b, err := proto.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

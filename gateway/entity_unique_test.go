package gateway_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/namespaces"
	prismopts "github.com/prism-data/prism/proto/prism"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// testField is a field of a message testMessage builds.
type testField struct {
	name       string
	typ        descriptorpb.FieldDescriptorProto_Type
	index, pii string
}

// testMessage is the entity section of message test.<name> with fields
// numbered from 1, its file importing prism/options.proto.
func testMessage(t *testing.T, name string, fields ...testField) namespaces.EntityConfig {
	t.Helper()
	msg := &descriptorpb.DescriptorProto{Name: proto.String(name)}
	for i, f := range fields {
		opts := &descriptorpb.FieldOptions{}
		if f.index != "" {
			proto.SetExtension(opts, prismopts.E_Index, f.index)
		}
		if f.pii != "" {
			proto.SetExtension(opts, prismopts.E_Pii, f.pii)
		}
		msg.Field = append(msg.Field, &descriptorpb.FieldDescriptorProto{Name: proto.String(f.name), JsonName: proto.String(f.name), Number: proto.Int32(int32(i + 1)),
			Type: f.typ.Enum(), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Options: opts})
	}
	file := &descriptorpb.FileDescriptorProto{
		Name: proto.String("test/" + name + ".proto"), Package: proto.String("test"), Syntax: proto.String("proto3"),
		Dependency: []string{"prism/options.proto"}, MessageType: []*descriptorpb.DescriptorProto{msg},
	}
	b, err := proto.Marshal(&descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{
		protodesc.ToFileDescriptorProto(descriptorpb.File_google_protobuf_descriptor_proto),
		protodesc.ToFileDescriptorProto(prismopts.File_prism_options_proto),
		file,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return namespaces.EntityConfig{Message: "test." + name, DescriptorSet: base64.StdEncoding.EncodeToString(b)}
}

const (
	fString = descriptorpb.FieldDescriptorProto_TYPE_STRING
	fInt64  = descriptorpb.FieldDescriptorProto_TYPE_INT64
)

// accountSchema is test.Account: id (primary), handle (unique:handle), n
// (secondary).
func accountSchema(t *testing.T) namespaces.EntityConfig {
	return testMessage(t, "Account", testField{"id", fString, "primary", ""}, testField{"handle", fString, "unique:handle", ""}, testField{"n", fInt64, "secondary", ""})
}

func TestEntityUniqueIndex(t *testing.T) {
	e := newEnEnvOf(t, accountSchema(t))
	put := func(id, handle, token string) string {
		t.Helper()
		body := fmt.Sprintf(`{"record":{"id":%q,"handle":%q},"idempotencyToken":%q}`, id, handle, token)
		reply := e.send(t, "writer", "write.put", []byte(body), encJSON)
		return reply.Header.Get(subjects.HeaderErrorCode)
	}
	conflict := prismv1.Code_CONFLICT.String()
	steps := []struct {
		id, handle, want string
	}{
		{"a1", "ada", ""},
		{"a2", "ada", conflict},      // a1 holds it
		{"a1", "ada", ""},            // its own value again
		{"a1", "lovelace", ""},       // a1 lets ada go
		{"a2", "ada", ""},            // a1's claim on ada is stale
		{"a3", "lovelace", conflict}, // a1 holds it
	}
	for i, s := range steps {
		if got := put(s.id, s.handle, ""); got != s.want {
			t.Fatalf("step %d: put %s handle %s: %q, want %q", i, s.id, s.handle, got, s.want)
		}
	}
	if reply := e.send(t, "writer", "write.delete", []byte(`{"key":"a1"}`), encJSON); reply.Header.Get(subjects.HeaderErrorCode) != "" {
		t.Fatal("delete a1")
	}
	if got := put("a3", "lovelace", ""); got != "" {
		t.Errorf("put a3 lovelace after a1 was deleted: %q", got)
	}

	// A retry with the same token is the same write; with another body it
	// is refused.
	first := e.send(t, "writer", "write.put", []byte(`{"record":{"id":"a4","handle":"byron"},"idempotencyToken":"tok-1"}`), encJSON)
	again := e.send(t, "writer", "write.put", []byte(`{"record":{"id":"a4","handle":"byron"},"idempotencyToken":"tok-1"}`), encJSON)
	var w1, w2 prismv1.WriteResponse
	if err := protojson.Unmarshal(first.Data, &w1); err != nil {
		t.Fatalf("first put: %s", first.Data)
	}
	if err := protojson.Unmarshal(again.Data, &w2); err != nil || w2.GetSeq() != w1.GetSeq() || !w2.GetDuplicate() {
		t.Errorf("retried put = %s, want seq %d as a duplicate", again.Data, w1.GetSeq())
	}
	if got := put("a4", "other", "tok-1"); got != prismv1.Code_IDEMPOTENCY_MISMATCH.String() {
		t.Errorf("token reused with another body: %q, want IDEMPOTENCY_MISMATCH", got)
	}

	// The unique index is an index: the projection (which skipped the
	// claims) answers queries by it.
	owners := map[string]string{}
	for _, handle := range []string{"ada", "lovelace", "byron"} {
		reply := e.send(t, "reader", "read.query", fmt.Appendf(nil, `{"index":"handle","equal":%q}`, handle), encJSON)
		var resp struct {
			Records []struct {
				Record struct{ ID string }
			}
		}
		if err := json.Unmarshal(reply.Data, &resp); err != nil || len(resp.Records) != 1 {
			t.Fatalf("query handle %s: %s", handle, reply.Data)
		}
		owners[handle] = resp.Records[0].Record.ID
	}
	if fmt.Sprint(owners) != "map[ada:a2 byron:a4 lovelace:a3]" {
		t.Errorf("owners %v", owners)
	}
}

func TestEntityUniqueIndexUnderConcurrentPuts(t *testing.T) {
	e := newEnEnvOf(t, accountSchema(t))
	const n = 8
	codes := make(chan string, n)
	for i := range n {
		go func() {
			msg := nats.NewMsg(subjects.Write(testNS, "put"))
			msg.Data = fmt.Appendf(nil, `{"record":{"id":"b%d","handle":"race"}}`, i)
			msg.Header.Set(testPrincipalHeader, "writer")
			reply, err := e.nc.RequestMsg(msg, 10*time.Second)
			if err != nil {
				codes <- err.Error()
				return
			}
			codes <- reply.Header.Get(subjects.HeaderErrorCode)
		}()
	}
	won := 0
	for range n {
		switch code := <-codes; code {
		case "":
			won++
		case prismv1.Code_CONFLICT.String():
		default:
			t.Errorf("a racing put got %q", code)
		}
	}
	if won != 1 {
		t.Errorf("%d of %d racing puts of one unique value were stored, want 1", won, n)
	}
}

// An index on a PII field is a blind index: equality and uniqueness work,
// ranges are refused, and neither the stream (claim subjects included)
// nor the SQLite files hold the value.
func TestEntityBlindIndexOnPII(t *testing.T) {
	e := newEnEnvOf(t, testMessage(t, "Member", testField{"id", fString, "primary", ""}, testField{"email", fString, "unique:email", "email"}))
	const email = "ada.blind@example.com"
	put := func(id string) string {
		reply := e.send(t, "writer", "write.put", fmt.Appendf(nil, `{"record":{"id":%q,"email":%q}}`, id, email), encJSON)
		return reply.Header.Get(subjects.HeaderErrorCode)
	}
	if code := put("m1"); code != "" {
		t.Fatalf("put m1: %s", code)
	}
	if code := put("m2"); code != prismv1.Code_CONFLICT.String() {
		t.Errorf("put m2 with m1's email: %q, want CONFLICT", code)
	}
	for principal, want := range map[string]string{"support": email, "reader": "a***@example.com"} {
		reply := e.send(t, principal, "read.query", fmt.Appendf(nil, `{"index":"email","equal":%q}`, email), encJSON)
		var resp struct {
			Records []struct {
				Record struct{ ID, Email string }
			}
		}
		if err := json.Unmarshal(reply.Data, &resp); err != nil || len(resp.Records) != 1 || resp.Records[0].Record.ID != "m1" || resp.Records[0].Record.Email != want {
			t.Errorf("query by email as %s: %s, want m1 with %s", principal, reply.Data, want)
		}
	}
	reply := e.send(t, "reader", "read.query", []byte(`{"index":"email","from":"a","to":"b"}`), encJSON)
	if code := reply.Header.Get(subjects.HeaderErrorCode); code != prismv1.Code_INVALID_ARGUMENT.String() {
		t.Errorf("a range query of a blind index: %q, want INVALID_ARGUMENT", code)
	}
	needles := []string{email, base64.StdEncoding.EncodeToString([]byte(email)), "ada~2Eblind"}
	for _, m := range natstest.Msgs(t, e.js, subjects.Stream(testNS)) {
		for _, n := range needles {
			if strings.Contains(m.Subject, n) || strings.Contains(string(m.Data), n) {
				t.Errorf("stream seq %d (%s) holds the email", m.Sequence, m.Subject)
			}
		}
	}
	files, _ := filepath.Glob(filepath.Join(e.dir, "en.db*"))
	for _, f := range files {
		b, _ := os.ReadFile(f)
		for _, n := range needles {
			if strings.Contains(string(b), n) {
				t.Errorf("%s holds the email", filepath.Base(f))
			}
		}
	}
}

// A composite index orders records by the tuple of its fields: a prefix
// of values by equality, then a range (or equal) on the next field.
func TestEntityCompositeIndex(t *testing.T) {
	e := newEnEnvOf(t, testMessage(t, "Employee", testField{"id", fString, "primary", ""},
		testField{"team", fString, "secondary:by_team_age", ""}, testField{"age", fInt64, "secondary:by_team_age", ""}))
	people := []struct {
		id, team string
		age      int
	}{
		{"p1", "eng", 30}, {"p2", "eng", -2}, {"p3", "engineering", 25}, {"p4", "eng", 41},
		{"p5", "ops", 30}, {"p6", "eng", 30}, {"p7", "eng\u0000x", 1}, {"p8", "", 5},
	}
	for _, p := range people {
		body, _ := json.Marshal(map[string]any{"record": map[string]any{"id": p.id, "team": p.team, "age": fmt.Sprint(p.age)}})
		if reply := e.send(t, "writer", "write.put", body, encJSON); reply.Header.Get(subjects.HeaderErrorCode) != "" {
			t.Fatalf("put %s: %s", p.id, reply.Data)
		}
	}
	query := func(req *prismv1.EntityQueryRequest) (string, string) {
		t.Helper()
		req.Index = "by_team_age"
		var ids []string
		for range 20 {
			b, _ := protojson.Marshal(req)
			reply := e.send(t, "reader", "read.query", b, encJSON)
			if code := reply.Header.Get(subjects.HeaderErrorCode); code != "" {
				return "", code
			}
			var resp struct {
				Records []struct {
					Record struct{ ID string }
				}
				NextPageToken string
			}
			if err := json.Unmarshal(reply.Data, &resp); err != nil {
				t.Fatal(err)
			}
			for _, r := range resp.Records {
				ids = append(ids, r.Record.ID)
			}
			if resp.NextPageToken == "" {
				break
			}
			req.PageToken = resp.NextPageToken
		}
		return fmt.Sprint(ids), ""
	}
	for _, c := range []struct {
		name string
		req  *prismv1.EntityQueryRequest
		want string
	}{
		{"one team by age", &prismv1.EntityQueryRequest{Prefix: []string{"eng"}, PageSize: 2}, "[p2 p1 p6 p4]"},
		{"one team, an age range", &prismv1.EntityQueryRequest{Prefix: []string{"eng"}, From: "0", To: "41"}, "[p1 p6]"},
		{"one team, one age", &prismv1.EntityQueryRequest{Prefix: []string{"eng"}, Equal: proto.String("30")}, "[p1 p6]"},
		{"descending", &prismv1.EntityQueryRequest{Prefix: []string{"eng"}, Descending: true, PageSize: 3}, "[p4 p6 p1 p2]"},
		{"a range of teams", &prismv1.EntityQueryRequest{From: "eng", To: "ops"}, "[p2 p1 p6 p4 p7 p3]"},
		{"every record in tuple order", &prismv1.EntityQueryRequest{}, "[p8 p2 p1 p6 p4 p7 p3 p5]"},
		{"the empty team", &prismv1.EntityQueryRequest{Equal: proto.String("")}, "[p8]"},
	} {
		if got, code := query(c.req); code != "" || got != c.want {
			t.Errorf("%s: %s (%s), want %s", c.name, got, code, c.want)
		}
	}
	if _, code := query(&prismv1.EntityQueryRequest{Prefix: []string{"eng", "30"}}); code != prismv1.Code_INVALID_ARGUMENT.String() {
		t.Errorf("a prefix of every field: %q, want INVALID_ARGUMENT", code)
	}
	if _, code := query(&prismv1.EntityQueryRequest{Prefix: []string{"eng"}, From: "old"}); code != prismv1.Code_INVALID_ARGUMENT.String() {
		t.Errorf("a bound that is not a number: %q, want INVALID_ARGUMENT", code)
	}
}

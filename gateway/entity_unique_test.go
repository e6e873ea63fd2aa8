package gateway_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/prism-data/prism/namespaces"
	prismopts "github.com/prism-data/prism/proto/prism"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// accountSchema is the entity section of message test.Account: id
// (primary), handle (unique:handle), n (secondary).
func accountSchema(t *testing.T) namespaces.EntityConfig {
	t.Helper()
	field := func(name string, num int32, typ descriptorpb.FieldDescriptorProto_Type, index string) *descriptorpb.FieldDescriptorProto {
		opts := &descriptorpb.FieldOptions{}
		proto.SetExtension(opts, prismopts.E_Index, index)
		return &descriptorpb.FieldDescriptorProto{Name: proto.String(name), JsonName: proto.String(name), Number: proto.Int32(num), Type: typ.Enum(),
			Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Options: opts}
	}
	file := &descriptorpb.FileDescriptorProto{
		Name: proto.String("test/account.proto"), Package: proto.String("test"), Syntax: proto.String("proto3"),
		Dependency: []string{"prism/options.proto"},
		MessageType: []*descriptorpb.DescriptorProto{{Name: proto.String("Account"), Field: []*descriptorpb.FieldDescriptorProto{
			field("id", 1, descriptorpb.FieldDescriptorProto_TYPE_STRING, "primary"),
			field("handle", 2, descriptorpb.FieldDescriptorProto_TYPE_STRING, "unique:handle"),
			field("n", 3, descriptorpb.FieldDescriptorProto_TYPE_INT64, "secondary"),
		}}},
	}
	b, err := proto.Marshal(&descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{
		protodesc.ToFileDescriptorProto(descriptorpb.File_google_protobuf_descriptor_proto),
		protodesc.ToFileDescriptorProto(prismopts.File_prism_options_proto),
		file,
	}})
	if err != nil {
		t.Fatal(err)
	}
	return namespaces.EntityConfig{Message: "test.Account", DescriptorSet: base64.StdEncoding.EncodeToString(b)}
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

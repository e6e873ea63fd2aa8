package node_test

import (
	"context"
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/prism-data/prism/examples/userprofile"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	"github.com/prism-data/prism/node/nodetest"
	prismopts "github.com/prism-data/prism/proto/prism"
	"github.com/prism-data/prism/subjects"
)

// profileSchema is the entity section of the example's UserProfile,
// changed by change (a new field, a new index).
func profileSchema(t *testing.T, change func(*descriptorpb.DescriptorProto)) namespaces.EntityConfig {
	t.Helper()
	cfg, err := namespaces.EntityConfigOf((&userprofile.UserProfile{}).ProtoReflect().Descriptor())
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := base64.StdEncoding.DecodeString(cfg.DescriptorSet)
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(raw, &set); err != nil {
		t.Fatal(err)
	}
	f := set.File[len(set.File)-1]
	if f.GetName() != userprofile.File_userprofile_userprofile_proto.Path() {
		t.Fatalf("last file of the set is %s", f.GetName())
	}
	change(f.MessageType[0])
	if _, err := protodesc.NewFiles(&set); err != nil {
		t.Fatal(err)
	}
	b, _ := proto.Marshal(&set)
	cfg.DescriptorSet = base64.StdEncoding.EncodeToString(b)
	return cfg
}

func noteField(index string) func(*descriptorpb.DescriptorProto) {
	return func(m *descriptorpb.DescriptorProto) {
		opts := &descriptorpb.FieldOptions{}
		if index != "" {
			proto.SetExtension(opts, prismopts.E_Index, index)
		}
		m.Field = append(m.Field, &descriptorpb.FieldDescriptorProto{Name: proto.String("note"), JsonName: proto.String("note"), Number: proto.Int32(9),
			Type: descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(), Label: descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), Options: opts})
	}
}

// A new plain field of an entity namespace's message is a live apply:
// the gateway decodes it at once, and records written before still read.
// A new index is refused, with the reason.
func TestEntitySchemaEvolution(t *testing.T) {
	ctx := context.Background()
	n, admin, _ := nodetest.Start(t, node.Config{})
	ns := namespaces.Namespace{Name: "profiles", Abstraction: namespaces.AbstractionEntity, Backend: "sqlite", Consistency: namespaces.Strong,
		Entity: profileSchema(t, func(*descriptorpb.DescriptorProto) {})}
	res, err := admin.Apply(ctx, ns, 0, "test")
	if err != nil {
		t.Fatal(err)
	}
	nodetest.WaitServing(t, admin, ns.Name, res.Revision)
	nc, err := nats.Connect(n.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	req := func(op, body string) (string, string) {
		t.Helper()
		kind, name, _ := strings.Cut(op, ".")
		subject := subjects.Write(ns.Name, name)
		if kind == "read" {
			subject = subjects.Read(ns.Name, name)
		}
		reply, err := nc.Request(subject, []byte(body), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return reply.Header.Get(subjects.HeaderErrorCode), string(reply.Data)
	}
	if code, _ := req("write.put", `{"record":{"userId":"u1","createdAt":"1","note":"hi"}}`); code != "INVALID_ARGUMENT" {
		t.Fatalf("a field the message does not have yet: %q, want INVALID_ARGUMENT", code)
	}
	if code, body := req("write.put", `{"record":{"userId":"u1","createdAt":"1"}}`); code != "" {
		t.Fatalf("put: %s %s", code, body)
	}

	ns.Entity = profileSchema(t, noteField(""))
	res, err = admin.Apply(ctx, ns, res.Revision, "test")
	if err != nil {
		t.Fatalf("a new plain field: %v", err)
	}
	nodetest.WaitServing(t, admin, ns.Name, res.Revision)
	// Served at revision 2 means the gateway has its schema.
	if code, body := req("write.put", `{"record":{"userId":"u2","createdAt":"2","note":"hi"}}`); code != "" {
		t.Fatalf("put with the new field after the apply: %s %s", code, body)
	}
	if code, body := req("read.get", `{"key":"u2"}`); code != "" || !strings.Contains(body, `"note":"hi"`) {
		t.Errorf("get u2 = %s %s, want the note", code, body)
	}
	if code, body := req("read.get", `{"key":"u1"}`); code != "" || !strings.Contains(body, `"userId":"u1"`) {
		t.Errorf("a record written before the change: %s %s", code, body)
	}

	ns.Entity = profileSchema(t, noteField("secondary"))
	_, err = admin.Apply(ctx, ns, res.Revision, "test")
	if err == nil || !strings.Contains(err.Error(), "indexes") || !strings.Contains(err.Error(), "does not yet fill a new or changed index") {
		t.Errorf("a new index: %v, want a refusal naming the indexes", err)
	}
}

package namespaces_test

import (
	"encoding/base64"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/prism-data/prism/namespaces"
	prismopts "github.com/prism-data/prism/proto/prism"
)

// field is one field of the message testSchema builds.
type field struct {
	name, index, pii string
	typ              descriptorpb.FieldDescriptorProto_Type
	repeated         bool
}

// testSchema is the entity section of a namespace of message test.Rec with
// fields, its file importing prism/options.proto.
func testSchema(t *testing.T, fields ...field) namespaces.EntityConfig {
	t.Helper()
	msg := &descriptorpb.DescriptorProto{Name: proto.String("Rec")}
	for i, f := range fields {
		label := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL
		if f.repeated {
			label = descriptorpb.FieldDescriptorProto_LABEL_REPEATED
		}
		opts := &descriptorpb.FieldOptions{}
		if f.index != "" {
			proto.SetExtension(opts, prismopts.E_Index, f.index)
		}
		if f.pii != "" {
			proto.SetExtension(opts, prismopts.E_Pii, f.pii)
		}
		msg.Field = append(msg.Field, &descriptorpb.FieldDescriptorProto{
			Name: proto.String(f.name), JsonName: proto.String(f.name), Number: proto.Int32(int32(i + 1)), Type: f.typ.Enum(), Label: label.Enum(), Options: opts,
		})
	}
	file := &descriptorpb.FileDescriptorProto{
		Name: proto.String("test/rec.proto"), Package: proto.String("test"), Syntax: proto.String("proto3"),
		Dependency: []string{"prism/options.proto"}, MessageType: []*descriptorpb.DescriptorProto{msg},
	}
	set := &descriptorpb.FileDescriptorSet{File: []*descriptorpb.FileDescriptorProto{
		protodesc.ToFileDescriptorProto(descriptorpb.File_google_protobuf_descriptor_proto),
		protodesc.ToFileDescriptorProto(prismopts.File_prism_options_proto),
		file,
	}}
	b, err := proto.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	return namespaces.EntityConfig{Message: "test.Rec", DescriptorSet: base64.StdEncoding.EncodeToString(b)}
}

const (
	tString = descriptorpb.FieldDescriptorProto_TYPE_STRING
	tInt64  = descriptorpb.FieldDescriptorProto_TYPE_INT64
	tDouble = descriptorpb.FieldDescriptorProto_TYPE_DOUBLE
)

func entityNS(cfg namespaces.EntityConfig) namespaces.Namespace {
	return namespaces.Namespace{Name: "recs", Abstraction: namespaces.AbstractionEntity, Backend: "sqlite", Entity: cfg}
}

func TestEntitySchemaValidation(t *testing.T) {
	pk := field{name: "id", index: "primary", typ: tString}
	for _, c := range []struct {
		name    string
		cfg     func(t *testing.T) namespaces.EntityConfig
		wantErr string // "" for valid
	}{
		{"valid", func(t *testing.T) namespaces.EntityConfig {
			return testSchema(t, pk, field{name: "at", index: "secondary", typ: tInt64}, field{name: "mail", pii: "email", typ: tString})
		}, ""},
		{"named index", func(t *testing.T) namespaces.EntityConfig {
			return testSchema(t, pk, field{name: "at", index: "secondary:by_time", typ: tInt64})
		}, ""},
		{"no primary", func(t *testing.T) namespaces.EntityConfig { return testSchema(t, field{name: "at", typ: tInt64}) }, "has no primary key"},
		{"two primaries", func(t *testing.T) namespaces.EntityConfig {
			return testSchema(t, pk, field{name: "id2", index: "primary", typ: tString})
		}, "both the primary key"},
		{"double primary", func(t *testing.T) namespaces.EntityConfig {
			return testSchema(t, field{name: "id", index: "primary", typ: tDouble})
		}, "must be a string, bytes or integer field, not double"},
		{"repeated index", func(t *testing.T) namespaces.EntityConfig {
			return testSchema(t, pk, field{name: "tags", index: "secondary", typ: tString, repeated: true})
		}, "needs a singular field"},
		{"double index", func(t *testing.T) namespaces.EntityConfig {
			return testSchema(t, pk, field{name: "score", index: "secondary", typ: tDouble})
		}, "not double"},
		{"bad index value", func(t *testing.T) namespaces.EntityConfig {
			return testSchema(t, pk, field{name: "at", index: "sorted", typ: tInt64})
		}, `"sorted" is not one of`},
		{"unique", func(t *testing.T) namespaces.EntityConfig {
			return testSchema(t, pk, field{name: "mail", index: "unique:mail", typ: tString})
		}, ""},
		{"unique without a name", func(t *testing.T) namespaces.EntityConfig {
			return testSchema(t, pk, field{name: "mail", index: "unique", typ: tString})
		}, "a unique index needs a name"},
		{"composite", func(t *testing.T) namespaces.EntityConfig {
			return testSchema(t, pk, field{name: "a", index: "secondary:ab", typ: tString}, field{name: "b", index: "secondary:ab", typ: tInt64})
		}, ""},
		{"composite of unique and not", func(t *testing.T) namespaces.EntityConfig {
			return testSchema(t, pk, field{name: "a", index: "secondary:ab", typ: tString}, field{name: "b", index: "unique:ab", typ: tString})
		}, "one unique and one not"},
		{"composite with pii", func(t *testing.T) namespaces.EntityConfig {
			return testSchema(t, pk, field{name: "a", index: "secondary:ab", typ: tString}, field{name: "b", index: "secondary:ab", pii: "name", typ: tString})
		}, "cannot hold a PII field"},
		{"bad pii kind", func(t *testing.T) namespaces.EntityConfig {
			return testSchema(t, pk, field{name: "mail", pii: "secret", typ: tString})
		}, "(prism.pii)"},
		{"pii on a number", func(t *testing.T) namespaces.EntityConfig {
			return testSchema(t, pk, field{name: "age", pii: "generic", typ: tInt64})
		}, "applies to singular string fields"},
		{"indexed pii", func(t *testing.T) namespaces.EntityConfig {
			return testSchema(t, pk, field{name: "mail", pii: "email", index: "unique:mail", typ: tString})
		}, ""},
		{"pii primary key", func(t *testing.T) namespaces.EntityConfig {
			return testSchema(t, field{name: "mail", pii: "email", index: "primary", typ: tString})
		}, "cannot be PII"},
		{"missing message", func(t *testing.T) namespaces.EntityConfig {
			c := testSchema(t, pk)
			c.Message = "test.Other"
			return c
		}, "is not in entity.descriptor_set; it defines test.Rec"},
		{"not base64", func(t *testing.T) namespaces.EntityConfig {
			return namespaces.EntityConfig{Message: "test.Rec", DescriptorSet: "%%%"}
		}, "not base64"},
		{"missing import", func(t *testing.T) namespaces.EntityConfig {
			var set descriptorpb.FileDescriptorSet
			raw, _ := base64.StdEncoding.DecodeString(testSchema(t, pk).DescriptorSet)
			_ = proto.Unmarshal(raw, &set)
			set.File = set.File[1:]
			b, _ := proto.Marshal(&set)
			return namespaces.EntityConfig{Message: "test.Rec", DescriptorSet: base64.StdEncoding.EncodeToString(b)}
		}, "does not link"},
		{"no schema", func(*testing.T) namespaces.EntityConfig { return namespaces.EntityConfig{} }, "entity.message is empty"},
	} {
		t.Run(c.name, func(t *testing.T) {
			err := entityNS(c.cfg(t)).Validate()
			if c.wantErr == "" {
				if err != nil {
					t.Fatalf("Validate: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("Validate = %v, want an error containing %q", err, c.wantErr)
			}
		})
	}
}

func TestEntityNamespaceRules(t *testing.T) {
	cfg := testSchema(t, field{name: "id", index: "primary", typ: tString})
	for _, c := range []struct {
		name    string
		change  func(*namespaces.Namespace)
		wantErr string
	}{
		{"natskv", func(n *namespaces.Namespace) { n.Backend = "natskv" }, "does not serve abstraction entity"},
		{"entity on keyvalue", func(n *namespaces.Namespace) { n.Abstraction = namespaces.AbstractionKeyValue }, "an entity section needs abstraction: entity"},
		{"spec pii", func(n *namespaces.Namespace) { n.Fields = namespaces.NewNames("mail") }, "takes its fields and PII from its message"},
		{"postgres", func(n *namespaces.Namespace) { n.Backend = "postgres" }, ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			ns := entityNS(cfg)
			c.change(&ns)
			err := ns.Validate()
			if (c.wantErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), c.wantErr) {
				t.Fatalf("Validate = %v, want %q", err, c.wantErr)
			}
		})
	}
}

func TestEntityPlanIndexChanges(t *testing.T) {
	c := namespaces.Cluster{Nodes: 1}
	old := entityNS(testSchema(t, field{name: "id", index: "primary", typ: tString}, field{name: "at", index: "secondary", typ: tInt64}))
	oldPlan, err := namespaces.Derive(old, c)
	if err != nil {
		t.Fatal(err)
	}
	if got := oldPlan.Indexes.Value; got != "primary id (string); at on at (int64)" {
		t.Errorf("plan indexes = %q", got)
	}
	diffOf := func(ns namespaces.Namespace) map[string]namespaces.Change {
		p, err := namespaces.Derive(ns, c)
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]namespaces.Change{}
		for _, ch := range namespaces.Diff(old, oldPlan, ns, p) {
			out[ch.Field] = ch
		}
		return out
	}
	// A new plain field: the descriptor set changes live, the indexes stay.
	added := diffOf(entityNS(testSchema(t, field{name: "id", index: "primary", typ: tString}, field{name: "at", index: "secondary", typ: tInt64}, field{name: "note", typ: tString})))
	if ch, ok := added["entity.descriptor_set"]; !ok || ch.Effect != namespaces.EffectLive {
		t.Errorf("a new field: %+v, want a live descriptor_set change", added)
	}
	if _, ok := added["settings.indexes"]; ok {
		t.Errorf("a new plain field changed the indexes: %+v", added["settings.indexes"])
	}
	// A new index, or one removed: live, with what happens to the rows.
	id, at := field{name: "id", index: "primary", typ: tString}, field{name: "at", index: "secondary", typ: tInt64}
	for name, c := range map[string]struct {
		ns     namespaces.Namespace
		reason string
	}{
		"new index":        {entityNS(testSchema(t, id, at, field{name: "note", index: "secondary", typ: tString})), "note is filled from the stored records"},
		"new unique index": {entityNS(testSchema(t, id, at, field{name: "mail", index: "unique:by_mail", typ: tString})), "a unique index over duplicate values fails"},
		"removed index":    {entityNS(testSchema(t, id, field{name: "at", typ: tInt64})), "the rows of at are dropped"},
		"removed field":    {entityNS(testSchema(t, id)), "the rows of at are dropped"},
	} {
		ch, ok := diffOf(c.ns)["settings.indexes"]
		if !ok || ch.Effect != namespaces.EffectLive || !strings.Contains(ch.Reason, c.reason) {
			t.Errorf("%s: %+v, want a live settings.indexes change saying %q", name, ch, c.reason)
		}
	}
	// Another primary key, an index retyped or made unique, a new blind
	// index: a migration, refused by apply.
	for name, c := range map[string]struct {
		ns     namespaces.Namespace
		reason string
	}{
		"new primary":   {entityNS(testSchema(t, field{name: "id", typ: tString}, at, field{name: "key", index: "primary", typ: tString})), "the primary key changes from id (string) to key (string)"},
		"retyped index": {entityNS(testSchema(t, id, field{name: "at", index: "secondary", typ: tString})), "index at changes from at (int64) to at (string)"},
		"made unique":   {entityNS(testSchema(t, id, field{name: "at", index: "unique:at", typ: tInt64})), "to unique at (int64)"},
		"blind index":   {entityNS(testSchema(t, id, at, field{name: "mail", index: "secondary", pii: "email", typ: tString})), "blind index of the PII field mail"},
	} {
		ch, ok := diffOf(c.ns)["settings.indexes"]
		if !ok || ch.Effect != namespaces.EffectMigration || !strings.Contains(ch.Reason, c.reason) {
			t.Errorf("%s: %+v, want settings.indexes to need a migration saying %q", name, ch, c.reason)
		}
	}
}

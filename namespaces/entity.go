package namespaces

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"

	"github.com/prism-data/prism/pii"
	prismopts "github.com/prism-data/prism/proto/prism"
)

// AbstractionEntity: records typed by a protobuf message, keyed by its
// primary index, with secondary indexes (put, delete, get, query).
const AbstractionEntity = "entity"

// EntityBackends are the backends that serve the entity abstraction.
var EntityBackends = []string{"sqlite", "postgres"}

// EntityConfig is the schema of an entity namespace: the record message
// and the descriptors it is defined by. protoc-gen-prism writes both.
type EntityConfig struct {
	// Message is the record message's full name, e.g.
	// example.v1.UserProfile.
	Message string `yaml:"message,omitempty" json:"message,omitempty"`
	// DescriptorSet is a google.protobuf.FileDescriptorSet, base64
	// (standard, padded), holding the message's file and every file it
	// imports (protoc --include_imports).
	DescriptorSet string `yaml:"descriptor_set,omitempty" json:"descriptor_set,omitempty"`
}

// IsZero reports whether no schema is set.
func (c EntityConfig) IsZero() bool { return c == EntityConfig{} }

// EntityIndex is one secondary index of an entity namespace.
type EntityIndex struct {
	// Name is the index name: the field name, or the name given in
	// (prism.index) = "secondary:<name>".
	Name string
	// Field is the indexed field: the first of Fields.
	Field protoreflect.FieldDescriptor
	// Fields are the fields of the index in field order: one, or several
	// for a composite index (fields naming the same index).
	Fields []protoreflect.FieldDescriptor
	// Unique is set for (prism.index) = "unique:<name>": no two records
	// hold the same value.
	Unique bool
	// Blind is set for an index on a PII field: its keys are keyed
	// hashes (HMAC) of the values, never the values, so it serves
	// equality only.
	Blind bool
}

// EntitySchema is the parsed schema of an entity namespace.
type EntitySchema struct {
	// Message describes the records.
	Message protoreflect.MessageDescriptor
	// Primary is the field marked (prism.index) = "primary".
	Primary protoreflect.FieldDescriptor
	// Indexes are the secondary indexes, in field order.
	Indexes []EntityIndex
	// PII are the fields marked (prism.pii), in field order.
	PII []PIIField
}

// Index returns the secondary index called name.
func (s *EntitySchema) Index(name string) (EntityIndex, bool) {
	i := slices.IndexFunc(s.Indexes, func(x EntityIndex) bool { return x.Name == name })
	if i < 0 {
		return EntityIndex{}, false
	}
	return s.Indexes[i], true
}

// IndexNames lists the secondary index names, in field order.
func (s *EntitySchema) IndexNames() []string {
	names := make([]string, len(s.Indexes))
	for i, x := range s.Indexes {
		names[i] = x.Name
	}
	return names
}

// EntitySchema parses n's entity schema. It returns an error if n is not
// an entity namespace or its schema is invalid (see ParseEntitySchema).
func (n Namespace) EntitySchema() (*EntitySchema, error) {
	if n.Abstraction != AbstractionEntity {
		return nil, fmt.Errorf("namespace %s is %s, not %s", n.Name, n.Abstraction, AbstractionEntity)
	}
	return ParseEntitySchema(n.Entity)
}

// ParseEntitySchema parses and checks an entity schema: the descriptor set
// decodes and links, it defines the message, exactly one field is the
// primary key (a singular string, bytes or integer field), every
// secondary index is on a singular scalar field (string, bytes, bool, an
// integer or an enum) and has a name of its own, and every (prism.pii)
// names a kind of package pii on a string field that is not the primary
// key (an index on it is a blind index).
// Fields naming one index form a composite index, in field order; it
// cannot hold a PII field.
// Errors say which field is wrong and how.
func ParseEntitySchema(c EntityConfig) (*EntitySchema, error) {
	if c.Message == "" {
		return nil, errors.New("entity.message is empty; name the record message (e.g. example.v1.UserProfile), or generate the spec with protoc-gen-prism")
	}
	if c.DescriptorSet == "" {
		return nil, fmt.Errorf("entity.descriptor_set is empty; give the FileDescriptorSet of %s in base64 (protoc --include_imports --descriptor_set_out), or generate the spec with protoc-gen-prism", c.Message)
	}
	raw, err := base64.StdEncoding.DecodeString(c.DescriptorSet)
	if err != nil {
		return nil, fmt.Errorf("entity.descriptor_set is not base64: %v", err)
	}
	var set descriptorpb.FileDescriptorSet
	if err := proto.Unmarshal(raw, &set); err != nil {
		return nil, fmt.Errorf("entity.descriptor_set is not a google.protobuf.FileDescriptorSet: %v", err)
	}
	files, err := protodesc.NewFiles(&set)
	if err != nil {
		return nil, fmt.Errorf("entity.descriptor_set does not link (does it hold every imported file? use --include_imports): %v", err)
	}
	d, err := files.FindDescriptorByName(protoreflect.FullName(c.Message))
	if err != nil {
		return nil, fmt.Errorf("entity.message %s is not in entity.descriptor_set; it defines %s", c.Message, strings.Join(messageNames(files), ", "))
	}
	md, ok := d.(protoreflect.MessageDescriptor)
	if !ok {
		return nil, fmt.Errorf("entity.message %s is a %T, not a message", c.Message, d)
	}
	return schemaOf(md)
}

// SchemaOfMessage parses the entity schema of a compiled message, as
// ParseEntitySchema does for a descriptor set.
func SchemaOfMessage(md protoreflect.MessageDescriptor) (*EntitySchema, error) { return schemaOf(md) }

func schemaOf(md protoreflect.MessageDescriptor) (*EntitySchema, error) {
	s := &EntitySchema{Message: md}
	fields := md.Fields()
	for i := 0; i < fields.Len(); i++ {
		fd := fields.Get(i)
		if err := s.addField(fd); err != nil {
			return nil, fmt.Errorf("message %s: %w", md.FullName(), err)
		}
	}
	if s.Primary == nil {
		return nil, fmt.Errorf("message %s has no primary key; mark one field [(prism.index) = \"primary\"]", md.FullName())
	}
	return s, nil
}

func (s *EntitySchema) addField(fd protoreflect.FieldDescriptor) error {
	opts, _ := fd.Options().(*descriptorpb.FieldOptions)
	index := proto.GetExtension(opts, prismopts.E_Index).(string)
	kindName := proto.GetExtension(opts, prismopts.E_Pii).(string)
	name := string(fd.Name())
	if kindName != "" {
		kind, err := pii.ParseKind(kindName)
		if err != nil {
			return fmt.Errorf("field %s: (prism.pii): %w", name, err)
		}
		if fd.Kind() != protoreflect.StringKind || fd.Cardinality() == protoreflect.Repeated {
			return fmt.Errorf("field %s: (prism.pii) applies to singular string fields, not %s", name, typeName(fd))
		}
		if index == prismopts.IndexPrimary {
			return fmt.Errorf("field %s: the primary key is part of every event subject and cannot be PII; key the record by another field", name)
		}
		s.PII = append(s.PII, PIIField{Name: name, Kind: kind})
	}
	if index == "" {
		return nil
	}
	kind, ixName, err := prismopts.ParseIndex(index, name)
	if err != nil {
		return err
	}
	if fd.Cardinality() == protoreflect.Repeated || fd.ContainingOneof() != nil && !fd.HasOptionalKeyword() {
		return fmt.Errorf("field %s: (prism.index) needs a singular field outside a oneof, not %s", name, typeName(fd))
	}
	switch kind {
	case prismopts.IndexPrimary:
		if s.Primary != nil {
			return fmt.Errorf("fields %s and %s are both the primary key; mark one", s.Primary.Name(), name)
		}
		if !primaryKind(fd.Kind()) {
			return fmt.Errorf("field %s: the primary key must be a string, bytes or integer field, not %s", name, typeName(fd))
		}
		s.Primary = fd
	default:
		if !IndexableKind(fd.Kind()) {
			return fmt.Errorf("field %s: a secondary index needs a string, bytes, bool, integer or enum field, not %s", name, typeName(fd))
		}
		unique, blind := kind == prismopts.IndexUnique, kindName != ""
		if i := slices.IndexFunc(s.Indexes, func(x EntityIndex) bool { return x.Name == ixName }); i >= 0 {
			x := &s.Indexes[i]
			switch {
			case x.Unique != unique:
				return fmt.Errorf("fields %s and %s both name index %s, one unique and one not; mark both alike", x.Field.Name(), name, ixName)
			case x.Blind || blind:
				return fmt.Errorf("fields %s and %s both name index %s: a composite index cannot hold a PII field", x.Field.Name(), name, ixName)
			}
			x.Fields = append(x.Fields, fd)
			return nil
		}
		s.Indexes = append(s.Indexes, EntityIndex{Name: ixName, Field: fd, Fields: []protoreflect.FieldDescriptor{fd}, Unique: unique, Blind: blind})
	}
	return nil
}

func typeName(fd protoreflect.FieldDescriptor) string {
	switch {
	case fd.IsMap():
		return "a map"
	case fd.Cardinality() == protoreflect.Repeated:
		return "repeated " + fd.Kind().String()
	case fd.ContainingOneof() != nil && !fd.HasOptionalKeyword():
		return "a oneof member"
	}
	return fd.Kind().String()
}

// primaryKind reports whether a field of kind k may be the primary key.
func primaryKind(k protoreflect.Kind) bool {
	return k == protoreflect.StringKind || k == protoreflect.BytesKind || integerKind(k)
}

// IndexableKind reports whether a field of kind k may be indexed.
func IndexableKind(k protoreflect.Kind) bool {
	return primaryKind(k) || k == protoreflect.BoolKind || k == protoreflect.EnumKind
}

func integerKind(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.Int32Kind, protoreflect.Sint32Kind, protoreflect.Sfixed32Kind,
		protoreflect.Int64Kind, protoreflect.Sint64Kind, protoreflect.Sfixed64Kind,
		protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return true
	}
	return false
}

// messageNames lists the application's messages in files.
func messageNames(files *protoregistry.Files) []string {
	var names []string
	files.RangeFiles(func(f protoreflect.FileDescriptor) bool {
		if p := f.Package(); p == "google.protobuf" || p == "prism" {
			return true // the imports every schema has, not the application's
		}
		for i := 0; i < f.Messages().Len(); i++ {
			names = append(names, string(f.Messages().Get(i).FullName()))
		}
		return true
	})
	slices.Sort(names)
	return names
}

// validateEntity checks the entity section against the abstraction.
func (n Namespace) validateEntity() error {
	if n.Abstraction != AbstractionEntity {
		if !n.Entity.IsZero() {
			return fmt.Errorf("namespace %s: an entity section needs abstraction: %s, not %s", n.Name, AbstractionEntity, n.Abstraction)
		}
		return nil
	}
	if n.Backend != BackendAuto && !slices.Contains(EntityBackends, n.Backend) {
		return fmt.Errorf("namespace %s: backend %s does not serve abstraction %s; use %s", n.Name, n.Backend, AbstractionEntity, strings.Join(EntityBackends, ", "))
	}
	if !n.PII.IsZero() || !n.Fields.IsZero() {
		return fmt.Errorf("namespace %s: an entity namespace takes its fields and PII from its message's (prism.pii) options; remove fields and pii", n.Name)
	}
	if n.PublishChanges {
		return fmt.Errorf("namespace %s: publish_changes is not supported on abstraction %s yet", n.Name, AbstractionEntity)
	}
	if _, err := n.EntitySchema(); err != nil {
		return fmt.Errorf("namespace %s: %w", n.Name, err)
	}
	return nil
}

// entityIndexes is the plan's indexes row of entity namespace ns (which
// is valid): "primary user_id (string); created_at (int64)".
func entityIndexes(ns Namespace) Derived[string] {
	s, err := ns.EntitySchema()
	if err != nil {
		return Derived[string]{"", err.Error()}
	}
	parts := []string{fmt.Sprintf("primary %s (%s)", s.Primary.Name(), s.Primary.Kind())}
	for _, x := range s.Indexes {
		unique := ""
		if x.Unique {
			unique = "unique "
		}
		if x.Blind {
			unique += "blind (PII, equality only) "
		}
		var on []string
		for _, f := range x.Fields {
			on = append(on, fmt.Sprintf("%s (%s)", f.Name(), f.Kind()))
		}
		parts = append(parts, fmt.Sprintf("%s%s on %s", unique, x.Name, strings.Join(on, ", ")))
	}
	return Derived[string]{strings.Join(parts, "; "), fmt.Sprintf("the (prism.index) options of %s; each secondary index is a backend index (equality and range, both orders)", s.Message.FullName())}
}

// indexChangeEffect says how the change of an entity namespace's indexes
// from old to ns takes effect: live when indexes are only added (each is
// filled from the stored records, and answers queries when it is ready)
// or removed (its rows are dropped); a migration when the primary key
// changes, an index keeps its name but not its fields, kinds or kind, or
// a blind index is added (its keys need the values sealed in the records
// and the namespace's data key).
func indexChangeEffect(old, ns Namespace) (effect, reason string) {
	os, err1 := old.EntitySchema()
	s, err2 := ns.EntitySchema()
	if err1 != nil || err2 != nil {
		return EffectMigration, "the indexes of the live namespace cannot be compared"
	}
	if os.Primary.Name() != s.Primary.Name() || os.Primary.Kind() != s.Primary.Kind() {
		return EffectMigration, fmt.Sprintf("the primary key changes from %s (%s) to %s (%s): every record would be keyed anew", os.Primary.Name(), os.Primary.Kind(), s.Primary.Name(), s.Primary.Kind())
	}
	var added, removed []string
	for _, x := range s.Indexes {
		o, ok := os.Index(x.Name)
		switch {
		case ok && indexDef(o) != indexDef(x):
			return EffectMigration, fmt.Sprintf("index %s changes from %s to %s; the stored rows are of the old one: remove it and add the new one under another name", x.Name, indexDef(o), indexDef(x))
		case ok:
		case x.Blind:
			return EffectMigration, fmt.Sprintf("index %s is a blind index of the PII field %s: its keys need the values sealed in the stored records, so it is not filled from them", x.Name, x.Field.Name())
		default:
			added = append(added, x.Name)
		}
	}
	for _, o := range os.Indexes {
		if _, ok := s.Index(o.Name); !ok {
			removed = append(removed, o.Name)
		}
	}
	var parts []string
	if len(added) > 0 {
		parts = append(parts, fmt.Sprintf("%s is filled from the stored records (state building, then ready; prism status shows it); queries on it answer FAILED_PRECONDITION until it is ready, and a unique index over duplicate values fails, naming them", strings.Join(added, ", ")))
	}
	if len(removed) > 0 {
		parts = append(parts, fmt.Sprintf("the rows of %s are dropped", strings.Join(removed, ", ")))
	}
	return EffectLive, strings.Join(parts, "; ")
}

// indexDef describes what an index holds, to compare two versions of it:
// "unique blind a (string), b (int64)".
func indexDef(x EntityIndex) string {
	var on []string
	for _, f := range x.Fields {
		on = append(on, fmt.Sprintf("%s (%s)", f.Name(), f.Kind()))
	}
	def := strings.Join(on, ", ")
	if x.Blind {
		def = "blind " + def
	}
	if x.Unique {
		def = "unique " + def
	}
	return def
}

// digest is a short hash of a descriptor set for a plan's diff ("" for
// none): the set itself is too long to show.
func digest(set string) string {
	if set == "" {
		return ""
	}
	sum := sha256.Sum256([]byte(set))
	return "sha256:" + hex.EncodeToString(sum[:6])
}

// EntityConfigOf is the entity section of a namespace of message md: its
// full name and the descriptor set of its file and every file that file
// imports (dependencies first, without source info), as protoc-gen-prism
// writes it. It returns an error if md's schema is invalid.
func EntityConfigOf(md protoreflect.MessageDescriptor) (EntityConfig, error) {
	if _, err := schemaOf(md); err != nil {
		return EntityConfig{}, err
	}
	set := &descriptorpb.FileDescriptorSet{}
	seen := map[string]bool{}
	var add func(fd protoreflect.FileDescriptor)
	add = func(fd protoreflect.FileDescriptor) {
		if seen[fd.Path()] {
			return
		}
		seen[fd.Path()] = true
		imports := fd.Imports()
		for i := 0; i < imports.Len(); i++ {
			add(imports.Get(i).FileDescriptor)
		}
		fdp := protodesc.ToFileDescriptorProto(fd)
		fdp.SourceCodeInfo = nil
		set.File = append(set.File, fdp)
	}
	add(md.ParentFile())
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(set)
	if err != nil {
		return EntityConfig{}, fmt.Errorf("marshal the descriptor set of %s: %w", md.FullName(), err)
	}
	return EntityConfig{Message: string(md.FullName()), DescriptorSet: base64.StdEncoding.EncodeToString(b)}, nil
}

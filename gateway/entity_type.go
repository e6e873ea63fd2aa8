package gateway

import (
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"strings"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protodesc"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/reflect/protoregistry"
	"google.golang.org/protobuf/types/descriptorpb"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
)

// entityType is what the gateway knows of an entity namespace's message:
// its schema, and the request and reply envelopes typed by it. An
// envelope's record field is the namespace's message, so protojson reads
// and writes it as the caller's own JSON object, while in binary it is the
// same bytes as the bytes record of prismv1.EntityPutRequest and
// prismv1.EntityGetResponse (field 1, length-delimited).
type entityType struct {
	schema *namespaces.EntitySchema
	record protoreflect.MessageType
	put    protoreflect.MessageType // prism.entity.EntityPutRequest
	get    protoreflect.MessageType // prism.entity.EntityGetResponse
	query  protoreflect.MessageType // prism.entity.EntityQueryResponse
}

// newEntityType builds the entity type of ns from its schema.
func newEntityType(ns namespaces.Namespace) (*entityType, error) {
	s, err := ns.EntitySchema()
	if err != nil {
		return nil, err
	}
	md := s.Message
	msg := "." + string(md.FullName())
	str, u64 := descriptorpb.FieldDescriptorProto_TYPE_STRING.Enum(), descriptorpb.FieldDescriptorProto_TYPE_UINT64.Enum()
	typ := descriptorpb.FieldDescriptorProto_TYPE_MESSAGE.Enum()
	one, many := descriptorpb.FieldDescriptorProto_LABEL_OPTIONAL.Enum(), descriptorpb.FieldDescriptorProto_LABEL_REPEATED.Enum()
	field := func(name string, n int32, t *descriptorpb.FieldDescriptorProto_Type, l *descriptorpb.FieldDescriptorProto_Label, typeName string) *descriptorpb.FieldDescriptorProto {
		f := &descriptorpb.FieldDescriptorProto{Name: proto.String(name), Number: proto.Int32(n), Type: t, Label: l}
		if typeName != "" {
			f.TypeName = proto.String(typeName)
		}
		return f
	}
	fdp := &descriptorpb.FileDescriptorProto{
		Name:       proto.String("prism/entity/" + ns.Name + ".proto"),
		Package:    proto.String("prism.entity"),
		Syntax:     proto.String("proto3"),
		Dependency: []string{md.ParentFile().Path(), prismv1.File_prism_v1_entity_proto.Path()},
		MessageType: []*descriptorpb.DescriptorProto{
			{Name: proto.String("EntityPutRequest"), Field: []*descriptorpb.FieldDescriptorProto{
				field("record", 1, typ, one, msg), field("idempotency_token", 2, str, one, ""),
			}},
			{Name: proto.String("EntityGetResponse"), Field: []*descriptorpb.FieldDescriptorProto{
				field("record", 1, typ, one, msg), field("revision", 2, u64, one, ""),
				field("lineage", 3, typ, one, ".prism.v1.EntityLineage"),
			}},
			{Name: proto.String("EntityQueryResponse"), Field: []*descriptorpb.FieldDescriptorProto{
				field("records", 1, typ, many, ".prism.entity.EntityGetResponse"), field("next_page_token", 2, str, one, ""),
			}},
		},
	}
	files := new(protoregistry.Files)
	for _, f := range []protoreflect.FileDescriptor{md.ParentFile(), prismv1.File_prism_v1_entity_proto} {
		if err := registerFile(files, f); err != nil {
			return nil, fmt.Errorf("namespace %s: %w", ns.Name, err)
		}
	}
	fd, err := protodesc.NewFile(fdp, files)
	if err != nil {
		return nil, fmt.Errorf("namespace %s: envelopes of %s: %w", ns.Name, md.FullName(), err)
	}
	msgs := fd.Messages()
	return &entityType{
		schema: s,
		record: dynamicpb.NewMessageType(md),
		put:    dynamicpb.NewMessageType(msgs.ByName("EntityPutRequest")),
		get:    dynamicpb.NewMessageType(msgs.ByName("EntityGetResponse")),
		query:  dynamicpb.NewMessageType(msgs.ByName("EntityQueryResponse")),
	}, nil
}

// registerFile registers fd and everything it imports in files.
func registerFile(files *protoregistry.Files, fd protoreflect.FileDescriptor) error {
	if _, err := files.FindFileByPath(fd.Path()); err == nil {
		return nil
	}
	imports := fd.Imports()
	for i := 0; i < imports.Len(); i++ {
		if err := registerFile(files, imports.Get(i).FileDescriptor); err != nil {
			return err
		}
	}
	return files.RegisterFile(fd)
}

// checkKnown returns an error naming the first field of m (or of a
// message inside it) that the message type does not have: in binary
// protobuf an unknown field number, or a known one sent with another wire
// type, ends up there.
func checkKnown(m protoreflect.Message, path string) error {
	if len(m.GetUnknown()) > 0 {
		num, typ, _ := protowireField(m.GetUnknown())
		return status.Invalidf("%s: field number %d (wire type %d) is not a field of %s, or has the wrong type", path, num, typ, m.Descriptor().FullName())
	}
	var err error
	m.Range(func(fd protoreflect.FieldDescriptor, v protoreflect.Value) bool {
		if fd.Message() == nil {
			return true
		}
		sub := path + "." + string(fd.Name())
		switch {
		case fd.IsMap():
			if fd.MapValue().Message() != nil {
				v.Map().Range(func(_ protoreflect.MapKey, mv protoreflect.Value) bool {
					err = checkKnown(mv.Message(), sub)
					return err == nil
				})
			}
		case fd.IsList():
			for i := 0; i < v.List().Len() && err == nil; i++ {
				err = checkKnown(v.List().Get(i).Message(), sub)
			}
		default:
			err = checkKnown(v.Message(), sub)
		}
		return err == nil
	})
	return err
}

// protowireField reads the tag of the first field of b.
func protowireField(b []byte) (num uint64, typ uint64, ok bool) {
	tag, n := binary.Uvarint(b)
	if n <= 0 {
		return 0, 0, false
	}
	return tag >> 3, tag & 7, true
}

// primaryKey is the record id of rec: its primary key field as bytes (a
// string or bytes key as is, an integer in decimal). Errors:
// INVALID_ARGUMENT for an empty or too long key.
func (t *entityType) primaryKey(rec protoreflect.Message) ([]byte, error) {
	fd := t.schema.Primary
	id := keyText(fd, rec.Get(fd))
	if err := validateID("the primary key "+string(fd.Name()), id); err != nil {
		return nil, err
	}
	return id, nil
}

func keyText(fd protoreflect.FieldDescriptor, v protoreflect.Value) []byte {
	switch fd.Kind() {
	case protoreflect.StringKind:
		return []byte(v.String())
	case protoreflect.BytesKind:
		return v.Bytes()
	}
	if isUnsigned(fd.Kind()) {
		return strconv.AppendUint(nil, v.Uint(), 10)
	}
	return strconv.AppendInt(nil, v.Int(), 10)
}

// parseKey turns the primary key as text (EntityGetRequest.key) into the
// record id: a string key as is, an integer key in canonical decimal, a
// bytes key from base64. Errors: INVALID_ARGUMENT.
func (t *entityType) parseKey(text string) ([]byte, error) {
	fd := t.schema.Primary
	if fd.Kind() == protoreflect.StringKind {
		return []byte(text), validateID("key", []byte(text))
	}
	v, err := parseValue(fd, text)
	if err != nil {
		return nil, status.Invalidf("key %q: %v", text, err)
	}
	id := keyText(fd, v)
	return id, validateID("key", id)
}

// parseValue parses text as a value of field fd (a primary key or an
// indexed field).
func parseValue(fd protoreflect.FieldDescriptor, text string) (protoreflect.Value, error) {
	k := fd.Kind()
	switch {
	case k == protoreflect.StringKind:
		return protoreflect.ValueOfString(text), nil
	case k == protoreflect.BytesKind:
		b, err := base64.StdEncoding.DecodeString(text)
		if err != nil {
			return protoreflect.Value{}, fmt.Errorf("field %s is bytes: give base64 (%v)", fd.Name(), err)
		}
		return protoreflect.ValueOfBytes(b), nil
	case k == protoreflect.BoolKind:
		b, err := strconv.ParseBool(text)
		if err != nil {
			return protoreflect.Value{}, fmt.Errorf("field %s is a bool: give true or false", fd.Name())
		}
		return protoreflect.ValueOfBool(b), nil
	case k == protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByName(protoreflect.Name(text)); ev != nil {
			return protoreflect.ValueOfEnum(ev.Number()), nil
		}
		n, err := strconv.ParseInt(text, 10, 32)
		if err != nil {
			return protoreflect.Value{}, fmt.Errorf("field %s is the enum %s: give a value name or number", fd.Name(), fd.Enum().FullName())
		}
		return protoreflect.ValueOfEnum(protoreflect.EnumNumber(n)), nil
	case isUnsigned(k):
		n, err := strconv.ParseUint(text, 10, bitsOf(k))
		if err != nil {
			return protoreflect.Value{}, fmt.Errorf("field %s is %s: give a decimal number in range", fd.Name(), k)
		}
		return protoreflect.ValueOfUint64(n), nil
	default:
		n, err := strconv.ParseInt(text, 10, bitsOf(k))
		if err != nil {
			return protoreflect.Value{}, fmt.Errorf("field %s is %s: give a decimal number in range", fd.Name(), k)
		}
		return protoreflect.ValueOfInt64(n), nil
	}
}

func isUnsigned(k protoreflect.Kind) bool {
	switch k {
	case protoreflect.Uint32Kind, protoreflect.Fixed32Kind, protoreflect.Uint64Kind, protoreflect.Fixed64Kind:
		return true
	}
	return false
}

func bitsOf(k protoreflect.Kind) int {
	if strings.Contains(k.String(), "32") {
		return 32
	}
	return 64
}

// indexKey encodes the value v of indexed field fd so that byte order is
// value order: strings and bytes as they are, a bool as one byte, an
// integer or enum as 8 big-endian bytes (signed ones with the sign bit
// flipped, so negative values sort first).
func indexKey(fd protoreflect.FieldDescriptor, v protoreflect.Value) []byte {
	switch k := fd.Kind(); {
	case k == protoreflect.StringKind:
		return []byte(v.String())
	case k == protoreflect.BytesKind:
		return v.Bytes()
	case k == protoreflect.BoolKind:
		if v.Bool() {
			return []byte{1}
		}
		return []byte{0}
	case k == protoreflect.EnumKind:
		return binary.BigEndian.AppendUint64(nil, uint64(int64(v.Enum()))^(1<<63))
	case isUnsigned(k):
		return binary.BigEndian.AppendUint64(nil, v.Uint())
	default:
		return binary.BigEndian.AppendUint64(nil, uint64(v.Int())^(1<<63))
	}
}

// componentKey appends the key of component value v of field fd of a
// composite index to b: strings and bytes escaped (0x00 as 0x00 0xFF) and
// ended by 0x00 0x01, so that each component is self-delimiting and the
// byte order of the keys is the order of the value tuples; other kinds as
// indexKey encodes them (fixed width).
func componentKey(b []byte, fd protoreflect.FieldDescriptor, v protoreflect.Value) []byte {
	switch fd.Kind() {
	case protoreflect.StringKind, protoreflect.BytesKind:
		for _, c := range indexKey(fd, v) {
			b = append(b, c)
			if c == 0 {
				b = append(b, 0xFF)
			}
		}
		return append(b, 0, 1)
	}
	return append(b, indexKey(fd, v)...)
}

// prefixEnd is the first key above every key that starts with p, nil when
// there is none (p empty or all 0xFF: unbounded).
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xFF {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

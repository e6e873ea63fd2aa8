package gateway

import (
	"mime"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// encoding is the body encoding of a request and its reply.
type encoding int

const (
	encJSON  encoding = iota // protojson, the default
	encProto                 // binary protobuf
)

var (
	// Unknown fields are an error (DiscardUnknown false): a misspelt field
	// must not be silently ignored. Both lowerCamel and proto names are
	// accepted.
	jsonIn = protojson.UnmarshalOptions{}
	// lowerCamel names, unpopulated fields omitted.
	jsonOut = protojson.MarshalOptions{}
)

// requestEncoding reads the Content-Type header: absent or application/json
// is JSON, application/protobuf is binary protobuf, anything else is
// INVALID_ARGUMENT (answered in JSON).
func requestEncoding(h nats.Header) (encoding, error) {
	ct := h.Get(subjects.HeaderContentTypeReq)
	if ct == "" {
		return encJSON, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return encJSON, status.Invalidf("header %s: %q is not a media type; use %s or %s", subjects.HeaderContentTypeReq, ct, subjects.ContentTypeJSON, subjects.ContentTypeProto)
	}
	switch mt {
	case subjects.ContentTypeJSON:
		return encJSON, nil
	case subjects.ContentTypeProto:
		return encProto, nil
	}
	return encJSON, status.Invalidf("header %s: %q is not supported; use %s or %s", subjects.HeaderContentTypeReq, ct, subjects.ContentTypeJSON, subjects.ContentTypeProto)
}

func (e encoding) String() string {
	if e == encProto {
		return "binary protobuf"
	}
	return "JSON"
}

func (e encoding) contentType() string {
	if e == encProto {
		return subjects.ContentTypeProto
	}
	return subjects.ContentTypeJSON
}

// unmarshal decodes data into m. An empty body is an empty message in both
// encodings, so that validation can say what is missing.
func (e encoding) unmarshal(data []byte, m proto.Message) error {
	if len(data) == 0 {
		return nil
	}
	if e == encProto {
		return proto.Unmarshal(data, m)
	}
	return jsonIn.Unmarshal(data, m)
}

func (e encoding) marshal(m proto.Message) ([]byte, error) {
	if e == encProto {
		return proto.Marshal(m)
	}
	return jsonOut.Marshal(m)
}

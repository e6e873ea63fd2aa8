package subjects

import (
	"fmt"
	"strings"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// TypeLogAppend is the CloudEvents type of a Log append.
const TypeLogAppend = "io.prism.log.append"

// LogEvent is the event subject of the records of key in Log namespace ns:
// every append of the key is stored there, in append order, like a record
// id's events.
func LogEvent(ns string, key []byte) string {
	return Root + "." + ns + ".events." + AbstractionLog + "." + EncodeID(key)
}

// AllLogEvents is the filter subject of every Log event of ns.
func AllLogEvents(ns string) string {
	return Root + "." + ns + ".events." + AbstractionLog + ".*"
}

// IsReservedLogHeader reports whether a Log record header name belongs to
// Prism rather than to the writer: the CloudEvents attributes ("ce-…"),
// Prism's own headers ("prism-…") and "content-type", in any case. Writers
// may not set them; readers get the writer's headers without them.
func IsReservedLogHeader(name string) bool {
	l := strings.ToLower(name)
	return strings.HasPrefix(l, "ce-") || strings.HasPrefix(l, "prism-") || l == HeaderContentType
}

// NewLogEvent builds the CloudEvent message of a Log append of ev.Key:
// subject LogEvent, type TypeLogAppend, ce-subject the encoded key, the
// marshalled event as data. It does not validate the event; the gateway
// does before publishing. The caller sets Nats-Msg-Id as needed.
func NewLogEvent(meta EventMeta, ev *prismv1.LogEvent) (*nats.Msg, error) {
	data, err := proto.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("marshal event: %w", err)
	}
	key := ev.GetKey()
	msg := newEvent(meta, LogEvent(meta.Namespace, key), TypeLogAppend, EncodeID(key))
	msg.Data = data
	return msg, nil
}

// DecodeLogEvent decodes a Log append from its subject, headers and data.
// It returns (nil, nil) for an idempotency marker, which carries no record,
// and an error wrapping ErrBadEvent for anything malformed: a subject that
// is not a Log event subject (a KeyValue or TimeSeries one included), a
// type other than TypeLogAppend, another content type or spec version, no
// ce-id, a payload that does not parse, a key that differs from the
// subject's, or a header name that IsReservedLogHeader.
func DecodeLogEvent(subject string, header nats.Header, data []byte) (*prismv1.LogEvent, error) {
	es, marker, err := parseEnvelope(subject, header, AbstractionLog)
	if err != nil || marker {
		return nil, err
	}
	return decodeLog(es.ID, header, data)
}

// decodeLog decodes the payload of a Log append of key whose envelope was
// checked.
func decodeLog(key []byte, header nats.Header, data []byte) (*prismv1.LogEvent, error) {
	if typ := header.Get(HeaderType); typ != TypeLogAppend {
		return nil, fmt.Errorf("%w: type %q on a Log subject, want %q", ErrBadEvent, typ, TypeLogAppend)
	}
	if header.Get(HeaderID) == "" {
		return nil, fmt.Errorf("%w: no %s", ErrBadEvent, HeaderID)
	}
	var ev prismv1.LogEvent
	if err := proto.Unmarshal(data, &ev); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrBadEvent, err)
	}
	if string(ev.GetKey()) != string(key) {
		return nil, fmt.Errorf("%w: payload key %q differs from subject key %q", ErrBadEvent, ev.GetKey(), key)
	}
	for name := range ev.GetHeaders() {
		if name == "" || IsReservedLogHeader(name) {
			return nil, fmt.Errorf("%w: header name %q is empty or reserved", ErrBadEvent, name)
		}
	}
	return &ev, nil
}

// CloudEventHeaders returns the CloudEvents attributes of an event's
// headers (every "ce-…" header, and content-type), first value of each,
// by header name: what a Log target carries to its records.
func CloudEventHeaders(header nats.Header) map[string]string {
	out := make(map[string]string, 10)
	for k, v := range header {
		if len(v) == 0 {
			continue
		}
		if strings.HasPrefix(strings.ToLower(k), "ce-") || k == HeaderContentType {
			out[k] = v[0]
		}
	}
	return out
}

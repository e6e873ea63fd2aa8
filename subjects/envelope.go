package subjects

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// Every event on a namespace stream is a CloudEvent in binary content mode
// (CloudEvents NATS protocol binding): attributes in "ce-" headers, the
// protobuf payload as the message data.
const (
	HeaderSpecVersion = "ce-specversion"
	HeaderID          = "ce-id"
	HeaderSource      = "ce-source"
	HeaderType        = "ce-type"
	HeaderTime        = "ce-time"
	HeaderSubject     = "ce-subject"
	HeaderContentType = "content-type"
	// CloudEvents extensions.
	HeaderNamespace   = "ce-prismnamespace"
	HeaderIdempotency = "ce-prismidempotencykey"
	HeaderTraceParent = "ce-traceparent"
	// HeaderPrincipal names who wrote the event (auth.Principal.Name), so
	// that the stream says who wrote what; absent on events Prism itself
	// writes (compaction) and in development mode it is "anonymous".
	HeaderPrincipal = "ce-prismprincipal"

	// HeaderRequestHash is the hex SHA-256 of the request that produced the
	// event; a retry with the same idempotency token but another hash is
	// refused.
	HeaderRequestHash = "Prism-Request-Hash"

	// NATS headers Prism sets.
	HeaderMsgID              = "Nats-Msg-Id"
	HeaderExpectedSubjectSeq = "Nats-Expected-Last-Subject-Sequence"
	// HeaderRollup set to RollupSubject on a message makes JetStream purge
	// every earlier message of its subject once it is stored (the stream
	// must allow rollups). Compaction's replace events carry it (ADR 012).
	HeaderRollup  = "Nats-Rollup"
	RollupSubject = "sub"

	// Dead-letter headers, on messages of the dead-letter stream.
	HeaderDLQReason  = "Prism-Dlq-Reason"
	HeaderDLQStream  = "Prism-Dlq-Stream"
	HeaderDLQSeq     = "Prism-Dlq-Seq"
	HeaderDLQSubject = "Prism-Dlq-Subject"
	HeaderDLQTarget  = "Prism-Dlq-Target"
	// HeaderRedriveOf, on an event republished by a dead-letter redrive
	// (ADR 024), is the stream sequence of the event it copies.
	HeaderRedriveOf = "Prism-Redrive-Of"

	// HeaderRelaySubject, on a subscription delivery the gateway relayed
	// (a namespace with PII fields, ADR 017), is the subject the event is
	// stored at; the delivery itself arrives on the delivery subject.
	HeaderRelaySubject = "Prism-Subject"
	// HeaderRelayDelivery, on the same, is the JetStream delivery's reply
	// subject (its metadata: sequences, time): the server keeps a client
	// from publishing with a $JS.ACK reply.
	HeaderRelayDelivery = "Prism-Delivery"

	// Request/reply headers.
	// HeaderErrorCode is set on every error reply to the Code name.
	HeaderErrorCode = "Prism-Error-Code"
	// HeaderRetryAfter is set on every RESOURCE_EXHAUSTED reply to the
	// milliseconds to wait before retrying (also the body's
	// retry_after_ms).
	HeaderRetryAfter = "Prism-Retry-After"
	// HeaderContentTypeReq is the content type of a request or reply body;
	// absent means JSON.
	HeaderContentTypeReq = "Content-Type"
	// HeaderTraceParentReq and HeaderTraceStateReq carry the caller's W3C
	// trace context on a request, as in HTTP. The event a write stores
	// carries the gateway's in HeaderTraceParent.
	HeaderTraceParentReq = "traceparent"
	HeaderTraceStateReq  = "tracestate"

	SpecVersion = "1.0"
	// ContentTypeProto is the content type of binary protobuf bodies.
	ContentTypeProto = "application/protobuf"
	// ContentTypeJSON is the content type of protojson bodies (the default).
	ContentTypeJSON = "application/json"
)

// CloudEvents types of Prism events.
const (
	TypeKeyValuePut    = "io.prism.kv.put"
	TypeKeyValueDelete = "io.prism.kv.delete"
	// TypeKeyValueReplace is a compacted record: its whole state in one
	// event. Only compaction writes it (ADR 012).
	TypeKeyValueReplace  = "io.prism.kv.replace"
	TypeTimeSeriesAppend = "io.prism.ts.append"
	TypeMarker           = "io.prism.marker"
)

// ErrBadEvent is returned by DecodeKeyValueEvent, DecodeTimeSeriesEvent,
// DecodeLogEvent and DecodeEvent for a message that is not a well-formed
// Prism event (of the abstraction asked for). Such a message is a poison
// event.
var ErrBadEvent = errors.New("malformed event")

// EventMeta is what the gateway knows about a write besides its payload.
type EventMeta struct {
	Namespace        string
	IdempotencyToken string // optional
	RequestHash      string // optional, see HashRequest
	TraceParent      string // optional W3C traceparent of the writing span
	Principal        string // optional name of who wrote it
	Time             time.Time
}

// NewKeyValueEvent builds the CloudEvent message of a KeyValue event: a
// put, a delete or a replace, typed TypeKeyValuePut, TypeKeyValueDelete or
// TypeKeyValueReplace after its change (an event without a change is typed
// as a put, which DecodeKeyValueEvent refuses). The caller sets
// Nats-Msg-Id, expected-sequence and rollup headers as needed.
func NewKeyValueEvent(meta EventMeta, ev *prismv1.KeyValueEvent) (*nats.Msg, error) {
	data, err := proto.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("marshal event: %w", err)
	}
	typ := TypeKeyValuePut
	switch {
	case ev.GetDelete() != nil:
		typ = TypeKeyValueDelete
	case ev.GetReplace() != nil:
		typ = TypeKeyValueReplace
	}
	msg := newEvent(meta, KeyValueEvent(meta.Namespace, ev.GetId()), typ, EncodeID(ev.GetId()))
	msg.Data = data
	return msg, nil
}

// NewMarker builds the idempotency marker that heads an atomic batch. Its
// data is the number of events that follow it.
func NewMarker(meta EventMeta, events int) *nats.Msg {
	msg := newEvent(meta, Marker(meta.Namespace, meta.IdempotencyToken), TypeMarker, meta.IdempotencyToken)
	msg.Data = fmt.Appendf(nil, "%d", events)
	return msg
}

// eventHeaders is the most headers an event carries: the ten CloudEvents
// ones, the request hash, and Nats-Msg-Id and the expected sequence that
// callers add.
const eventHeaders = 14

func newEvent(meta EventMeta, subject, typ, ceSubject string) *nats.Msg {
	t := meta.Time
	if t.IsZero() {
		t = time.Now()
	}
	// The header map is sized for every header at once and its values share
	// one array: growing the map and one slice per value were the largest
	// allocations of the gateway's write path. Each value keeps cap 1, so an
	// Add by the caller copies instead of overwriting its neighbour.
	h := make(nats.Header, eventHeaders)
	vals := make([]string, 0, eventHeaders)
	set := func(k, v string) {
		vals = append(vals, v)
		h[k] = vals[len(vals)-1 : len(vals) : len(vals)]
	}
	var tbuf [len(time.RFC3339Nano) + 10]byte
	set(HeaderSpecVersion, SpecVersion)
	set(HeaderID, uuid.NewString())
	set(HeaderSource, "/prism/"+meta.Namespace)
	set(HeaderType, typ)
	set(HeaderTime, string(t.UTC().AppendFormat(tbuf[:0], time.RFC3339Nano)))
	set(HeaderSubject, ceSubject)
	set(HeaderContentType, ContentTypeProto)
	set(HeaderNamespace, meta.Namespace)
	if meta.IdempotencyToken != "" {
		set(HeaderIdempotency, meta.IdempotencyToken)
	}
	if meta.RequestHash != "" {
		set(HeaderRequestHash, meta.RequestHash)
	}
	if meta.TraceParent != "" {
		set(HeaderTraceParent, meta.TraceParent)
	}
	if meta.Principal != "" {
		set(HeaderPrincipal, meta.Principal)
	}
	return &nats.Msg{Subject: subject, Header: h}
}

// DecodeKeyValueEvent decodes a KeyValue event from its subject, headers and
// data. It returns (nil, nil) for an idempotency marker, which carries no
// data change, and an error wrapping ErrBadEvent for anything malformed: a
// subject that is not a KeyValue event subject (a TimeSeries one included),
// an unknown type, a payload that does not parse, or a payload whose id or
// change disagrees with the subject and type.
func DecodeKeyValueEvent(subject string, header nats.Header, data []byte) (*prismv1.KeyValueEvent, error) {
	es, marker, err := parseEnvelope(subject, header, AbstractionKeyValue)
	if err != nil || marker {
		return nil, err
	}
	return decodeKeyValue(es.ID, header, data)
}

// decodeKeyValue decodes the payload of a KeyValue event of record id whose
// envelope was checked.
func decodeKeyValue(id []byte, header nats.Header, data []byte) (*prismv1.KeyValueEvent, error) {
	var ev prismv1.KeyValueEvent
	if err := proto.Unmarshal(data, &ev); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrBadEvent, err)
	}
	if string(ev.GetId()) != string(id) {
		return nil, fmt.Errorf("%w: payload id %q differs from subject id %q", ErrBadEvent, ev.GetId(), id)
	}
	switch typ := header.Get(HeaderType); {
	case typ == TypeKeyValuePut && ev.GetPut() != nil:
	case typ == TypeKeyValueDelete && ev.GetDelete() != nil:
	case typ == TypeKeyValueReplace && ev.GetReplace() != nil:
	default:
		return nil, fmt.Errorf("%w: type %q does not match the payload", ErrBadEvent, typ)
	}
	return &ev, nil
}

// Decoded is an event decoded by DecodeEvent: its parsed subject and, for a
// data event, the payload of its abstraction.
type Decoded struct {
	Event
	KeyValue   *prismv1.KeyValueEvent
	TimeSeries *prismv1.TimeSeriesAppend
	Log        *prismv1.LogEvent
	Entity     *prismv1.EntityEvent
	Graph      *prismv1.GraphEvent
}

// DecodeEvent decodes an event of any abstraction from its subject, headers
// and data, parsing the subject once, for readers of a whole namespace
// stream. It checks what DecodeKeyValueEvent, DecodeTimeSeriesEvent or
// DecodeLogEvent checks, as the subject's abstraction says. For a data
// event exactly one of KeyValue, TimeSeries, Log, Entity and Graph is set; for an
// idempotency marker none is (d.IsMarker reports it).
//
// d.Event is set whenever the subject parses, even with an error, so that a
// caller can tell what a malformed event was about. Errors wrap ErrBadEvent,
// and also ErrInvalidSubject or ErrInvalidNamespace when the subject does
// not parse.
func DecodeEvent(subject string, header nats.Header, data []byte) (d Decoded, err error) {
	d.Event, err = ParseEvent(subject)
	if err != nil {
		return Decoded{}, fmt.Errorf("%w: %w", ErrBadEvent, err)
	}
	marker, err := checkEnvelope(d.Event, subject, header, d.Abstraction)
	if err != nil || marker {
		return d, err
	}
	switch d.Abstraction {
	case AbstractionKeyValue:
		d.KeyValue, err = decodeKeyValue(d.ID, header, data)
	case AbstractionTimeSeries:
		d.TimeSeries, err = decodeTimeSeries(d.ID, header, data)
	case AbstractionLog:
		d.Log, err = decodeLog(d.ID, header, data)
	case AbstractionEntity:
		d.Entity, err = decodeEntity(d.ID, header, data)
	case AbstractionGraphVertex, AbstractionGraphEdge:
		d.Graph, err = decodeGraph(d.Event, header, data)
	}
	return d, err
}

// parseEnvelope checks what every event decoder checks: the subject is an
// event subject of abstraction (or a marker), and a data event carries the
// CloudEvents spec version and the protobuf content type. marker reports an
// idempotency marker, whose other headers and data are not checked. Errors
// wrap ErrBadEvent.
func parseEnvelope(subject string, header nats.Header, abstraction string) (es Event, marker bool, err error) {
	es, err = ParseEvent(subject)
	if err != nil {
		return Event{}, false, fmt.Errorf("%w: %v", ErrBadEvent, err)
	}
	if marker, err = checkEnvelope(es, subject, header, abstraction); err != nil {
		return Event{}, false, err
	}
	return es, marker, nil
}

// checkEnvelope is parseEnvelope for the already parsed subject es.
func checkEnvelope(es Event, subject string, header nats.Header, abstraction string) (marker bool, err error) {
	if es.IsMarker() {
		want := TypeMarker
		if es.Abstraction == claimToken {
			want = TypeEntityClaim
		}
		if typ := header.Get(HeaderType); typ != want {
			return false, fmt.Errorf("%w: marker subject with type %q", ErrBadEvent, typ)
		}
		return true, nil
	}
	if es.Abstraction != abstraction {
		return false, fmt.Errorf("%w: %q is a %q event subject, want %q", ErrBadEvent, subject, es.Abstraction, abstraction)
	}
	if v := header.Get(HeaderSpecVersion); v != SpecVersion {
		return false, fmt.Errorf("%w: ce-specversion %q, want %q", ErrBadEvent, v, SpecVersion)
	}
	if ct := header.Get(HeaderContentType); ct != ContentTypeProto {
		return false, fmt.Errorf("%w: content-type %q, want %q", ErrBadEvent, ct, ContentTypeProto)
	}
	return false, nil
}

// HeaderCarrier adapts NATS headers to OpenTelemetry's
// propagation.TextMapCarrier (Get, Set and Keys), so that W3C trace context
// can be injected into and extracted from requests. Keys are
// case-sensitive, as NATS headers are.
type HeaderCarrier nats.Header

// Get returns the first value of key, or "".
func (c HeaderCarrier) Get(key string) string { return nats.Header(c).Get(key) }

// Set replaces the values of key with value.
func (c HeaderCarrier) Set(key, value string) { nats.Header(c).Set(key, value) }

// Keys lists the header names, in no particular order.
func (c HeaderCarrier) Keys() []string {
	keys := make([]string, 0, len(c))
	for k := range c {
		keys = append(keys, k)
	}
	return keys
}

// HashRequest returns the hex SHA-256 of a deterministically marshalled
// request, for idempotency checks.
func HashRequest(m proto.Message) (string, error) {
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return "", fmt.Errorf("hash request: %w", err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), nil
}

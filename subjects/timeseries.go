package subjects

import (
	"fmt"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// MaxEventIDLen is the longest TimeSeries event id, in bytes.
const MaxEventIDLen = 256

// NewTimeSeriesEvent builds the CloudEvent message of an append to series
// ev.SeriesId: subject TimeSeriesEvent, type TypeTimeSeriesAppend,
// ce-subject the encoded series id, the marshalled append as data. It does
// not validate the events; the gateway does before publishing. The caller
// sets Nats-Msg-Id and expected-sequence headers as needed.
func NewTimeSeriesEvent(meta EventMeta, ev *prismv1.TimeSeriesAppend) (*nats.Msg, error) {
	data, err := proto.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("marshal event: %w", err)
	}
	id := ev.GetSeriesId()
	msg := newEvent(meta, TimeSeriesEvent(meta.Namespace, id), TypeTimeSeriesAppend, EncodeID(id))
	msg.Data = data
	return msg, nil
}

// DecodeTimeSeriesEvent decodes a TimeSeries append from its subject,
// headers and data. It returns (nil, nil) for an idempotency marker, which
// carries no data change, and an error wrapping ErrBadEvent for anything
// malformed: a subject that is not a TimeSeries event subject (a KeyValue
// one included), a type other than TypeTimeSeriesAppend, another content
// type or spec version, a payload that does not parse, a series id that
// differs from the subject's, or an event without a valid event_time or
// with an event_id that is empty or longer than MaxEventIDLen. An append of
// no events is well-formed and changes nothing.
func DecodeTimeSeriesEvent(subject string, header nats.Header, data []byte) (*prismv1.TimeSeriesAppend, error) {
	es, marker, err := parseEnvelope(subject, header, AbstractionTimeSeries)
	if err != nil || marker {
		return nil, err
	}
	return decodeTimeSeries(es.ID, header, data)
}

// decodeTimeSeries decodes the payload of an append to series id whose
// envelope was checked.
func decodeTimeSeries(id []byte, header nats.Header, data []byte) (*prismv1.TimeSeriesAppend, error) {
	if typ := header.Get(HeaderType); typ != TypeTimeSeriesAppend {
		return nil, fmt.Errorf("%w: type %q on a TimeSeries subject, want %q", ErrBadEvent, typ, TypeTimeSeriesAppend)
	}
	var ev prismv1.TimeSeriesAppend
	if err := proto.Unmarshal(data, &ev); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrBadEvent, err)
	}
	if string(ev.GetSeriesId()) != string(id) {
		return nil, fmt.Errorf("%w: payload series id %q differs from subject series id %q", ErrBadEvent, ev.GetSeriesId(), id)
	}
	for i, e := range ev.GetEvents() {
		if e.GetEventTime() == nil {
			return nil, fmt.Errorf("%w: event %d: no event_time", ErrBadEvent, i)
		}
		if err := e.GetEventTime().CheckValid(); err != nil {
			return nil, fmt.Errorf("%w: event %d: event_time: %v", ErrBadEvent, i, err)
		}
		if n := len(e.GetEventId()); n == 0 || n > MaxEventIDLen {
			return nil, fmt.Errorf("%w: event %d: event_id of %d bytes, want 1 to %d", ErrBadEvent, i, n, MaxEventIDLen)
		}
	}
	return &ev, nil
}

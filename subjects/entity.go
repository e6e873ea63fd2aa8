package subjects

import (
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// AbstractionEntity is the event-subject token of the Entity abstraction.
const AbstractionEntity = "en"

// CloudEvents types of Entity events.
const (
	TypeEntityPut    = "io.prism.en.put"
	TypeEntityDelete = "io.prism.en.delete"
	// TypeEntityClaim is a unique-index claim (prismv1.EntityClaim) on
	// EntityClaim's subject: no data change, projectors skip it.
	TypeEntityClaim = "io.prism.en.claim"
)

// claimToken is the event-subject token of unique-index claims.
const claimToken = "uq"

// EntityClaim is the subject of the claims of key in unique index index
// of namespace ns: prism.<ns>.events.uq.<encoded index, NUL, key>.
func EntityClaim(ns, index string, key []byte) string {
	return Root + "." + ns + ".events." + claimToken + "." + EncodeID(claimID(index, key))
}

func claimID(index string, key []byte) []byte {
	return append(append([]byte(index), 0), key...)
}

// NewEntityClaim builds the claim event of c, on EntityClaim's subject.
func NewEntityClaim(meta EventMeta, c *prismv1.EntityClaim) (*nats.Msg, error) {
	data, err := proto.Marshal(c)
	if err != nil {
		return nil, fmt.Errorf("marshal claim: %w", err)
	}
	msg := newEvent(meta, EntityClaim(meta.Namespace, c.GetIndex(), c.GetKey()), TypeEntityClaim, EncodeID(claimID(c.GetIndex(), c.GetKey())))
	msg.Data = data
	return msg, nil
}

// DecodeEntityClaim decodes the data of a claim event. Errors wrap
// ErrBadEvent.
func DecodeEntityClaim(header nats.Header, data []byte) (*prismv1.EntityClaim, error) {
	if typ := header.Get(HeaderType); typ != TypeEntityClaim {
		return nil, fmt.Errorf("%w: type %q, want %q", ErrBadEvent, typ, TypeEntityClaim)
	}
	var c prismv1.EntityClaim
	if err := proto.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("%w: claim: %v", ErrBadEvent, err)
	}
	return &c, nil
}

// EntityEvent is the event subject of the record with primary key id in
// namespace ns: prism.<ns>.events.en.<encoded id>.
func EntityEvent(ns string, id []byte) string {
	return Root + "." + ns + ".events." + AbstractionEntity + "." + EncodeID(id)
}

// AllEntityEvents is the filter subject of every Entity put and delete of
// ns (not the unique-index claims).
func AllEntityEvents(ns string) string {
	return Root + "." + ns + ".events." + AbstractionEntity + ".*"
}

// NewEntityEvent builds the CloudEvent message of an Entity put or delete
// of record ev.Id: subject EntityEvent, type TypeEntityPut or
// TypeEntityDelete, ce-subject the encoded id, the marshalled event as
// data. The gateway validates the record before.
func NewEntityEvent(meta EventMeta, ev *prismv1.EntityEvent) (*nats.Msg, error) {
	data, err := proto.Marshal(ev)
	if err != nil {
		return nil, fmt.Errorf("marshal event: %w", err)
	}
	typ := TypeEntityPut
	if ev.GetDelete() {
		typ = TypeEntityDelete
	}
	msg := newEvent(meta, EntityEvent(meta.Namespace, ev.GetId()), typ, EncodeID(ev.GetId()))
	msg.Data = data
	return msg, nil
}

// DecodeEntityEvent decodes an Entity event from its subject, headers and
// data. It returns (nil, nil) for an idempotency marker and an error
// wrapping ErrBadEvent for anything malformed: a subject of another
// abstraction, a type other than TypeEntityPut or TypeEntityDelete, a
// payload that does not parse or whose id or kind disagrees with the
// subject and type, a put without a record or a delete with one.
func DecodeEntityEvent(subject string, header nats.Header, data []byte) (*prismv1.EntityEvent, error) {
	es, marker, err := parseEnvelope(subject, header, AbstractionEntity)
	if err != nil || marker {
		return nil, err
	}
	return decodeEntity(es.ID, header, data)
}

func decodeEntity(id []byte, header nats.Header, data []byte) (*prismv1.EntityEvent, error) {
	var ev prismv1.EntityEvent
	if err := proto.Unmarshal(data, &ev); err != nil {
		return nil, fmt.Errorf("%w: payload: %v", ErrBadEvent, err)
	}
	if string(ev.GetId()) != string(id) {
		return nil, fmt.Errorf("%w: payload id %q differs from subject id %q", ErrBadEvent, ev.GetId(), id)
	}
	switch typ := header.Get(HeaderType); {
	case typ == TypeEntityPut && !ev.GetDelete() && len(ev.GetRecord()) > 0:
	case typ == TypeEntityDelete && ev.GetDelete() && len(ev.GetRecord()) == 0 && len(ev.GetIndexes()) == 0:
	default:
		return nil, fmt.Errorf("%w: type %q does not match the payload", ErrBadEvent, typ)
	}
	return &ev, nil
}

// EntityLineageOf is the lineage of the event stored at seq with header:
// its ce-id, ce-time (unset when it does not parse) and principal.
func EntityLineageOf(header nats.Header, seq uint64) *prismv1.EntityLineage {
	l := &prismv1.EntityLineage{EventId: header.Get(HeaderID), Seq: seq, Principal: header.Get(HeaderPrincipal)}
	if t, err := time.Parse(time.RFC3339Nano, header.Get(HeaderTime)); err == nil {
		l.Time = timestamppb.New(t)
	}
	return l
}

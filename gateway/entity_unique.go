package gateway

import (
	"bytes"
	"context"
	"errors"
	"strconv"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"

	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// Unique indexes. A put of a namespace with unique indexes is one atomic
// batch: a claim (prismv1.EntityClaim) of each of its unique values, on
// the value's own subject and conditional on that subject's last
// sequence, then the put. Two puts that claim one value concurrently
// cannot both be stored: the second batch fails on its claim's expected
// sequence. A claim whose owner's last event no longer holds the value
// (the owner changed it or was deleted) is stale and is taken over, so
// nothing ever releases a claim. Atomic batches cannot use Nats-Msg-Id, so
// an idempotency token heads the batch as a marker, as mutate does.

// hasUnique reports whether t has a unique index.
func (t *entityType) hasUnique() bool {
	for _, ix := range t.schema.Indexes {
		if ix.Unique {
			return true
		}
	}
	return false
}

// putUnique stores ev, the put of req for record rec, with claims of its
// unique values. Errors: CONFLICT (another record holds a value, or a
// concurrent put claimed it first), FAILED_PRECONDITION (no atomic
// batches), and those of writeOne.
func (g *Gateway) putUnique(ctx context.Context, r *request, req *prismv1.EntityPutRequest, ev *prismv1.EntityEvent, rec protoreflect.Message) (proto.Message, error) {
	ns, t := r.ns.Name, r.ns.entity
	if err := g.checkAtomicPublish(ctx, ns); err != nil {
		return nil, err
	}
	stream, err := g.stream(ctx, ns)
	if err != nil {
		return nil, status.FromJetStream(err, ns, "looking up the stream")
	}
	token := req.GetIdempotencyToken()
	meta, err := g.eventMeta(ctx, r, token, req)
	if err != nil {
		return nil, err
	}
	var claims []*nats.Msg
	for _, entry := range ev.GetIndexes() {
		if ix, _ := t.schema.Index(entry.GetIndex()); !ix.Unique {
			continue
		}
		if err := validateKey("the value of unique index "+entry.GetIndex(), entry.GetKey()); err != nil {
			return nil, err
		}
		expected, err := g.claimable(ctx, r, stream, ev.GetId(), entry)
		if err != nil {
			return nil, err
		}
		msg, err := subjects.NewEntityClaim(meta, &prismv1.EntityClaim{Index: entry.GetIndex(), Key: entry.GetKey(), Owner: ev.GetId()})
		if err != nil {
			return nil, err
		}
		msg.Header.Set(subjects.HeaderExpectedSubjectSeq, strconv.FormatUint(expected, 10))
		claims = append(claims, msg)
	}
	sealed, err := g.sealEntity(ctx, r, ev.GetId(), rec)
	if err != nil {
		return nil, err
	}
	if sealed != nil {
		ev.Record = sealed
	}
	put, err := subjects.NewEntityEvent(meta, ev)
	if err != nil {
		return nil, err
	}
	if len(put.Data) > namespaces.MaxEventBytes {
		return nil, status.Invalidf("the event of this put is %d bytes; the limit is %d", len(put.Data), namespaces.MaxEventBytes)
	}
	var msgs []*nats.Msg
	if token != "" {
		marker := subjects.NewMarker(meta, len(claims)+1)
		marker.Header.Set(subjects.HeaderExpectedSubjectSeq, "0")
		msgs = append(msgs, marker)
	}
	msgs = append(append(msgs, claims...), put)

	ack, dup, err := g.publishAtomic(ctx, ns, msgs, token, meta.RequestHash, len(claims)+1, "storing the put")
	if dup != nil {
		return g.afterWrite(ctx, r, &prismv1.WriteResponse{Seq: dup.GetSeq(), Duplicate: true})
	}
	if status.IsWrongLastSequence(err) {
		return nil, status.Newf(prismv1.Code_CONFLICT, "namespace %s: a concurrent put claimed a unique value of record %q first; read and retry", ns, ev.GetId())
	}
	if err != nil {
		return nil, err
	}
	return g.afterWrite(ctx, r, &prismv1.WriteResponse{Seq: ack.Sequence})
}

// claimable returns the sequence a claim of entry by record id must
// expect (0: the value was never claimed), or CONFLICT when another
// record holds the value now. A value never claimed may still be held by
// a record stored before the index was added by a live prism apply
// (filled from the stored records, without claims): the backend's index
// answers that.
func (g *Gateway) claimable(ctx context.Context, r *request, stream jetstream.Stream, id []byte, entry *prismv1.IndexEntry) (uint64, error) {
	ns := r.ns.Name
	last, err := stream.GetLastMsgForSubject(ctx, subjects.EntityClaim(ns, entry.GetIndex(), entry.GetKey()))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return 0, g.heldUnclaimed(ctx, r, id, entry)
	}
	if err != nil {
		return 0, status.FromJetStream(err, ns, "reading a unique-index claim")
	}
	claim, err := subjects.DecodeEntityClaim(last.Header, last.Data)
	if err != nil {
		return 0, &status.Error{Code: prismv1.Code_INTERNAL, Message: "namespace " + ns + ": a unique-index claim does not decode", Err: err}
	}
	if owner := claim.GetOwner(); !bytes.Equal(owner, id) {
		held, err := g.holds(ctx, stream, ns, owner, entry)
		if err != nil {
			return 0, err
		}
		if held {
			return 0, status.Newf(prismv1.Code_CONFLICT, "namespace %s: record %q already holds this value of unique index %s; change or delete it first", ns, owner, entry.GetIndex())
		}
	}
	return last.Sequence, nil
}

// holds reports whether the last event of record owner is a put with
// entry among its index entries.
func (g *Gateway) holds(ctx context.Context, stream jetstream.Stream, ns string, owner []byte, entry *prismv1.IndexEntry) (bool, error) {
	last, err := stream.GetLastMsgForSubject(ctx, subjects.EntityEvent(ns, owner))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return false, nil
	}
	if err != nil {
		return false, status.FromJetStream(err, ns, "reading the record that claimed a unique value")
	}
	ev, err := subjects.DecodeEntityEvent(last.Subject, last.Header, last.Data)
	if err != nil || ev == nil || ev.GetDelete() {
		return false, nil
	}
	for _, e := range ev.GetIndexes() {
		if e.GetIndex() == entry.GetIndex() && bytes.Equal(e.GetKey(), entry.GetKey()) {
			return true, nil
		}
	}
	return false, nil
}

// heldUnclaimed returns CONFLICT when a record other than id holds the
// never claimed value of entry in the backend's index. While the index is
// building (or failed) the claims alone decide: a duplicate written then
// fails the build, which names it.
func (g *Gateway) heldUnclaimed(ctx context.Context, r *request, id []byte, entry *prismv1.IndexEntry) error {
	key := entry.GetKey()
	resp, err := r.ns.enReader.ScanEntities(ctx, &prismv1.EntityScanRequest{Index: entry.GetIndex(), From: key, To: append(append([]byte{}, key...), 0), PageSize: 2})
	var nr IndexNotReadyError
	if errors.As(err, &nr) && nr.IndexNotReady() {
		return nil
	}
	if err != nil {
		return readError(err, r.ns.Name, "unique-index check")
	}
	for _, rec := range resp.GetRecords() {
		if !bytes.Equal(rec.GetId(), id) {
			return status.Newf(prismv1.Code_CONFLICT, "namespace %s: record %q already holds this value of unique index %s; change or delete it first", r.ns.Name, rec.GetId(), entry.GetIndex())
		}
	}
	return nil
}

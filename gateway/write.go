package gateway

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// put stores a KeyValue put event; see writeOne.
func (g *Gateway) put(ctx context.Context, r *request, req *prismv1.PutRequest) (proto.Message, error) {
	return g.writeOne(ctx, r, singleWrite{
		req: req, token: req.GetIdempotencyToken(), expected: req.ExpectedRevision,
		record: req.GetId(), unit: "items",
		event: func(meta subjects.EventMeta) (*nats.Msg, error) {
			ev, err := g.putEvent(ctx, r, req, meta.Time)
			if err != nil {
				return nil, err
			}
			return subjects.NewKeyValueEvent(meta, ev)
		},
	})
}

// delete stores a KeyValue delete event; see writeOne.
func (g *Gateway) delete(ctx context.Context, r *request, req *prismv1.DeleteRequest) (proto.Message, error) {
	return g.writeOne(ctx, r, singleWrite{
		req: req, token: req.GetIdempotencyToken(), expected: req.ExpectedRevision,
		record: req.GetId(), unit: "keys", event: keyValueEvent(deleteEvent(req)),
	})
}

func keyValueEvent(ev *prismv1.KeyValueEvent) func(subjects.EventMeta) (*nats.Msg, error) {
	return func(meta subjects.EventMeta) (*nats.Msg, error) { return subjects.NewKeyValueEvent(meta, ev) }
}

// singleWrite is a request stored as exactly one event: a KeyValue put or
// delete, or a TimeSeries append.
type singleWrite struct {
	req      proto.Message // hashed for the idempotency check
	token    string        // idempotency token; "" for none
	expected *uint64       // expected revision of record; nil: unconditional
	record   []byte        // the record or series written, named in errors
	unit     string        // what the request holds ("items"), for errors
	// event builds the event message from its envelope metadata.
	event func(subjects.EventMeta) (*nats.Msg, error)
}

// writeOne publishes the event of w and replies with its sequence. The
// idempotency token becomes Nats-Msg-Id, so JetStream stores a retry once,
// and the request hash is stored with the event, so a retry with another
// body is refused; the expected revision becomes
// Nats-Expected-Last-Subject-Sequence, so JetStream refuses a stale write.
//
// Errors: INVALID_ARGUMENT (event too large), CONFLICT (stale revision),
// IDEMPOTENCY_MISMATCH (token reused with another body), UNAVAILABLE
// (JetStream), NOT_CONSISTENT_YET (strong namespace, projection too slow).
func (g *Gateway) writeOne(ctx context.Context, r *request, w singleWrite) (proto.Message, error) {
	ns, token, expected := r.ns.Name, w.token, w.expected
	meta, err := g.eventMeta(ctx, r, token, w.req)
	if err != nil {
		return nil, err
	}
	if token != "" {
		// A retry after JetStream's duplicate window: answered from the
		// token bucket, never stored again.
		resp, err := g.rememberedWrite(ctx, r, token, meta.RequestHash)
		if err != nil {
			return nil, err
		}
		if resp != nil {
			return g.afterWrite(ctx, r, resp)
		}
	}
	msg, err := w.event(meta)
	if err != nil {
		return nil, err
	}
	if len(msg.Data) > namespaces.MaxEventBytes {
		return nil, status.Invalidf("the event of this write is %d bytes; the limit is %d: write fewer or smaller %s per request", len(msg.Data), namespaces.MaxEventBytes, w.unit)
	}
	if token != "" {
		msg.Header.Set(subjects.HeaderMsgID, token)
	}
	if expected != nil {
		msg.Header.Set(subjects.HeaderExpectedSubjectSeq, strconv.FormatUint(*expected, 10))
	}
	pubStart := time.Now()
	pctx, span := g.startChildSpan(ctx, spanPublish, clientSpanOpts)
	if span.IsRecording() {
		span.SetAttributes(attrNamespace.String(ns), attrEvents.Int(1))
	}
	ack, err := g.publish(pctx, msg)
	// A stale expected revision is the caller's conflict, not a failure.
	endChildSpan(span, err != nil && !status.IsWrongLastSequence(err))
	g.metrics.observePublish(ns, time.Since(pubStart))
	if err != nil {
		if !status.IsWrongLastSequence(err) {
			return nil, status.FromJetStream(err, ns, "storing the write")
		}
		// JetStream checks the expected revision before the duplicate
		// window, so the retry of a conditional write that was stored
		// lands here: the record's last event then carries our token.
		if token != "" {
			resp, ok, rerr := g.retriedConditional(ctx, ns, msg.Subject, token, meta.RequestHash)
			if rerr != nil {
				return nil, rerr
			}
			if ok {
				if err := g.rememberWrite(ctx, r, token, meta.RequestHash, resp.Seq); err != nil {
					return nil, err
				}
				return g.afterWrite(ctx, r, resp)
			}
		}
		if expected == nil { // JetStream checks no other expectation
			return nil, status.FromJetStream(err, ns, "storing the write")
		}
		return nil, conflictError(err, w.record, *expected)
	}
	resp := &prismv1.WriteResponse{Seq: ack.Sequence}
	if ack.Duplicate {
		if err := g.checkDuplicate(ctx, r, ack.Sequence, token, meta.RequestHash); err != nil {
			return nil, err
		}
		resp.Duplicate = true
	}
	if token != "" {
		if err := g.rememberWrite(ctx, r, token, meta.RequestHash, resp.Seq); err != nil {
			return nil, err
		}
	}
	return g.afterWrite(ctx, r, resp)
}

// checkDuplicate compares the request hash stored with the event at seq,
// which JetStream reported as the original of a duplicate, with hash.
func (g *Gateway) checkDuplicate(ctx context.Context, r *request, seq uint64, token, hash string) error {
	ns := r.ns.Name
	stream, err := g.stream(ctx, ns)
	if err != nil {
		return status.FromJetStream(err, ns, "looking up the stream")
	}
	stored, err := stream.GetMsg(ctx, seq)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		// The original is gone (purged or deleted); JetStream still says it
		// was stored, so it was.
		g.log.Warn("original of a duplicate write is gone; cannot compare bodies", "request_id", r.id, "namespace", ns, "seq", seq)
		return nil
	}
	if err != nil {
		return status.FromJetStream(err, ns, "reading the original of a retried write")
	}
	if stored.Header.Get(subjects.HeaderRequestHash) != hash {
		return mismatchError(token, seq)
	}
	return nil
}

// retriedConditional reports whether the last event on subject was stored
// by a request with idempotency token token; if so it is a retry, answered
// as a duplicate when its hash matches and IDEMPOTENCY_MISMATCH otherwise.
func (g *Gateway) retriedConditional(ctx context.Context, ns, subject, token, hash string) (*prismv1.WriteResponse, bool, error) {
	stream, err := g.stream(ctx, ns)
	if err != nil {
		return nil, false, status.FromJetStream(err, ns, "looking up the stream")
	}
	last, err := stream.GetLastMsgForSubject(ctx, subject)
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, status.FromJetStream(err, ns, "reading the record's last event")
	}
	if last.Header.Get(subjects.HeaderMsgID) != token {
		return nil, false, nil
	}
	if last.Header.Get(subjects.HeaderRequestHash) != hash {
		return nil, false, mismatchError(token, last.Sequence)
	}
	return &prismv1.WriteResponse{Seq: last.Sequence, Duplicate: true}, true, nil
}

func mismatchError(token string, seq uint64) *status.Error {
	return status.Newf(prismv1.Code_IDEMPOTENCY_MISMATCH, "idempotency token %q was already used at seq %d by a request with a different body; nothing was written: use a new token for a new request", token, seq)
}

// conflictError explains a refused conditional write of record id.
func conflictError(err error, id []byte, expected uint64) *status.Error {
	cur, ok := status.CurrentSequence(err)
	var e *status.Error
	switch {
	case !ok:
		e = status.Newf(prismv1.Code_CONFLICT, "record %q is no longer at revision %d; read it again and retry with its current revision", id, expected)
	case cur == 0:
		e = status.Newf(prismv1.Code_CONFLICT, "record %q does not exist, so it is not at the expected revision %d; use expected_revision 0 to create it", id, expected)
	case expected == 0:
		e = status.Newf(prismv1.Code_CONFLICT, "record %q already exists (revision %d); expected_revision 0 means it must not exist", id, cur)
	default:
		e = status.Newf(prismv1.Code_CONFLICT, "record %q is at revision %d, not the expected %d; read it again and retry with the current revision", id, cur, expected)
	}
	e.Err = err
	return e
}

// afterWrite waits, in a strong namespace, until the primary projection has
// applied the write, then returns resp. The write is stored either way; a
// timeout is NOT_CONSISTENT_YET carrying its seq.
func (g *Gateway) afterWrite(ctx context.Context, r *request, resp *prismv1.WriteResponse) (proto.Message, error) {
	if r.ns.Consistency != namespaces.Strong {
		return resp, nil
	}
	if err := g.waitApplied(ctx, r.ns, r.ns.strongApplied(), resp.GetSeq(), waitStrongWrite); err != nil {
		var e *status.Error
		if errors.As(err, &e) && e.Code == prismv1.Code_NOT_CONSISTENT_YET {
			e.Seq = resp.GetSeq()
			e.Message = fmt.Sprintf("the write IS stored at seq %d and will be applied, but the projection of namespace %s has not applied it within %v; read with min_seq %d to see it", resp.GetSeq(), r.ns.Name, g.opts.consistencyWait, resp.GetSeq())
		}
		return nil, err
	}
	return resp, nil
}

// waitApplied waits, bounded by the consistency wait, until w (the
// progress of ns's primary projection, or of both targets while a migration
// fences strong writes) has applied seq, and records the wait as kind
// (waitStrongWrite or waitMinSeqRead); a wait that is not immediate is a
// span. Errors: NOT_CONSISTENT_YET on timeout, UNAVAILABLE when the
// projection fails, ctx's error when ctx ends.
func (g *Gateway) waitApplied(ctx context.Context, ns *namespaceEntry, w AppliedWaiter, seq uint64, kind string) error {
	if w.Applied() >= seq {
		g.metrics.observeWait(ns.Name, kind, resultImmediate, 0)
		return nil
	}
	start := time.Now()
	ctx, span := g.startChildSpan(ctx, spanConsistencyWait, internalOpts)
	wctx, cancel := context.WithTimeout(ctx, g.opts.consistencyWait)
	defer cancel()
	err := w.WaitApplied(wctx, seq)
	result := resultError
	defer func() {
		g.metrics.observeWait(ns.Name, kind, result, time.Since(start))
		if span.IsRecording() {
			span.SetAttributes(attrNamespace.String(ns.Name), attrWaitKind.String(kind), attrWaitRes.String(result))
		}
		endChildSpan(span, result != resultApplied)
	}()
	switch {
	case err == nil:
		result = resultApplied
		return nil
	case ctx.Err() != nil:
		return ctx.Err()
	case wctx.Err() != nil:
		result = resultTimeout
		return &status.Error{Code: prismv1.Code_NOT_CONSISTENT_YET, Message: fmt.Sprintf("the projection of namespace %s reached seq %d, not %d, within %v; retry later", ns.Name, w.Applied(), seq, g.opts.consistencyWait), Err: err}
	}
	return &status.Error{Code: prismv1.Code_UNAVAILABLE, Message: fmt.Sprintf("the projection of namespace %s cannot report progress; retry with backoff", ns.Name), Err: err}
}

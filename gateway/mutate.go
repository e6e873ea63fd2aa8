package gateway

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// checkAtomicPublish refuses a mutate on a stream without atomic batch
// publish: a NATS server older than 2.12 ignores the batch headers and
// would store the first events of a batch whose later events fail, half
// applying the mutate.
func (g *Gateway) checkAtomicPublish(ctx context.Context, ns string) error {
	s, err := g.stream(ctx, ns)
	if err != nil {
		return status.FromJetStream(err, ns, "looking up the stream")
	}
	if !s.CachedInfo().Config.AllowAtomicPublish {
		return status.Newf(status.ErrFailedPrecondition.Code, "namespace %s: mutate needs atomic batch publish, which this NATS server does not support (nats-server 2.12 or later); put and delete work", ns)
	}
	return nil
}

// mutate stores the events of every mutation in one atomic batch: all of
// them or none. Atomic batches cannot carry Nats-Msg-Id usefully (a
// duplicate id refuses the whole batch without telling the original seq),
// so a request with an idempotency token is headed by a marker event on
// subjects.Marker(ns, token) that must not exist yet. A retry therefore
// fails on the marker, and the marker tells the original sequences: the
// mutations follow it contiguously.
//
// A put item with a chunked value (ADR 025) is committed as a put commits
// it (putEvent, commitUpload): its upload is checked, and its event
// carries the reference. Every event is built before the batch is
// published, so an upload that is incomplete or does not match refuses
// the whole mutate with nothing of it stored.
//
// Errors: as writeOne; INVALID_ARGUMENT naming the mutation whose upload
// does not check out.
func (g *Gateway) mutate(ctx context.Context, r *request, req *prismv1.MutateRequest) (proto.Message, error) {
	ns := r.ns.Name
	if err := g.checkAtomicPublish(ctx, ns); err != nil {
		return nil, err
	}
	token := req.GetIdempotencyToken()
	meta, err := g.eventMeta(ctx, r, token, req)
	if err != nil {
		return nil, err
	}
	muts := req.GetMutations()
	msgs := make([]*nats.Msg, 0, len(muts)+1)
	if token != "" {
		marker := subjects.NewMarker(meta, len(muts))
		marker.Header.Set(subjects.HeaderExpectedSubjectSeq, "0")
		msgs = append(msgs, marker)
	}
	total := 0
	for i, m := range muts {
		var (
			ev       *prismv1.KeyValueEvent
			expected *uint64
		)
		if p := m.GetPut(); p != nil {
			if ev, err = g.putEvent(ctx, r, p, meta.Time); err != nil {
				return nil, inMutation(err, i)
			}
			expected = p.ExpectedRevision
		} else {
			d := m.GetDelete()
			ev, expected = deleteEvent(d), d.ExpectedRevision
		}
		msg, err := subjects.NewKeyValueEvent(meta, ev)
		if err != nil {
			return nil, err
		}
		if len(msg.Data) > namespaces.MaxEventBytes {
			return nil, status.Invalidf("the event of mutation %d is %d bytes; the limit is %d: write fewer or smaller items", i+1, len(msg.Data), namespaces.MaxEventBytes)
		}
		total += len(msg.Data)
		if total > MaxBatchBytes {
			return nil, status.Invalidf("the events of mutations 1 to %d add up to %d bytes; the limit of one mutate is %d: split the request", i+1, total, MaxBatchBytes)
		}
		if expected != nil {
			msg.Header.Set(subjects.HeaderExpectedSubjectSeq, strconv.FormatUint(*expected, 10))
		}
		msgs = append(msgs, msg)
	}

	ack, dup, err := g.publishAtomic(ctx, ns, msgs, token, meta.RequestHash, len(muts), "storing the mutate batch")
	if dup != nil {
		return g.afterWrite(ctx, r, dup)
	}
	if status.IsWrongLastSequence(err) {
		return nil, g.mutateConflict(ctx, ns, req, err)
	}
	if err != nil {
		return nil, err
	}
	// The batch's messages got contiguous sequences ending at ack.Sequence.
	first := ack.Sequence - uint64(len(msgs)) + 1
	if token != "" {
		first++ // skip the marker
	}
	resp := &prismv1.WriteResponse{Seq: ack.Sequence, Seqs: seqRange(first, len(muts))}
	return g.afterWrite(ctx, r, resp)
}

// publishAtomic publishes msgs as one atomic batch, with the publish span
// and metric. A batch headed by the marker of token (when token is set)
// that JetStream refuses for a stale expected sequence is looked up as a
// retry: dup is then the reply of the original, whose marker is followed
// by n events (or the error is IDEMPOTENCY_MISMATCH). Any other stale
// expected sequence is returned as JetStream's error, for the caller to
// say which conflict it was; other failures as a status error naming what.
func (g *Gateway) publishAtomic(ctx context.Context, ns string, msgs []*nats.Msg, token, hash string, n int, what string) (ack *jetstreamext.BatchAck, dup *prismv1.WriteResponse, err error) {
	pubStart := time.Now()
	pctx, span := g.startChildSpan(ctx, spanPublish, clientSpanOpts)
	if span.IsRecording() {
		span.SetAttributes(attrNamespace.String(ns), attrEvents.Int(len(msgs)))
	}
	ack, err = jetstreamext.PublishMsgBatch(pctx, g.js, msgs)
	// A stale expected revision is the caller's conflict, not a failure.
	endChildSpan(span, err != nil && !status.IsWrongLastSequence(err))
	g.metrics.observePublish(ns, time.Since(pubStart))
	if err == nil {
		return ack, nil, nil
	}
	if !status.IsWrongLastSequence(err) {
		return nil, nil, status.FromJetStream(err, ns, what)
	}
	if token != "" {
		resp, ok, rerr := g.retriedMutate(ctx, ns, token, hash, n)
		if rerr != nil {
			return nil, nil, rerr
		}
		if ok {
			return nil, resp, nil
		}
	}
	return nil, nil, err
}

// inMutation names mutation i (from 0) in an INVALID_ARGUMENT of its put
// (a large value whose upload does not check out), so that the caller
// knows which one to fix; other errors pass unchanged.
func inMutation(err error, i int) error {
	var e *status.Error
	if !errors.As(err, &e) || e.Code != prismv1.Code_INVALID_ARGUMENT {
		return err
	}
	named := *e
	named.Message = "mutation " + strconv.Itoa(i+1) + ": " + e.Message + "; nothing of this mutate was written"
	return &named
}

func seqRange(first uint64, n int) []uint64 {
	seqs := make([]uint64, n)
	for i := range seqs {
		seqs[i] = first + uint64(i)
	}
	return seqs
}

// retriedMutate looks for the marker of token: if it exists, this request
// is a retry, answered as a duplicate when its hash matches and
// IDEMPOTENCY_MISMATCH otherwise.
func (g *Gateway) retriedMutate(ctx context.Context, ns, token, hash string, n int) (*prismv1.WriteResponse, bool, error) {
	stream, err := g.stream(ctx, ns)
	if err != nil {
		return nil, false, status.FromJetStream(err, ns, "looking up the stream")
	}
	marker, err := stream.GetLastMsgForSubject(ctx, subjects.Marker(ns, token))
	if errors.Is(err, jetstream.ErrMsgNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, status.FromJetStream(err, ns, "reading the idempotency marker")
	}
	if marker.Header.Get(subjects.HeaderRequestHash) != hash {
		return nil, false, mismatchError(token, marker.Sequence)
	}
	seqs := seqRange(marker.Sequence+1, n)
	return &prismv1.WriteResponse{Seq: seqs[len(seqs)-1], Seqs: seqs, Duplicate: true}, true, nil
}

// mutateConflict finds which mutation's expected revision is stale, to say
// so; JetStream refused the batch without naming the message.
func (g *Gateway) mutateConflict(ctx context.Context, ns string, req *prismv1.MutateRequest, cause error) error {
	stream, err := g.stream(ctx, ns)
	if err == nil {
		for i, m := range req.GetMutations() {
			var id []byte
			var expected *uint64
			switch {
			case m.GetPut() != nil:
				id, expected = m.GetPut().GetId(), m.GetPut().ExpectedRevision
			case m.GetDelete() != nil:
				id, expected = m.GetDelete().GetId(), m.GetDelete().ExpectedRevision
			}
			if expected == nil {
				continue
			}
			var cur uint64
			last, err := stream.GetLastMsgForSubject(ctx, subjects.KeyValueEvent(ns, id))
			switch {
			case errors.Is(err, jetstream.ErrMsgNotFound):
			case err != nil:
				continue
			default:
				cur = last.Sequence
			}
			if cur != *expected {
				e := conflictError(&jetstream.APIError{ErrorCode: status.JSErrWrongLastSequence, Description: "wrong last sequence: " + strconv.FormatUint(cur, 10)}, id, *expected)
				e.Message = "mutation " + strconv.Itoa(i+1) + ": " + e.Message + "; nothing of this mutate was written"
				e.Err = cause
				return e
			}
		}
	}
	return &status.Error{Code: prismv1.Code_CONFLICT, Message: "an expected revision of this mutate is stale; nothing was written: read the records again and retry", Err: cause}
}

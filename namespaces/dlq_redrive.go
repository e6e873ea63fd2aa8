package namespaces

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"

	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// DLQRedriveRequest re-applies the selected dead letters to their targets
// (ADR 024), then removes them from the dead-letter stream. Wait is how
// long to wait for the targets to apply what was republished (0: do not
// wait; at most the request's deadline).
type DLQRedriveRequest struct {
	DLQSelection
	WaitMS int64  `json:"wait_ms,omitempty"`
	By     string `json:"by,omitempty"`
}

// The outcomes of a redriven dead letter.
const (
	// RedriveApplied: the target applied the republished events.
	RedriveApplied = "applied"
	// RedrivePublished: the events are in the stream again, the target had
	// not applied them when the wait ended (it will: its lag shows it).
	RedrivePublished = "published"
	// RedriveFailedAgain: the target refused the event again; it has a
	// new dead letter (NewSeq), the cause is still there.
	RedriveFailedAgain = "dead-lettered again"
	// RedriveSuperseded: the stream no longer holds the event nor any
	// later event of its record (compacted away, expired, purged), so a
	// replay would not apply it either: nothing was republished.
	RedriveSuperseded = "superseded"
	// RedriveRefused: the dead letter cannot be redriven (Detail says why
	// and what to do); it is kept.
	RedriveRefused = "refused"
)

// RedriveResult is what became of one redriven dead letter.
type RedriveResult struct {
	DeadLetter
	Outcome string `json:"outcome"`
	// Republished are the stream sequences of the events republished for
	// it (shared by the dead letters of one record).
	Republished []uint64 `json:"republished,omitempty"`
	// NewSeq is the new dead letter of an outcome RedriveFailedAgain.
	NewSeq uint64 `json:"new_seq,omitempty"`
	// NewReason is its reason.
	NewReason string `json:"new_reason,omitempty"`
	// Detail says why an outcome RedriveRefused was refused.
	Detail string `json:"detail,omitempty"`
}

// DLQRedriveReply lists what became of each dead letter redriven, and how
// many dead letters the namespace has left.
type DLQRedriveReply struct {
	Name      string          `json:"name"`
	Redriven  []RedriveResult `json:"redriven"`
	Remaining uint64          `json:"remaining"`
}

// maxRedriveEvents bounds the events of one record a redrive republishes
// in one atomic batch (below JetStream's limit of 1000).
const maxRedriveEvents = 500

// casAttempts bounds the republishes of a record that a concurrent write
// to it beat.
const casAttempts = 5

// RedriveDeadLetters re-applies the dead letters req selects, all of
// which must exist, and removes them from the dead-letter stream once the
// events are stored in the namespace's stream again (ADR 024):
//
//   - a KeyValue, Entity or Graph event is re-projected with its record:
//     the record's events from the dead-lettered one on, as the stream
//     holds them now, are republished in order as one atomic batch that
//     JetStream refuses if the record was written meanwhile (then it is
//     read again). Every target applies them after what it has applied,
//     so the record ends as a replay of the stream leaves it and a
//     redriven event never overwrites a newer write.
//   - a TimeSeries or Log event is republished alone (a TimeSeries target
//     keeps one copy of an event id; a Log is appended to).
//
// An event refused again gets a new dead letter (outcome
// RedriveFailedAgain): nothing is ever lost. A record that cannot be
// redriven (too many events since, a graph vertex delete) is kept with
// outcome RedriveRefused. Errors: NOT_FOUND, INVALID_ARGUMENT, UNAVAILABLE
// as ShowDeadLetter, and JetStream's refusal of the republish.
func RedriveDeadLetters(ctx context.Context, js jetstream.JetStream, req DLQRedriveRequest) (DLQRedriveReply, error) {
	dlq, err := dlqStream(ctx, js)
	if err != nil {
		return DLQRedriveReply{}, err
	}
	dls, err := selectDeadLetters(ctx, dlq, req.DLQSelection)
	if err != nil {
		return DLQRedriveReply{}, err
	}
	if dls, err = withRecords(ctx, dlq, req.Name, dls); err != nil {
		return DLQRedriveReply{}, err
	}
	slices.SortFunc(dls, func(a, b DeadLetterEvent) int { return cmp.Compare(a.Seq, b.Seq) })
	stream, err := js.Stream(ctx, subjects.Stream(req.Name))
	if err != nil {
		return DLQRedriveReply{}, status.FromJetStream(err, req.Name, "reading the namespace's stream")
	}
	dlqInfo, err := dlq.Info(ctx)
	if err != nil {
		return DLQRedriveReply{}, status.FromJetStream(err, req.Name, "reading the dead-letter stream")
	}
	before := dlqInfo.State.LastSeq
	out := DLQRedriveReply{Name: req.Name, Redriven: make([]RedriveResult, 0, len(dls))}
	// A record is re-projected once, from the first of its dead letters
	// selected (of any target): done holds what that republished.
	first := map[string]uint64{}
	dead := map[string]map[uint64]bool{} // the dead-lettered seqs of each record
	for _, d := range dls {
		if !byRecord(d.Subject) {
			continue
		}
		if f, ok := first[d.Subject]; !ok || d.StreamSeq < f {
			first[d.Subject] = d.StreamSeq
		}
		if dead[d.Subject] == nil {
			dead[d.Subject] = map[uint64]bool{}
		}
		dead[d.Subject][d.StreamSeq] = true
	}
	done := map[string][]uint64{}
	refused := map[string]string{}
	for _, d := range dls {
		r := RedriveResult{DeadLetter: d.DeadLetter}
		if why, ok := refused[d.Subject]; ok {
			r.Outcome, r.Detail = RedriveRefused, why
			out.Redriven = append(out.Redriven, r)
			continue
		}
		seqs, ok := done[d.Subject]
		if !ok {
			from := d.DeadLetter
			if f, rec := first[d.Subject]; rec {
				from.StreamSeq = f
			}
			seqs, err = republish(ctx, js, stream, req.Name, from, dead[d.Subject])
			if e := (*status.Error)(nil); errors.As(err, &e) && e.Code == status.ErrFailedPrecondition.Code {
				// This record cannot be redriven; the others can.
				r.Outcome, r.Detail = RedriveRefused, e.Message
				out.Redriven = append(out.Redriven, r)
				if byRecord(d.Subject) {
					refused[d.Subject] = e.Message
				}
				continue
			}
			if err != nil {
				return out, err
			}
			if byRecord(d.Subject) {
				done[d.Subject] = seqs
			}
		}
		r.Republished, r.Outcome = seqs, RedrivePublished
		if len(seqs) == 0 {
			r.Outcome = RedriveSuperseded
		}
		if err := deleteDeadLetter(ctx, dlq, req.Name, d.Seq); err != nil {
			return out, err
		}
		out.Redriven = append(out.Redriven, r)
	}
	if wait := time.Duration(req.WaitMS) * time.Millisecond; wait > 0 {
		wctx, cancel := context.WithTimeout(ctx, wait)
		awaitApplied(wctx, js, req.Name, out.Redriven)
		cancel()
		if err := failedAgain(ctx, dlq, req.Name, before, out.Redriven); err != nil {
			return out, err
		}
	}
	out.Remaining, err = depth(ctx, dlq, req.Name)
	return out, err
}

// byRecord reports whether the events of subject are the states of one
// record (KeyValue, Entity, Graph), so that a redrive re-projects the
// record; TimeSeries and Log events are appends, redriven alone.
func byRecord(subject string) bool {
	ev, err := subjects.ParseEvent(subject)
	if err != nil {
		return false
	}
	switch ev.Abstraction {
	case subjects.AbstractionKeyValue, subjects.AbstractionEntity, subjects.AbstractionGraphVertex, subjects.AbstractionGraphEdge:
		return true
	}
	return false
}

// republish stores the events that re-apply dead letter d in the
// namespace's stream and returns their sequences; none when the stream
// holds nothing to re-apply.
// dead holds the stream sequences of the record's dead-lettered events.
func republish(ctx context.Context, js jetstream.JetStream, stream jetstream.Stream, ns string, d DeadLetter, dead map[uint64]bool) ([]uint64, error) {
	if !byRecord(d.Subject) {
		m, err := stream.GetMsg(ctx, d.StreamSeq)
		switch {
		case errors.Is(err, jetstream.ErrMsgNotFound) || isMsgNotFound(err):
			return nil, nil
		case err != nil:
			return nil, status.FromJetStream(err, ns, "reading the dead-lettered event")
		}
		msg := copyEvent(m)
		// A retried redrive within the duplicate window stores it once.
		msg.Header.Set(subjects.HeaderMsgID, fmt.Sprintf("prism-redrive:%s:%d", subjects.Stream(ns), d.StreamSeq))
		ack, err := js.PublishMsg(ctx, msg, jetstream.WithExpectStream(subjects.Stream(ns)))
		if err != nil {
			return nil, status.FromJetStream(err, ns, "republishing a dead-lettered event")
		}
		return []uint64{ack.Sequence}, nil
	}
	for attempt := 1; ; attempt++ {
		msgs, last, err := recordSince(ctx, stream, ns, d.Subject, d.StreamSeq)
		if err == nil && len(msgs) > 0 {
			msgs, err = vertexSuffix(d, msgs, dead)
		}
		if err != nil || len(msgs) == 0 {
			return nil, err
		}
		msgs[0].Header.Set(subjects.HeaderExpectedSubjectSeq, strconv.FormatUint(last, 10))
		ack, err := jetstreamext.PublishMsgBatch(ctx, js, msgs)
		if err == nil {
			seqs := make([]uint64, len(msgs))
			for i := range seqs {
				seqs[i] = ack.Sequence - uint64(len(msgs)-1-i)
			}
			return seqs, nil
		}
		if !status.IsWrongLastSequence(err) || attempt == casAttempts {
			return nil, status.FromJetStream(err, ns, fmt.Sprintf("republishing the record of dead letter %d", d.Seq))
		}
	}
}

// vertexSuffix trims the events of a graph vertex to republish: a vertex
// delete also deletes the vertex's edges, so republishing one would
// delete the edges written after it, which a replay keeps. The events up
// to the last delete are superseded by it, which the target applied; a
// dead-lettered delete (one of dead) cannot be re-projected from the
// vertex alone and is refused. Other subjects' events are returned as
// they are.
func vertexSuffix(d DeadLetter, msgs []*nats.Msg, dead map[uint64]bool) ([]*nats.Msg, error) {
	ev, err := subjects.ParseEvent(d.Subject)
	if err != nil || ev.Abstraction != subjects.AbstractionGraphVertex {
		return msgs, nil
	}
	for i := len(msgs) - 1; i >= 0; i-- {
		if msgs[i].Header.Get(subjects.HeaderType) != subjects.TypeGraphVertexDelete {
			continue
		}
		for _, m := range msgs[:i+1] {
			of, _ := strconv.ParseUint(m.Header.Get(subjects.HeaderRedriveOf), 10, 64)
			if m.Header.Get(subjects.HeaderType) == subjects.TypeGraphVertexDelete && dead[of] {
				return nil, status.Newf(status.ErrFailedPrecondition.Code, "dead letter %d: the vertex has a dead-lettered delete, and republished now it would also delete the edges written since; rebuild the target from the stream (prism replay --reset, docs/replay.md) or drop the dead letter", d.Seq)
			}
		}
		return msgs[i+1:], nil
	}
	return msgs, nil
}

// recordSince returns copies of the events of subject from stream sequence
// from on, in order, and the sequence of the last.
func recordSince(ctx context.Context, stream jetstream.Stream, ns, subject string, from uint64) ([]*nats.Msg, uint64, error) {
	var (
		msgs []*nats.Msg
		last uint64
	)
	for seq := from; ; {
		m, err := stream.GetMsg(ctx, seq, jetstream.WithGetMsgSubject(subject))
		if errors.Is(err, jetstream.ErrMsgNotFound) || isMsgNotFound(err) {
			return msgs, last, nil
		}
		if err != nil {
			return nil, 0, status.FromJetStream(err, ns, "reading the record's events")
		}
		if len(msgs) == maxRedriveEvents {
			// Not the subject: it holds the record id, and refusals are logged.
			return nil, 0, status.Newf(status.ErrFailedPrecondition.Code, "the record of the dead letter of stream sequence %d has more than %d events since: compact the stream first (prism compact %s), then redrive again", from, maxRedriveEvents, ns)
		}
		msgs = append(msgs, copyEvent(m))
		last, seq = m.Sequence, m.Sequence+1
	}
}

// awaitApplied marks RedriveApplied the results whose target's durable
// consumer has acknowledged (committed) every republished event, until
// ctx ends.
func awaitApplied(ctx context.Context, js jetstream.JetStream, ns string, rs []RedriveResult) {
	for {
		pending := false
		floors := map[string]uint64{}
		for i := range rs {
			r := &rs[i]
			if r.Outcome != RedrivePublished {
				continue
			}
			floor, ok := floors[r.Target]
			if !ok {
				floor = ackFloor(ctx, js, ns, r.Target)
				floors[r.Target] = floor
			}
			if floor >= r.Republished[len(r.Republished)-1] {
				r.Outcome = RedriveApplied
			} else {
				pending = true
			}
		}
		if !pending {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// ackFloor is the last stream sequence target's consumer acknowledged; 0
// when it cannot be read.
func ackFloor(ctx context.Context, js jetstream.JetStream, ns, target string) uint64 {
	c, err := js.Consumer(ctx, subjects.Stream(ns), subjects.Consumer(target))
	if err != nil {
		return 0
	}
	info, err := c.Info(ctx)
	if err != nil {
		return 0
	}
	return info.AckFloor.Stream
}

// failedAgain marks RedriveFailedAgain the results whose event has a dead
// letter after sequence before: a copy the redrive republished
// (subjects.HeaderRedriveOf names the original) that the target refused.
func failedAgain(ctx context.Context, dlq jetstream.Stream, ns string, before uint64, rs []RedriveResult) error {
	type origin struct {
		target string
		seq    uint64
	}
	idx := map[origin]int{}
	for i, r := range rs {
		idx[origin{r.Target, r.StreamSeq}] = i
	}
	return scan(ctx, dlq, ns, before, func(d DeadLetterEvent) bool {
		of, _ := strconv.ParseUint(nats.Header(d.Headers).Get(subjects.HeaderRedriveOf), 10, 64)
		if i, ok := idx[origin{d.Target, of}]; ok {
			rs[i].Outcome, rs[i].NewSeq, rs[i].NewReason = RedriveFailedAgain, d.Seq, d.Reason
		}
		return true
	})
}

// withRecords adds to dls the other dead letters of the records they
// re-project (KeyValue, Entity, Graph subjects), of every target: the
// republish re-applies those events too, so their dead letters go with
// it. It reads at most maxRecordScan dead letters of ns.
func withRecords(ctx context.Context, s jetstream.Stream, ns string, dls []DeadLetterEvent) ([]DeadLetterEvent, error) {
	records := map[string]bool{}
	have := map[uint64]bool{}
	for _, d := range dls {
		have[d.Seq] = true
		if byRecord(d.Subject) {
			records[d.Subject] = true
		}
	}
	if len(records) == 0 {
		return dls, nil
	}
	// The common case: every dead letter of ns is selected already.
	if d, err := depth(ctx, s, ns); err != nil || d <= uint64(len(dls)) {
		return dls, err
	}
	n := 0
	err := scan(ctx, s, ns, 0, func(d DeadLetterEvent) bool {
		if records[d.Subject] && !have[d.Seq] {
			dls = append(dls, d)
			have[d.Seq] = true
		}
		n++
		return n < maxRecordScan
	})
	return dls, err
}

// maxRecordScan bounds the dead letters withRecords reads.
const maxRecordScan = 10000

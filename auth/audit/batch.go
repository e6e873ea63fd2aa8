package audit

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
)

// Batching bounds. A lane sends a message at once while fewer than
// maxLaneInFlight of its messages wait for their ack; later records join
// the lane's open batch, sent when an ack comes back or when it is full.
const (
	maxLaneInFlight = 1
	maxBatchRecords = 256
	maxBatchBytes   = 256 << 10
)

// batch is one message of the audit stream: one record or more of one
// subject, one JSON document a line.
type batch struct {
	lane    *lane
	msg     nats.Msg
	msgID   [1]string
	n       int          // records
	waiters []chan error // told the outcome of the first attempt, then nil
	failed  bool         // its last attempt failed
	// lingering: no one waits for this open batch, and it waits up to
	// the Writer's linger for more records before it is sent.
	lingering bool
}

// lane is the batching state of one subject.
type lane struct {
	subject  string
	inflight int         // sent batches not yet stored (failed ones included)
	open     *batch      // records waiting to be sent
	timer    *time.Timer // ends the open batch's linger
}

// newBatch returns a batch of lane holding the record data (which it
// keeps).
func (w *Writer) newBatch(ln *lane, data []byte, waiter chan error) *batch {
	b := &batch{lane: ln, n: 1}
	b.msg.Subject = ln.subject
	b.msg.Data = data
	b.msgID[0] = w.msgID()
	b.msg.Header = nats.Header{jetstream.MsgIDHeader: b.msgID[:]}
	if waiter != nil {
		b.waiters = []chan error{waiter}
	}
	return b
}

// add spools the record data of subject, and returns the batch to
// publish now, if any (the caller publishes it without w.mu). When the
// spool is full only because JetStream has not acked yet, it waits for
// room until ctx ends (backpressure under load); when records are
// failing (an outage) it drops the record at once, so that requests fail
// fast.
func (w *Writer) add(ctx context.Context, subject string, data []byte, waiter chan error, rec *Record) (*batch, error) {
	w.mu.Lock()
	for w.pending >= w.o.spoolSize && !w.closed {
		if w.failing > 0 {
			n, lastErr := w.pending, w.lastErr
			w.mu.Unlock()
			w.c.dropped.Add(1)
			return nil, &status.Error{Op: "audit " + rec.Op, Code: prismv1.Code_UNAVAILABLE,
				Message: fmt.Sprintf("audit stream unavailable: %d records wait to be stored, the spool's limit, and they are failing; the record of %s was dropped", n, what(rec)), Err: lastErr}
		}
		if w.room == nil {
			w.room = make(chan struct{})
		}
		room := w.room
		w.mu.Unlock()
		select {
		case <-room:
		case <-ctx.Done():
			w.c.dropped.Add(1)
			return nil, &status.Error{Op: "audit " + rec.Op, Code: prismv1.Code_UNAVAILABLE,
				Message: fmt.Sprintf("audit stream unavailable: the spool stayed full (%d records) until the request ended; the record of %s was dropped", w.o.spoolSize, what(rec)), Err: ctx.Err()}
		}
		w.mu.Lock()
	}
	if w.closed {
		w.mu.Unlock()
		w.c.dropped.Add(1)
		return nil, &status.Error{Op: "audit " + rec.Op, Code: prismv1.Code_UNAVAILABLE, Message: fmt.Sprintf("audit stream unavailable: the audit writer is closed; the record of %s was dropped", what(rec))}
	}
	defer w.mu.Unlock()
	w.pending++
	w.c.pending.Add(1)
	if w.pending == w.o.spoolSize {
		w.updateHealthLocked()
	}
	ln := w.lanes[subject]
	if ln == nil {
		ln = &lane{subject: subject}
		w.lanes[subject] = ln
	}
	switch o := ln.open; {
	case o == nil && waiter == nil && w.o.linger > 0:
		ln.open = w.newBatch(ln, data, nil)
		w.lingerLocked(ln)
		return nil, nil
	case o == nil && ln.inflight < maxLaneInFlight:
		ln.open = w.newBatch(ln, data, waiter)
		return w.sendOpenLocked(ln), nil
	case o == nil:
		ln.open = w.newBatch(ln, data, waiter)
		return nil, nil
	case o.n >= maxBatchRecords || len(o.msg.Data)+1+len(data) > maxBatchBytes:
		// The open batch is full: send it now, open another.
		full := w.sendOpenLocked(ln)
		ln.open = w.newBatch(ln, data, waiter)
		return full, nil
	default:
		o.msg.Data = append(append(o.msg.Data, '\n'), data...)
		o.n++
		if waiter == nil {
			return nil, nil
		}
		o.waiters = append(o.waiters, waiter)
		if o.lingering && ln.inflight < maxLaneInFlight {
			// Someone waits now: no more lingering.
			return w.sendOpenLocked(ln), nil
		}
		o.lingering = false
		return nil, nil
	}
}

// lingerLocked lets ln's new open batch, which no one waits for, collect
// records for the Writer's linger before it is sent. w.mu is held.
func (w *Writer) lingerLocked(ln *lane) {
	b := ln.open
	b.lingering = true
	ln.timer = time.AfterFunc(w.o.linger, func() {
		w.mu.Lock()
		if ln.open != b || !b.lingering {
			w.mu.Unlock()
			return
		}
		b.lingering = false
		ln.timer = nil
		var send *batch
		if ln.inflight < maxLaneInFlight {
			send = w.sendOpenLocked(ln)
		}
		w.mu.Unlock()
		if send != nil {
			w.publish(send)
		}
	})
}

// sendOpenLocked takes ln's open batch for sending. w.mu is held.
func (w *Writer) sendOpenLocked(ln *lane) *batch {
	b := ln.open
	ln.open = nil
	if ln.timer != nil {
		ln.timer.Stop()
		ln.timer = nil
	}
	b.lingering = false
	ln.inflight++
	w.sent[&b.msg] = b
	return b
}

// publish sends b. It must not be called with w.mu held: the publisher
// calls onErr with its own lock held.
func (w *Writer) publish(b *batch) {
	if _, err := w.js.PublishMsgAsync(&b.msg); err != nil {
		w.onErr(w.js, &b.msg, err)
	}
}

// onAck is the publisher's ack handler: the batch is stored.
func (w *Writer) onAck(_ jetstream.JetStream, msg *nats.Msg, _ *jetstream.PubAck) {
	w.mu.Lock()
	b, ok := w.sent[msg]
	if !ok {
		w.mu.Unlock()
		return
	}
	delete(w.sent, msg)
	w.pending -= b.n
	w.c.pending.Add(-int64(b.n))
	w.c.stored.Add(uint64(b.n))
	if b.failed {
		w.failing -= b.n
		if w.failing == 0 {
			w.lastErr = nil
		}
	}
	ln := b.lane
	ln.inflight--
	var next *batch
	switch {
	case ln.open != nil && !ln.open.lingering && ln.inflight < maxLaneInFlight:
		next = w.sendOpenLocked(ln)
	case ln.open == nil && ln.inflight == 0:
		delete(w.lanes, ln.subject)
	}
	if w.unhealthy.Load() {
		w.updateHealthLocked()
	}
	if len(w.retry) > 0 {
		notify(w.recovered)
	}
	w.wakeLocked()
	if w.pending == 0 && w.drained != nil {
		close(w.drained)
		w.drained = nil
	}
	waiters := b.waiters
	b.waiters = nil
	w.mu.Unlock()
	for _, ch := range waiters {
		ch <- nil
	}
	if next != nil {
		w.publish(next)
	}
}

// onErr is the publisher's error handler, and publish's: the attempt
// failed, the batch waits for a retry. It runs with the publisher's lock
// held when an ack timed out, so it only queues.
func (w *Writer) onErr(_ jetstream.JetStream, msg *nats.Msg, err error) {
	w.mu.Lock()
	b, ok := w.sent[msg]
	if !ok {
		w.mu.Unlock()
		return
	}
	w.c.failed.Add(uint64(b.n))
	if !b.failed {
		b.failed = true
		w.failing += b.n
	}
	w.lastErr = err
	w.retry = append(w.retry, b)
	w.updateHealthLocked()
	w.wakeLocked()
	waiters := b.waiters
	b.waiters = nil
	w.mu.Unlock()
	if len(waiters) > 0 {
		e := &status.Error{Op: "audit", Code: prismv1.Code_UNAVAILABLE,
			Message: "audit stream unavailable: the audit record was not stored (it is kept and retried): " + err.Error(), Err: err}
		for _, ch := range waiters {
			ch <- e
		}
	}
	notify(w.kick)
}

// notify wakes whoever waits on ch (capacity 1) without blocking.
func notify(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// wakeLocked wakes the records waiting for room in the spool, to look
// again. w.mu is held.
func (w *Writer) wakeLocked() {
	if w.room != nil {
		close(w.room)
		w.room = nil
	}
}

// updateHealthLocked recomputes unhealthy, and logs when records start
// or stop failing (not when the spool fills under load, which can flap).
// w.mu is held.
func (w *Writer) updateHealthLocked() {
	w.unhealthy.Store(w.closed || w.failing > 0 || w.pending >= w.o.spoolSize)
	if failing := w.failing > 0; failing != w.loggedFailing && !w.closed {
		w.loggedFailing = failing
		if failing {
			w.o.logger.Error("audit stream unavailable: refusing requests until it stores records again", "pending", w.pending, "err", w.lastErr)
		} else {
			w.o.logger.Info("audit stream available again", "pending", w.pending)
		}
	}
}

// retryLoop republishes failed batches: after a backoff that doubles
// while attempts keep failing, at once when an ack shows the stream
// stores again.
func (w *Writer) retryLoop(ctx context.Context) {
	defer close(w.loopDone)
	backoff := w.o.minBackoff
	lastStored := w.c.stored.Load()
	timer := time.NewTimer(backoff)
	timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.kick:
		}
		if s := w.c.stored.Load(); s != lastStored || w.closing.Load() {
			backoff, lastStored = w.o.minBackoff, s
		}
		timer.Reset(backoff)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-timer.C:
		case <-w.recovered:
			timer.Stop()
		}
		backoff = min(2*backoff, w.o.maxBackoff)
		if w.js.Conn().Status() != nats.CONNECTED {
			// Publishing now would only fill the reconnect buffer.
			notify(w.kick)
			continue
		}
		w.mu.Lock()
		retry := w.retry
		w.retry = nil
		w.mu.Unlock()
		for _, b := range retry {
			w.publish(b)
		}
	}
}

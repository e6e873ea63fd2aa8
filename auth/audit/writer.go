package audit

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// Writer appends audit records to the audit stream. It is safe for
// concurrent use; the gateway keeps one per process.
//
// Every record is kept in a bounded spool from Record until JetStream
// acks it. Records are published asynchronously; a failed attempt (an
// error ack, no ack within the ack timeout, a lost connection) is retried
// with backoff, under the same Nats-Msg-Id so that the stream stores it
// once. While any record has failed and is not yet stored, or the spool is
// full, Healthy returns an error: the caller refuses new requests (it
// fails closed) until the stream stores again. A full spool while nothing
// fails is load: Record waits for room (backpressure) rather than drop.
type Writer struct {
	js       jetstream.JetStream // private context: its acks come to onAck and onErr
	o        options
	c        counters
	idPrefix string
	nextID   atomic.Uint64

	// unhealthy mirrors the condition Healthy reports, so that the
	// per-request check takes no lock.
	unhealthy atomic.Bool
	closing   atomic.Bool

	mu      sync.Mutex
	spool   map[*nats.Msg]*entry // every record not yet stored
	retry   []*entry             // failed records waiting for the retry loop
	failing int                  // records of the spool whose last attempt failed
	// loggedFailing is whether the last log line said records fail.
	loggedFailing bool
	lastErr       error // the last attempt's error, while failing > 0
	closed        bool
	drained       chan struct{} // closed when the spool empties, while Close waits
	room          chan struct{} // closed when records waiting for room should look again

	kick      chan struct{} // there are records to retry
	recovered chan struct{} // an ack arrived while records wait for a retry
	cancel    context.CancelFunc
	loopDone  chan struct{}

	closeOnce sync.Once
	closeErr  error
}

// entry is one spooled record. The message is embedded, so that a record
// costs one allocation less; the spool is keyed by its address, which is
// what the publisher's callbacks get back.
type entry struct {
	msg    nats.Msg
	msgID  [1]string
	waiter chan error // Record(wait) waits on it; nil once told or when none
	failed bool       // its last attempt failed
}

// NewWriter returns a Writer publishing on js's connection. js must be in
// Prism's account, where EnsureStream made the audit stream. The Writer
// makes its own JetStream context on that connection for its async
// publishes, so that js's own async publishes and their handlers are not
// affected.
//
// Errors: INVALID_ARGUMENT for a nil js or a bad option; an error from
// registering the metrics (a second Writer on the same registerer).
func NewWriter(js jetstream.JetStream, opts ...Option) (*Writer, error) {
	if js == nil || js.Conn() == nil {
		return nil, status.Invalidf("audit: NewWriter needs a JetStream context on a NATS connection")
	}
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	w := &Writer{
		o:         o,
		idPrefix:  nuid.Next() + ".",
		spool:     make(map[*nats.Msg]*entry, min(o.spoolSize, 1024)),
		kick:      make(chan struct{}, 1),
		recovered: make(chan struct{}, 1),
		loopDone:  make(chan struct{}),
	}
	pjs, err := jetstream.New(js.Conn(),
		jetstream.WithPublishAsyncAckHandler(w.onAck),
		jetstream.WithPublishAsyncErrHandler(w.onErr),
		jetstream.WithPublishAsyncTimeout(o.ackTimeout),
		// The spool bounds the records in flight, so the publisher never
		// stalls a request.
		jetstream.WithPublishAsyncMaxPending(o.spoolSize),
	)
	if err != nil {
		return nil, status.Invalidf("audit: %v", err)
	}
	w.js = pjs
	if o.registerer != nil {
		if err := o.registerer.Register(collector{&w.c}); err != nil {
			return nil, fmt.Errorf("audit: register metrics: %w", err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	w.cancel = cancel
	go w.retryLoop(ctx)
	return w, nil
}

// Record appends rec to the audit stream. It fills in rec's Time (now),
// Code (OK) and Node (the writer's) when they are empty, and hashes its
// RawIDs.
//
// With wait (writes, admin actions, replays, migration steps) it returns
// nil only once JetStream has stored the record, so that the caller
// acknowledges the operation only after its audit record is stored.
// Without wait (reads) it returns once the record is spooled; it is
// published asynchronously.
//
// A record that is spooled is never lost while the process lives: when an
// attempt fails it is retried until stored, even after Record returned an
// error for it.
//
// When the spool is full Record waits for room until ctx ends, unless
// records are failing to store: then it drops the record at once.
//
// Errors (*status.Error): INVALID_ARGUMENT for an operation name or a
// namespace that no audit subject can have; UNAVAILABLE when the record
// could not be spooled (the spool is full and records are failing, or it
// stayed full until ctx ended, or the writer is closed: the record is
// dropped and counted in prism_audit_dropped_total; the caller must not
// complete the operation, a read must not return its data) and, with
// wait, when the attempt to store it failed or ctx ended first (it stays
// spooled and is retried).
func (w *Writer) Record(ctx context.Context, rec Record, wait bool) error {
	if err := w.prepare(&rec); err != nil {
		w.c.dropped.Add(1)
		return err
	}
	e := &entry{}
	e.msg.Subject = subjects.Audit(rec.Namespace, rec.Op)
	e.msg.Data = rec.appendJSON(make([]byte, 0, rec.sizeHint()))
	e.msgID[0] = w.msgID()
	e.msg.Header = nats.Header{jetstream.MsgIDHeader: e.msgID[:]}
	var waiter chan error // e.waiter is set to nil by whoever tells it
	if wait {
		waiter = make(chan error, 1)
		e.waiter = waiter
	}
	if err := w.admit(ctx, e, &rec); err != nil {
		return err
	}
	w.publish(e)
	if !wait {
		return nil
	}
	select {
	case err := <-waiter:
		return err
	case <-ctx.Done():
		return &status.Error{Op: "audit " + rec.Op, Code: prismv1.Code_UNAVAILABLE,
			Message: fmt.Sprintf("audit stream unavailable: the audit record of %s was not stored before the request ended; it is kept and retried", what(&rec)), Err: ctx.Err()}
	}
}

// prepare validates rec and fills in its defaults.
func (w *Writer) prepare(rec *Record) error {
	if err := subjects.ValidateAuditOp(rec.Op); err != nil {
		return &status.Error{Op: "audit", Code: prismv1.Code_INVALID_ARGUMENT, Message: "cannot audit: " + err.Error(), Err: err}
	}
	if rec.Namespace != "" {
		if err := subjects.ValidateNamespace(rec.Namespace); err != nil {
			return &status.Error{Op: "audit " + rec.Op, Code: prismv1.Code_INVALID_ARGUMENT, Message: "cannot audit: " + err.Error(), Err: err}
		}
	}
	if rec.Time.IsZero() {
		rec.Time = time.Now()
	}
	if rec.Code == "" {
		rec.Code = CodeOK
	}
	if rec.Node == "" {
		rec.Node = w.o.node
	}
	return nil
}

// what names rec's operation in messages.
func what(rec *Record) string {
	if rec.Namespace == "" {
		return rec.Op
	}
	return rec.Op + " on namespace " + rec.Namespace
}

func (w *Writer) msgID() string {
	var buf [48]byte
	b := append(buf[:0], w.idPrefix...)
	return string(strconv.AppendUint(b, w.nextID.Add(1), 10))
}

// admit puts e in the spool. When the spool is full only because
// JetStream has not acked yet, it waits for room until ctx ends
// (backpressure under load); when records are failing (an outage) it
// drops e at once, so that requests fail fast.
func (w *Writer) admit(ctx context.Context, e *entry, rec *Record) error {
	w.mu.Lock()
	for len(w.spool) >= w.o.spoolSize && !w.closed {
		if w.failing > 0 {
			n, lastErr := len(w.spool), w.lastErr
			w.mu.Unlock()
			w.c.dropped.Add(1)
			return &status.Error{Op: "audit " + rec.Op, Code: prismv1.Code_UNAVAILABLE,
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
			return &status.Error{Op: "audit " + rec.Op, Code: prismv1.Code_UNAVAILABLE,
				Message: fmt.Sprintf("audit stream unavailable: the spool stayed full (%d records) until the request ended; the record of %s was dropped", w.o.spoolSize, what(rec)), Err: ctx.Err()}
		}
		w.mu.Lock()
	}
	if w.closed {
		w.mu.Unlock()
		w.c.dropped.Add(1)
		return &status.Error{Op: "audit " + rec.Op, Code: prismv1.Code_UNAVAILABLE, Message: fmt.Sprintf("audit stream unavailable: the audit writer is closed; the record of %s was dropped", what(rec))}
	}
	w.spool[&e.msg] = e
	w.c.pending.Add(1)
	if len(w.spool) == w.o.spoolSize {
		w.updateHealthLocked()
	}
	w.mu.Unlock()
	return nil
}

// wakeLocked wakes the records waiting for room in the spool, to look
// again. w.mu is held.
func (w *Writer) wakeLocked() {
	if w.room != nil {
		close(w.room)
		w.room = nil
	}
}

// publish sends e's record. It must not be called with w.mu held: the
// publisher calls onErr with its own lock held.
func (w *Writer) publish(e *entry) {
	if _, err := w.js.PublishMsgAsync(&e.msg); err != nil {
		w.onErr(w.js, &e.msg, err)
	}
}

// onAck is the publisher's ack handler: the record is stored.
func (w *Writer) onAck(_ jetstream.JetStream, msg *nats.Msg, _ *jetstream.PubAck) {
	w.mu.Lock()
	e, ok := w.spool[msg]
	if !ok {
		w.mu.Unlock()
		return
	}
	delete(w.spool, msg)
	w.c.pending.Add(-1)
	w.c.stored.Add(1)
	w.wakeLocked()
	if e.failed {
		w.failing--
		if w.failing == 0 {
			w.lastErr = nil
		}
	}
	if w.unhealthy.Load() {
		w.updateHealthLocked()
	}
	if len(w.retry) > 0 {
		notify(w.recovered)
	}
	if len(w.spool) == 0 && w.drained != nil {
		close(w.drained)
		w.drained = nil
	}
	waiter := e.waiter
	e.waiter = nil
	w.mu.Unlock()
	if waiter != nil {
		waiter <- nil
	}
}

// onErr is the publisher's error handler, and publish's: the attempt
// failed, the record waits for a retry. It runs with the publisher's lock
// held when an ack timed out, so it only queues.
func (w *Writer) onErr(_ jetstream.JetStream, msg *nats.Msg, err error) {
	w.mu.Lock()
	e, ok := w.spool[msg]
	if !ok {
		w.mu.Unlock()
		return
	}
	w.c.failed.Add(1)
	if !e.failed {
		e.failed = true
		w.failing++
	}
	w.lastErr = err
	w.retry = append(w.retry, e)
	w.updateHealthLocked()
	w.wakeLocked()
	waiter := e.waiter
	e.waiter = nil
	w.mu.Unlock()
	if waiter != nil {
		waiter <- &status.Error{Op: "audit", Code: prismv1.Code_UNAVAILABLE,
			Message: "audit stream unavailable: the audit record was not stored (it is kept and retried): " + err.Error(), Err: err}
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

// updateHealthLocked recomputes unhealthy, and logs when records start
// or stop failing (not when the spool fills under load, which can flap).
// w.mu is held.
func (w *Writer) updateHealthLocked() {
	w.unhealthy.Store(w.closed || w.failing > 0 || len(w.spool) >= w.o.spoolSize)
	if failing := w.failing > 0; failing != w.loggedFailing && !w.closed {
		w.loggedFailing = failing
		if failing {
			w.o.logger.Error("audit stream unavailable: refusing requests until it stores records again", "pending", len(w.spool), "err", w.lastErr)
		} else {
			w.o.logger.Info("audit stream available again", "pending", len(w.spool))
		}
	}
}

// Healthy reports whether the audit trail is being written: nil, or an
// UNAVAILABLE *status.Error ("audit stream unavailable: ...") while
// records fail to store, while the spool is full, or after Close. The
// gateway calls it before each request and refuses the request on error.
// It takes no lock when healthy.
func (w *Writer) Healthy() error {
	if !w.unhealthy.Load() {
		return nil
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	switch {
	case w.closed:
		return &status.Error{Code: prismv1.Code_UNAVAILABLE, Message: "audit stream unavailable: the audit writer is closed"}
	case len(w.spool) >= w.o.spoolSize:
		return &status.Error{Code: prismv1.Code_UNAVAILABLE, Message: fmt.Sprintf("audit stream unavailable: %d records wait to be stored, the spool's limit; requests are refused until JetStream stores them", len(w.spool)), Err: w.lastErr}
	case w.failing > 0:
		return &status.Error{Code: prismv1.Code_UNAVAILABLE, Message: fmt.Sprintf("audit stream unavailable: %d records failed to store and are being retried: %v", w.failing, w.lastErr), Err: w.lastErr}
	}
	return nil
}

// Stats returns the writer's counts.
func (w *Writer) Stats() Stats {
	return Stats{Stored: w.c.stored.Load(), Failed: w.c.failed.Load(), Dropped: w.c.dropped.Load(), Pending: int(w.c.pending.Load())}
}

// retryLoop republishes failed records: after a backoff that doubles while
// attempts keep failing, at once when an ack shows the stream stores again.
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
		batch := w.retry
		w.retry = nil
		w.mu.Unlock()
		for _, e := range batch {
			w.publish(e)
		}
	}
}

// Close stops accepting records (they are dropped and counted) and waits
// until the spool is stored, or until ctx ends; it does not close the
// connection. It is idempotent and returns the first call's result.
//
// Errors: an UNAVAILABLE *status.Error saying how many records could not
// be stored before ctx ended; they are lost, and counted in
// prism_audit_dropped_total.
func (w *Writer) Close(ctx context.Context) error {
	w.closeOnce.Do(func() { w.closeErr = w.close(ctx) })
	return w.closeErr
}

func (w *Writer) close(ctx context.Context) error {
	w.mu.Lock()
	w.closed = true
	w.updateHealthLocked()
	w.wakeLocked()
	drained := make(chan struct{})
	if len(w.spool) == 0 {
		close(drained)
	} else {
		w.drained = drained
	}
	w.mu.Unlock()
	w.closing.Store(true)
	notify(w.recovered)
	select {
	case <-drained:
	case <-ctx.Done():
	}
	w.cancel()
	<-w.loopDone

	w.mu.Lock()
	left, lastErr := len(w.spool), w.lastErr
	var waiters []chan error
	for msg, e := range w.spool {
		if e.waiter != nil {
			waiters = append(waiters, e.waiter)
			e.waiter = nil
		}
		delete(w.spool, msg)
	}
	w.retry, w.drained = nil, nil
	w.c.pending.Add(-int64(left))
	w.c.dropped.Add(uint64(left))
	w.mu.Unlock()
	w.js.CleanupPublisher()

	if left == 0 {
		return nil
	}
	err := &status.Error{Op: "audit close", Code: prismv1.Code_UNAVAILABLE,
		Message: fmt.Sprintf("audit: %d records could not be stored before the close deadline and are lost", left), Err: lastErr}
	if lastErr == nil {
		err.Err = ctx.Err()
	}
	for _, ch := range waiters {
		ch <- err
	}
	return err
}

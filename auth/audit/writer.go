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
// acks it. Records are published asynchronously, one message per record
// while the stream keeps up; the records of one subject (namespace and
// operation) that arrive while an earlier message of that subject waits
// for its ack are sent together in the next message, one JSON document a
// line, so that a busy gateway costs the stream one store per round trip
// rather than one per request. A failed attempt (an error ack, no ack
// within the ack timeout, a lost connection) is retried with backoff,
// under the same Nats-Msg-Id so that the stream stores it once. While any
// record has failed and is not yet stored, or the spool is full, Healthy
// returns an error: the caller refuses new requests (it fails closed)
// until the stream stores again. A full spool while nothing fails is
// load: Record waits for room (backpressure) rather than drop.
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
	lanes   map[string]*lane     // by subject, while it has records
	sent    map[*nats.Msg]*batch // published and not yet stored, by message
	retry   []*batch             // failed batches waiting for the retry loop
	pending int                  // records spooled: in open and sent batches
	failing int                  // records of batches whose last attempt failed
	lastErr error                // the last attempt's error, while failing > 0
	closed  bool
	drained chan struct{} // closed when the spool empties, while Close waits
	room    chan struct{} // closed when records waiting for room should look again
	// loggedFailing is whether the last log line said records fail.
	loggedFailing bool

	kick      chan struct{} // there are batches to retry
	recovered chan struct{} // an ack arrived while batches wait for a retry
	cancel    context.CancelFunc
	loopDone  chan struct{}

	closeOnce sync.Once
	closeErr  error
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
		lanes:     make(map[string]*lane),
		sent:      make(map[*nats.Msg]*batch),
		kick:      make(chan struct{}, 1),
		recovered: make(chan struct{}, 1),
		loopDone:  make(chan struct{}),
	}
	pjs, err := jetstream.New(js.Conn(),
		jetstream.WithPublishAsyncAckHandler(w.onAck),
		jetstream.WithPublishAsyncErrHandler(w.onErr),
		jetstream.WithPublishAsyncTimeout(o.ackTimeout),
		// The spool bounds the messages in flight, so the publisher never
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
	data := rec.appendJSON(make([]byte, 0, rec.sizeHint()))
	var waiter chan error
	if wait {
		waiter = make(chan error, 1)
	}
	b, err := w.add(ctx, subjects.Audit(rec.Namespace, rec.Op), data, waiter, &rec)
	if err != nil {
		return err
	}
	if b != nil {
		w.publish(b)
	}
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
	case w.pending >= w.o.spoolSize:
		return &status.Error{Code: prismv1.Code_UNAVAILABLE, Message: fmt.Sprintf("audit stream unavailable: %d records wait to be stored, the spool's limit; requests are refused until JetStream stores them", w.pending), Err: w.lastErr}
	case w.failing > 0:
		return &status.Error{Code: prismv1.Code_UNAVAILABLE, Message: fmt.Sprintf("audit stream unavailable: %d records failed to store and are being retried: %v", w.failing, w.lastErr), Err: w.lastErr}
	}
	return nil
}

// Stats returns the writer's counts.
func (w *Writer) Stats() Stats {
	return Stats{Stored: w.c.stored.Load(), Failed: w.c.failed.Load(), Dropped: w.c.dropped.Load(), Pending: int(w.c.pending.Load())}
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
	// Nothing joins the open batches any more: send them now.
	var open []*batch
	for _, ln := range w.lanes {
		if ln.open != nil {
			open = append(open, w.sendOpenLocked(ln))
		}
	}
	drained := make(chan struct{})
	if w.pending == 0 {
		close(drained)
	} else {
		w.drained = drained
	}
	w.mu.Unlock()
	for _, b := range open {
		w.publish(b)
	}
	w.closing.Store(true)
	notify(w.recovered)
	select {
	case <-drained:
	case <-ctx.Done():
	}
	w.cancel()
	<-w.loopDone

	w.mu.Lock()
	left, lastErr := w.pending, w.lastErr
	var waiters []chan error
	for _, b := range w.sent {
		waiters = append(waiters, b.waiters...)
		b.waiters = nil
	}
	clear(w.sent)
	clear(w.lanes)
	w.retry, w.drained, w.pending = nil, nil, 0
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

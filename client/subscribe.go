package client

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// ErrSubscriptionClosed is returned by Subscription.Next once Stop was
// called.
var ErrSubscriptionClosed = errors.New("prism subscription closed")

// ErrMalformedChange is wrapped by Change.Err when the message stored at
// Change.Seq is not a well-formed Prism event (a poison message). The error
// also wraps subjects.ErrBadEvent or subjects.ErrInvalidSubject, saying what
// is wrong.
var ErrMalformedChange = errors.New("malformed change")

// stopTimeout bounds how long Stop waits for the subscription's goroutine
// and for the server to delete its consumer.
const stopTimeout = 5 * time.Second

// Change is one change of a namespace, as stored on its stream. Exactly one
// of KeyValue, TimeSeries, Log, Entity, Graph and Err is set.
type Change struct {
	// Seq is the stream sequence of the change: the Seq a write's reply
	// returned. Sequences increase along a subscription; they are not
	// contiguous (another abstraction's events and batch markers are in
	// between).
	Seq uint64
	// ID is the CloudEvent id (ce-id header) of the event, unique per
	// event, for consumers that deduplicate across subscriptions.
	ID string
	// Time is when the stream stored the change; FromTime selects by it.
	Time time.Time
	// Namespace is the namespace the change belongs to.
	Namespace string
	// KeyValue is the change of a KeyValue record: a put of items, a
	// delete of items or of the whole record, or a replace of the whole
	// record, which compaction writes in place of the events before it
	// (ADR 012).
	KeyValue *prismv1.KeyValueEvent
	// TimeSeries is an append of events to one series.
	TimeSeries *prismv1.TimeSeriesAppend
	// Log is an append of one record to a Log namespace.
	Log *prismv1.LogEvent
	// Entity is a put or delete of one record of an Entity namespace; the
	// record is binary protobuf of the namespace's message, its PII
	// fields sealed (docs/entity.md). Unique-index claims are left out
	// like idempotency markers.
	Entity *prismv1.EntityEvent
	// Graph is an upsert or delete of one vertex or edge of a Graph
	// namespace (a vertex delete takes the vertex's edges with it, with
	// no event of their own; docs/graph.md).
	Graph *prismv1.GraphEvent
	// Err is set when the message at Seq is not a well-formed Prism event
	// (it wraps ErrMalformedChange). The subscription goes on after it;
	// what to do with the change is the reader's call.
	Err error
}

// Subscription follows the changes of one namespace in stream order. On a
// connection with JetStream it is a JetStream ordered consumer:
// ephemeral, recreated by the client from the last delivered sequence
// after a disconnect or a server restart, so the changes it delivers have
// no gap and no duplicate. On a connection without (an application in a
// secured deployment) it is a consumer Prism opens for the caller (ADR
// 017), which the client reopens from the last delivered sequence in the
// same cases, with the same guarantee.
//
// Next and Changes may be called from several goroutines, but each change
// goes to one caller only; read from one goroutine to see them in order.
type Subscription struct {
	ns string
	// Direct (a JetStream ordered consumer): js, cons and msgs. Through
	// Prism: via.
	js     jetstream.JetStream
	cons   jetstream.Consumer
	msgs   jetstream.MessagesContext
	via    *viaPrism
	out    chan Change
	done   chan struct{} // closed when pump returns
	err    error         // why pump returned; read after done
	stop   chan struct{} // closed by Stop
	once   sync.Once
	last   atomic.Uint64
	stopEr error
}

// Subscribe opens a subscription to the changes of namespace ns (KeyValue,
// TimeSeries, Log, Entity and Graph events; idempotency markers and unique-index
// claims are left out), starting where
// opts say (default: the oldest change the stream holds). ctx bounds the
// opening only; the subscription lasts until Stop.
//
// How it reaches the stream is WithSubscribeVia's choice; by default the
// client asks the server once whether its account has JetStream. With
// JetStream (Prism's own account, or a deployment without
// authentication), the caller needs read access to the namespace stream
// (PRISM_<NS>): creating a consumer on it and pulling from it. Without
// (the application account of a secured deployment), it asks a Prism
// gateway to open the subscription (prism.<ns>.subscribe.open), which
// needs the subscribe permission on ns.
//
// Errors: ErrInvalidArgument (a bad namespace name or option),
// ErrNamespaceNotFound (no stream for ns), ErrPermissionDenied,
// ErrUnavailable (JetStream or no gateway answers, or the NATS connection
// is closed, draining or down), ErrDeadlineExceeded (also what a request
// the server refuses for want of permission ends in: the server does not
// answer it).
func (c *Client) Subscribe(ctx context.Context, ns string, opts ...SubscribeOption) (*Subscription, error) {
	op := "subscribe " + ns
	if err := subjects.ValidateNamespace(ns); err != nil {
		return nil, misuse(op, "%v", err)
	}
	o := subscribeOpts{buffer: DefaultSubscribeBuffer}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, misuse(op, "%v", err)
		}
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	js, err := jetstream.New(c.nc)
	if err != nil {
		return nil, unavailable(op, "cannot use JetStream on the NATS connection", err)
	}
	if via := c.subscribeVia(ctx, js); via == SubscribeThroughPrism || !c.viaChosen && c.sealedStream(ctx, js, ns) {
		return c.subscribeThroughPrism(ctx, op, ns, o)
	}
	cfg := jetstream.OrderedConsumerConfig{
		FilterSubjects: append([]string{subjects.AllKeyValueEvents(ns), subjects.AllTimeSeriesEvents(ns), subjects.AllLogEvents(ns), subjects.AllEntityEvents(ns)}, subjects.AllGraphEvents(ns)...),
		DeliverPolicy:  jetstream.DeliverAllPolicy,
	}
	switch o.start {
	case startSeq:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, o.seq
	case startTime:
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &o.time
	case startNew:
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	cons, err := js.OrderedConsumer(ctx, subjects.Stream(ns), cfg)
	if err != nil {
		return nil, subscribeError(op, ns, err)
	}
	msgs, err := cons.Messages(jetstream.PullMaxMessages(o.buffer))
	if err != nil {
		_ = deleteConsumer(js, ns, cons)
		what := connectionDown(err)
		if what == "" {
			what = "cannot start pulling from " + subjects.Stream(ns)
		}
		return nil, unavailable(op, what, err)
	}
	s := &Subscription{
		ns:   ns,
		js:   js,
		cons: cons,
		msgs: msgs,
		out:  make(chan Change),
		done: make(chan struct{}),
		stop: make(chan struct{}),
	}
	go s.pump()
	return s, nil
}

func subscribeError(op, ns string, err error) error {
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		return &Error{Op: op, Code: prismv1.Code_NAMESPACE_NOT_FOUND, Message: "no stream " + subjects.Stream(ns) + " for namespace " + ns}
	case errors.Is(err, nats.ErrPermissionViolation):
		return &Error{Op: op, Code: prismv1.Code_PERMISSION_DENIED, Message: "no permission to create a consumer on " + subjects.Stream(ns) + ": " + err.Error()}
	case errors.Is(err, jetstream.ErrJetStreamNotEnabled), errors.Is(err, nats.ErrNoResponders):
		return &Error{Op: op, Code: prismv1.Code_UNAVAILABLE, Message: "JetStream does not answer: " + err.Error() + noJetStreamHint(ns)}
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		return &Error{Op: op, Code: prismv1.Code_DEADLINE_EXCEEDED, Message: "no reply before the deadline: " + err.Error() + noJetStreamHint(ns)}
	}
	if what := connectionDown(err); what != "" {
		return unavailable(op, what, err)
	}
	return fmt.Errorf("prism %s: %w", op, err)
}

// noJetStreamHint is what a subscriber in a secured deployment's
// application account needs to know: it has no JetStream (the server
// refuses the consumer, and the request gets no reply), and subscribes
// through Prism.
func noJetStreamHint(ns string) string {
	return "; in a secured deployment an application account has no JetStream: subscribe through Prism (client.WithSubscribeVia(client.SubscribeThroughPrism), which needs the subscribe permission on " + ns + "; docs/security.md)"
}

// pump moves messages from the ordered consumer to out, one at a time, so
// that at most the pull buffer plus one change wait for the reader.
func (s *Subscription) pump() {
	defer close(s.done)
	if s.via != nil {
		s.err = s.via.run(s.out, s.stop)
		return
	}
	for {
		m, err := s.msgs.Next()
		if err != nil {
			s.err = err
			return
		}
		ch, ok := decodeChange(s.ns, m)
		if !ok {
			continue
		}
		select {
		case s.out <- ch:
		case <-s.stop:
			return
		}
	}
}

// decodeChange turns a stream message into a Change. ok is false for an
// idempotency marker, which is not a change (the consumer's filter keeps
// them out; this is the second line).
func decodeChange(ns string, m jetstream.Msg) (ch Change, ok bool) {
	var (
		seq uint64
		ts  time.Time
	)
	md, err := m.Metadata()
	if err == nil {
		seq, ts = md.Sequence.Stream, md.Timestamp
	}
	return decodeStored(ns, m.Subject(), m.Headers(), m.Data(), seq, ts, err)
}

// decodeStored turns the message stored at seq (at ts) into a Change;
// mdErr says why its JetStream metadata could not be read, if it could
// not. ok is false for an idempotency marker.
func decodeStored(ns, subject string, h nats.Header, data []byte, seq uint64, ts time.Time, mdErr error) (ch Change, ok bool) {
	ch = Change{Namespace: ns, ID: h.Get(subjects.HeaderID)}
	if mdErr != nil {
		ch.Err = fmt.Errorf("%w: no JetStream metadata: %v", ErrMalformedChange, mdErr)
		return ch, true
	}
	ch.Seq, ch.Time = seq, ts
	d, err := subjects.DecodeEvent(subject, h, data)
	// Before err: a marker is no change even when its headers are wrong.
	if d.IsMarker() {
		return Change{}, false
	}
	if err != nil {
		ch.Err = fmt.Errorf("%w at seq %d: %w", ErrMalformedChange, ch.Seq, err)
		return ch, true
	}
	ch.KeyValue, ch.TimeSeries, ch.Log, ch.Entity, ch.Graph = d.KeyValue, d.TimeSeries, d.Log, d.Entity, d.Graph
	return ch, true
}

// Next returns the next change, waiting for one until ctx is done. A
// malformed message is returned as a Change with Err set, not as an error.
//
// Errors: ErrSubscriptionClosed after Stop; ctx's error; an error wrapping
// nats.ErrConnectionClosed when the NATS connection was closed (the
// subscription is then over; Stop it and resume on a new connection with
// FromSeq(LastSeq()+1)). A disconnect is not an error: Next waits while
// the client reconnects and recreates the consumer.
func (s *Subscription) Next(ctx context.Context) (Change, error) {
	select {
	case <-s.stop:
		return Change{}, ErrSubscriptionClosed
	default:
	}
	select {
	case ch := <-s.out:
		storeMax(&s.last, ch.Seq)
		return ch, nil
	case <-s.stop:
		return Change{}, ErrSubscriptionClosed
	case <-s.done:
		select {
		case <-s.stop:
			return Change{}, ErrSubscriptionClosed
		default:
		}
		return Change{}, fmt.Errorf("prism subscription of %s ended: %w", s.ns, s.err)
	case <-ctx.Done():
		return Change{}, ctx.Err()
	}
}

// Changes iterates over the changes with Next until Stop (the iteration then
// ends), ctx is done or the subscription fails (the error is yielded, then
// the iteration ends). Breaking out of the loop does not stop the
// subscription.
//
//	for ch, err := range sub.Changes(ctx) {
//		if err != nil { return err }
//		...
//	}
func (s *Subscription) Changes(ctx context.Context) iter.Seq2[Change, error] {
	return func(yield func(Change, error) bool) {
		for {
			ch, err := s.Next(ctx)
			if errors.Is(err, ErrSubscriptionClosed) {
				return
			}
			if !yield(ch, err) || err != nil {
				return
			}
		}
	}
}

// LastSeq is the Seq of the last change Next returned, 0 before the
// first. Resume with FromSeq(LastSeq()+1).
func (s *Subscription) LastSeq() uint64 { return s.last.Load() }

// Stop ends the subscription: pending and later Next calls return
// ErrSubscriptionClosed, and the server-side consumer is deleted. It is
// safe to call more than once and from several goroutines; every call
// returns the first call's result. The error, if any, says the consumer
// could not be deleted (the server removes it after 5 minutes without a
// reader, or 2 minutes for one Prism opened) or the goroutine did not end
// in time; the subscription is stopped regardless.
func (s *Subscription) Stop() error {
	s.once.Do(func() {
		close(s.stop)
		if s.via != nil {
			s.via.halt()
		} else {
			s.msgs.Stop()
		}
		t := time.NewTimer(stopTimeout)
		defer t.Stop()
		select {
		case <-s.done:
		case <-t.C:
			s.stopEr = fmt.Errorf("prism subscription of %s: stop: reader goroutine still running after %v", s.ns, stopTimeout)
			return
		}
		if s.via != nil {
			if err := s.via.close(); err != nil {
				s.stopEr = fmt.Errorf("prism subscription of %s: stop: %w", s.ns, err)
			}
			return
		}
		if err := deleteConsumer(s.js, s.ns, s.cons); err != nil {
			s.stopEr = fmt.Errorf("prism subscription of %s: stop: %w", s.ns, err)
		}
	})
	return s.stopEr
}

// deleteConsumer deletes the current server-side consumer of cons. A
// consumer that is already gone, or a connection that is closed (the
// server drops the consumer on its own), is not an error.
func deleteConsumer(js jetstream.JetStream, ns string, cons jetstream.Consumer) error {
	info := cons.CachedInfo()
	if info == nil {
		return nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	err := js.DeleteConsumer(ctx, subjects.Stream(ns), info.Name)
	if err == nil || errors.Is(err, jetstream.ErrConsumerNotFound) || errors.Is(err, nats.ErrConnectionClosed) {
		return nil
	}
	return fmt.Errorf("delete consumer %s: %w", info.Name, err)
}

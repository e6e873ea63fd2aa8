package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// SubscribeVia says how Subscribe reaches a namespace's stream.
type SubscribeVia int32

const (
	// SubscribeAuto asks the server once, on the first Subscribe, whether
	// the connection's account has JetStream: SubscribeDirect if it has,
	// SubscribeThroughPrism if the server says it has none (the
	// application account of a secured deployment).
	SubscribeAuto SubscribeVia = iota
	// SubscribeDirect opens a JetStream ordered consumer on the stream
	// (ADR 006). It needs JetStream access to the stream, and no gateway.
	SubscribeDirect
	// SubscribeThroughPrism asks a Prism gateway to open, feed and close
	// a consumer for the caller (prism.<ns>.subscribe.*, ADR 017). It
	// needs the subscribe permission on the namespace and a gateway.
	SubscribeThroughPrism
)

// WithSubscribeVia sets how Subscribe reaches the stream (default
// SubscribeAuto).
func WithSubscribeVia(v SubscribeVia) Option {
	return func(c *Client) error {
		if v < SubscribeAuto || v > SubscribeThroughPrism {
			return fmt.Errorf("client: unknown SubscribeVia %d", v)
		}
		c.via.Store(int32(v))
		c.viaChosen = v != SubscribeAuto
		return nil
	}
}

// subscribeVia resolves SubscribeAuto, once: JetStream's account
// information either comes back (direct) or the server says the account
// has no JetStream (through Prism). Anything else (a timeout, a closed
// connection) leaves it unresolved and goes direct, whose errors say what
// is wrong.
func (c *Client) subscribeVia(ctx context.Context, js jetstream.JetStream) SubscribeVia {
	if v := SubscribeVia(c.via.Load()); v != SubscribeAuto {
		return v
	}
	_, err := js.AccountInfo(ctx)
	switch {
	case err == nil:
		c.via.CompareAndSwap(int32(SubscribeAuto), int32(SubscribeDirect))
		return SubscribeDirect
	case errors.Is(err, jetstream.ErrJetStreamNotEnabledForAccount), errors.Is(err, jetstream.ErrJetStreamNotEnabled):
		c.via.CompareAndSwap(int32(SubscribeAuto), int32(SubscribeThroughPrism))
		return SubscribeThroughPrism
	}
	return SubscribeDirect
}

// sealedStream reports whether the stream of ns holds PII values sealed
// (subjects.StreamMetaPII): a subscription left to SubscribeAuto then
// goes through Prism, which shows them as the caller may see them. An
// unreadable stream says no; the direct subscription reports the error.
func (c *Client) sealedStream(ctx context.Context, js jetstream.JetStream, ns string) bool {
	s, err := js.Stream(ctx, subjects.Stream(ns))
	return err == nil && s.CachedInfo().Config.Metadata[subjects.StreamMetaPII] != ""
}

// Pulls of a subscription through Prism.
const (
	// pullExpires is how long one pull waits for changes.
	pullExpires = 30 * time.Second
	// pullHeartbeat is how often the server says a waiting pull is alive;
	// missing heartbeats for heartbeatMiss reopen the subscription.
	pullHeartbeat = 5 * time.Second
	heartbeatMiss = 3 * pullHeartbeat
	// retryMin and retryMax bound the wait between failed attempts to
	// pull or reopen.
	retryMin = 100 * time.Millisecond
	retryMax = 5 * time.Second
)

// viaPrism is the source of a subscription through Prism: the consumer
// the gateway opened, and the core NATS subscription on its delivery
// subject. Only the pump goroutine uses it until it ends; then Stop does.
type viaPrism struct {
	c      *Client
	ns     string
	buffer int
	start  subscribeOpts // how the first open started

	ctx    context.Context // cancelled by halt
	cancel context.CancelFunc

	consumer, deliver string
	batch             int
	sub               *nats.Subscription
	msgs              chan *nats.Msg
	closed            <-chan nats.SubStatus
	// nextDseq is the consumer sequence the next delivery must carry;
	// lastSeq the stream sequence of the last change handled.
	nextDseq, lastSeq uint64
}

// subscribeThroughPrism opens a subscription through a gateway.
func (c *Client) subscribeThroughPrism(ctx context.Context, op, ns string, o subscribeOpts) (*Subscription, error) {
	v := &viaPrism{c: c, ns: ns, buffer: o.buffer, start: o}
	v.ctx, v.cancel = context.WithCancel(context.Background())
	if err := v.open(ctx, op); err != nil {
		v.cancel()
		return nil, err
	}
	s := &Subscription{
		ns:   ns,
		via:  v,
		out:  make(chan Change),
		done: make(chan struct{}),
		stop: make(chan struct{}),
	}
	go s.pump()
	return s, nil
}

// open asks the gateway for a consumer that starts after lastSeq (or
// where the subscription was asked to start, before any change came) and
// subscribes to its delivery subject.
func (v *viaPrism) open(ctx context.Context, op string) error {
	req := &prismv1.SubscribeOpenRequest{}
	switch {
	case v.lastSeq > 0:
		req.Start = &prismv1.SubscribeOpenRequest_FromSeq{FromSeq: v.lastSeq + 1}
	case v.start.start == startSeq:
		req.Start = &prismv1.SubscribeOpenRequest_FromSeq{FromSeq: v.start.seq}
	case v.start.start == startTime:
		req.Start = &prismv1.SubscribeOpenRequest_FromTime{FromTime: timestamppb.New(v.start.time)}
	case v.start.start == startNew:
		req.Start = &prismv1.SubscribeOpenRequest_NewOnly{NewOnly: true}
	}
	var resp prismv1.SubscribeOpenResponse
	if err := v.c.call(ctx, op, subjects.Subscribe(v.ns, subjects.SubscribeOpen), req, &resp); err != nil {
		return err
	}
	if subjects.ValidateSubscriptionConsumer(resp.GetConsumer()) != nil || resp.GetDeliverSubject() == "" {
		return &Error{Op: op, Code: prismv1.Code_INTERNAL, Message: "the gateway's open reply names no subscription"}
	}
	v.consumer, v.deliver = resp.GetConsumer(), resp.GetDeliverSubject()
	v.batch = min(v.buffer, max(int(resp.GetMaxBatch()), 1))
	// Room for a whole batch and the status messages of its pull.
	v.msgs = make(chan *nats.Msg, v.batch+16)
	sub, err := v.c.nc.ChanSubscribe(v.deliver, v.msgs)
	if err != nil {
		v.closeConsumer()
		if what := connectionDown(err); what != "" {
			return unavailable(op, what, err)
		}
		return fmt.Errorf("prism %s: subscribe to the deliveries: %w", op, err)
	}
	v.sub, v.closed = sub, sub.StatusChanged(nats.SubscriptionClosed)
	v.nextDseq = 1
	return nil
}

// errReopen ends a pull whose deliveries cannot be trusted to continue:
// a lost delivery, a consumer that is gone, heartbeats that stopped.
var errReopen = errors.New("reopen")

// run pulls batches and hands their changes to out until stop is closed
// or the subscription fails; it returns why it ended.
func (v *viaPrism) run(out chan<- Change, stop <-chan struct{}) error {
	wait := retryMin
	for {
		err := v.pull()
		if err == nil {
			err = v.receive(out, stop)
		}
		select {
		case <-stop:
			return nil
		default:
		}
		switch {
		case err == nil:
			wait = retryMin
			continue
		case errors.Is(err, errReopen), errors.Is(err, ErrNotFound):
			err = v.reopen()
			if err == nil {
				wait = retryMin
				continue
			}
		}
		if terminal(err) {
			return err
		}
		// UNAVAILABLE, a deadline, a reconnecting connection: try again.
		t := time.NewTimer(wait)
		select {
		case <-stop:
			t.Stop()
			return nil
		case <-t.C:
		}
		wait = min(2*wait, retryMax)
	}
}

// terminal reports whether err ends the subscription: a refusal (the
// policy no longer lets the caller subscribe), a namespace that is gone,
// or a closed connection.
func terminal(err error) bool {
	return errors.Is(err, ErrPermissionDenied) || errors.Is(err, ErrNamespaceNotFound) ||
		errors.Is(err, ErrInvalidArgument) || errors.Is(err, nats.ErrConnectionClosed)
}

// pull asks the gateway for the next batch.
func (v *viaPrism) pull() error {
	if v.sub == nil {
		return errReopen
	}
	ctx, cancel := context.WithTimeout(v.ctx, v.c.timeout)
	defer cancel()
	req := &prismv1.SubscribeNextRequest{Consumer: v.consumer, Batch: int32(v.batch), ExpiresMs: pullExpires.Milliseconds(), HeartbeatMs: pullHeartbeat.Milliseconds()}
	return v.c.call(ctx, "subscribe next "+v.ns, subjects.Subscribe(v.ns, subjects.SubscribeNext), req, &prismv1.SubscribeAck{})
}

// receive hands the deliveries of one pull to out, until the batch is
// complete or a status ends the pull (nil: pull again), or the
// deliveries cannot go on (errReopen).
func (v *viaPrism) receive(out chan<- Change, stop <-chan struct{}) error {
	hb := time.NewTimer(heartbeatMiss)
	defer hb.Stop()
	for got := 0; got < v.batch; {
		var m *nats.Msg
		select {
		case m = <-v.msgs:
		case <-hb.C:
			return errReopen
		case <-v.closed:
			return fmt.Errorf("deliveries of %s: %w", v.consumer, nats.ErrConnectionClosed)
		case <-stop:
			return nil
		}
		hb.Reset(heartbeatMiss)
		if st := m.Header.Get("Status"); st != "" {
			switch st {
			case "100": // idle heartbeat
				continue
			case "408": // the pull expired
				return nil
			}
			// 409: the consumer was deleted, or a limit was exceeded.
			return errReopen
		}
		subject, reply := m.Subject, m.Reply
		if m.Subject == v.deliver {
			// Relayed by the gateway (a namespace with PII fields, ADR
			// 017): the stored subject and the delivery's metadata travel
			// in headers. Only Prism publishes on the delivery subject.
			subject, reply = m.Header.Get(subjects.HeaderRelaySubject), m.Header.Get(subjects.HeaderRelayDelivery)
		}
		d, err := subjects.ParseDelivery(reply)
		if err != nil || d.Consumer != v.consumer {
			continue // not from the consumer: nothing of this subscription
		}
		if d.ConsumerSeq != v.nextDseq {
			return errReopen // a delivery was lost (a disconnect)
		}
		v.nextDseq++
		got++
		ch, ok := decodeStored(v.ns, subject, m.Header, m.Data, d.StreamSeq, d.Time, nil)
		v.lastSeq = d.StreamSeq
		if !ok {
			continue
		}
		select {
		case out <- ch:
		case <-stop:
			return nil
		}
	}
	return nil
}

// reopen replaces the consumer with a new one that starts after the last
// change handled.
func (v *viaPrism) reopen() error {
	v.dropDeliveries()
	v.closeConsumer()
	ctx, cancel := context.WithTimeout(v.ctx, v.c.timeout)
	defer cancel()
	return v.open(ctx, "subscribe "+v.ns)
}

// dropDeliveries ends the core subscription on the delivery subject.
func (v *viaPrism) dropDeliveries() {
	if v.sub != nil {
		_ = v.sub.Unsubscribe()
		v.sub = nil
	}
}

// closeConsumer asks the gateway to delete the consumer, best effort:
// the server drops it after its inactive threshold anyway.
func (v *viaPrism) closeConsumer() {
	if v.consumer == "" {
		return
	}
	_ = v.closeRequest()
	v.consumer = ""
}

func (v *viaPrism) closeRequest() error {
	ctx, cancel := context.WithTimeout(context.Background(), stopTimeout)
	defer cancel()
	err := v.c.call(ctx, "subscribe close "+v.ns, subjects.Subscribe(v.ns, subjects.SubscribeClose), &prismv1.SubscribeCloseRequest{Consumer: v.consumer}, &prismv1.SubscribeAck{})
	if err == nil || errors.Is(err, ErrNotFound) || errors.Is(err, nats.ErrConnectionClosed) || v.c.nc.IsClosed() {
		return nil
	}
	return err
}

// halt stops the requests in flight; Stop calls it before it waits for
// the pump.
func (v *viaPrism) halt() { v.cancel() }

// close releases the subscription once the pump ended: the delivery
// subscription, then the consumer.
func (v *viaPrism) close() error {
	v.dropDeliveries()
	if v.consumer == "" {
		return nil
	}
	err := v.closeRequest()
	v.consumer = ""
	if err != nil {
		return fmt.Errorf("close the subscription: %w", err)
	}
	return nil
}

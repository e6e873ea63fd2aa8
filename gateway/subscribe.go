package gateway

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// Subscriptions through Prism (ADR 017). An application without
// JetStream (the APP account) follows a namespace's stream in three
// requests, each authorized by the subscribe permission and audited:
//
//   - subscribe.open creates, in the Prism account, an ephemeral pull
//     consumer on the namespace's stream, filtered on its event subjects,
//     without acknowledgements, named by a random capability, and
//     replies with that name and the delivery subject (under the
//     caller's own delivery prefix).
//   - subscribe.next checks the consumer is one the caller opened on
//     this namespace and forwards a pull request to it whose reply
//     subject is the delivery subject: JetStream then delivers the batch
//     there, across the delivery stream export, without passing through
//     the gateway.
//   - subscribe.close deletes the consumer; the server deletes one that
//     saw no pull for SubscriptionInactiveThreshold.
//
// The caller never reaches the JetStream API: it cannot name a consumer
// of its own making, another filter, another deliver subject, or a
// projector's consumer.

// The subscribe operations, by <kind>.<op>.
const (
	OpSubscribeOpen  = subjects.KindSubscribe + "." + subjects.SubscribeOpen
	OpSubscribeNext  = subjects.KindSubscribe + "." + subjects.SubscribeNext
	OpSubscribeClose = subjects.KindSubscribe + "." + subjects.SubscribeClose
)

// Bounds of a subscription.
const (
	// SubscriptionInactiveThreshold is how long a subscription's
	// consumer lives without an outstanding pull.
	SubscriptionInactiveThreshold = 2 * time.Minute
	// MaxSubscribeBatch is the most changes one next asks for.
	MaxSubscribeBatch = 100_000
	// MaxSubscribeExpires is the longest a pull waits.
	MaxSubscribeExpires = time.Minute
	// minSubscribeHeartbeat is the shortest idle heartbeat.
	minSubscribeHeartbeat = 100 * time.Millisecond
	// maxSubscribeWaiting bounds the pulls outstanding on one
	// subscription.
	maxSubscribeWaiting = 16
)

// metaDeliver is the consumer metadata key that holds a subscription's
// delivery subject, which names who opened it (subjects.Deliver).
const metaDeliver = "prism-deliver"

func (g *Gateway) subscribeRoutes() []route {
	return []route{
		typedRoute(OpSubscribeOpen, func() *prismv1.SubscribeOpenRequest { return new(prismv1.SubscribeOpenRequest) }, validateSubscribeOpen, g.subscribeOpen),
		typedRoute(OpSubscribeNext, func() *prismv1.SubscribeNextRequest { return new(prismv1.SubscribeNextRequest) }, validateSubscribeNext, g.subscribeNext),
		typedRoute(OpSubscribeClose, func() *prismv1.SubscribeCloseRequest { return new(prismv1.SubscribeCloseRequest) }, validateSubscribeClose, g.subscribeClose),
	}
}

func validateSubscribeOpen(req *prismv1.SubscribeOpenRequest) error {
	switch s := req.GetStart().(type) {
	case *prismv1.SubscribeOpenRequest_FromSeq:
		if s.FromSeq == 0 {
			return status.Invalidf("from_seq: sequences start at 1")
		}
	case *prismv1.SubscribeOpenRequest_FromTime:
		if err := s.FromTime.CheckValid(); err != nil || s.FromTime.AsTime().IsZero() {
			return status.Invalidf("from_time: not a valid time")
		}
	case *prismv1.SubscribeOpenRequest_NewOnly:
		if !s.NewOnly {
			return status.Invalidf("new_only: set it to true, or leave the start unset for every change")
		}
	}
	return nil
}

func validateConsumerName(name string) error {
	if err := subjects.ValidateSubscriptionConsumer(name); err != nil {
		return status.Invalidf("consumer: not the name of a subscription that subscribe.open returned")
	}
	return nil
}

func validateSubscribeNext(req *prismv1.SubscribeNextRequest) error {
	if err := validateConsumerName(req.GetConsumer()); err != nil {
		return err
	}
	if b := req.GetBatch(); b < 1 || b > MaxSubscribeBatch {
		return status.Invalidf("batch: %d is not in [1, %d]", b, MaxSubscribeBatch)
	}
	exp := time.Duration(req.GetExpiresMs()) * time.Millisecond
	if exp < time.Millisecond || exp > MaxSubscribeExpires {
		return status.Invalidf("expires_ms: %d is not in [1, %d]", req.GetExpiresMs(), MaxSubscribeExpires.Milliseconds())
	}
	if hb := time.Duration(req.GetHeartbeatMs()) * time.Millisecond; hb != 0 && (hb < minSubscribeHeartbeat || hb > exp/2) {
		return status.Invalidf("heartbeat_ms: %d must be 0, or from %d to half of expires_ms", req.GetHeartbeatMs(), minSubscribeHeartbeat.Milliseconds())
	}
	return nil
}

func validateSubscribeClose(req *prismv1.SubscribeCloseRequest) error {
	return validateConsumerName(req.GetConsumer())
}

// subscribeOpen creates the subscription's consumer.
func (g *Gateway) subscribeOpen(ctx context.Context, r *request, req *prismv1.SubscribeOpenRequest) (proto.Message, error) {
	ns := r.ns.Name
	var random [16]byte
	if _, err := rand.Read(random[:]); err != nil {
		return nil, &status.Error{Code: prismv1.Code_INTERNAL, Message: "cannot make a subscription name", Err: err}
	}
	name := subjects.SubscriptionConsumer(subjects.NewSubscriptionCapability(random))
	deliver := subjects.Deliver(r.principal.Name, name)
	cfg := jetstream.ConsumerConfig{
		Name:              name,
		Description:       "Prism subscription to namespace " + ns,
		FilterSubjects:    []string{subjects.AllKeyValueEvents(ns), subjects.AllTimeSeriesEvents(ns), subjects.AllLogEvents(ns)},
		DeliverPolicy:     jetstream.DeliverAllPolicy,
		AckPolicy:         jetstream.AckNonePolicy,
		InactiveThreshold: SubscriptionInactiveThreshold,
		MaxWaiting:        maxSubscribeWaiting,
		MaxRequestBatch:   MaxSubscribeBatch,
		MaxRequestExpires: MaxSubscribeExpires,
		MemoryStorage:     true,
		Replicas:          1,
		Metadata:          map[string]string{metaDeliver: deliver},
	}
	switch s := req.GetStart().(type) {
	case *prismv1.SubscribeOpenRequest_FromSeq:
		cfg.DeliverPolicy, cfg.OptStartSeq = jetstream.DeliverByStartSequencePolicy, s.FromSeq
	case *prismv1.SubscribeOpenRequest_FromTime:
		t := s.FromTime.AsTime()
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &t
	case *prismv1.SubscribeOpenRequest_NewOnly:
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	stream, err := g.stream(ctx, ns)
	if err != nil {
		return nil, subscribeStreamError(err, ns)
	}
	if _, err := stream.CreateConsumer(ctx, cfg); err != nil {
		return nil, status.FromJetStream(err, ns, "opening a subscription")
	}
	return &prismv1.SubscribeOpenResponse{
		Consumer:            name,
		DeliverSubject:      deliver,
		MaxBatch:            MaxSubscribeBatch,
		MaxExpiresMs:        MaxSubscribeExpires.Milliseconds(),
		InactiveThresholdMs: SubscriptionInactiveThreshold.Milliseconds(),
	}, nil
}

// pullRequest is JetStream's pull request (the body of
// $JS.API.CONSUMER.MSG.NEXT), durations in nanoseconds.
type pullRequest struct {
	Batch     int           `json:"batch"`
	Expires   time.Duration `json:"expires"`
	Heartbeat time.Duration `json:"idle_heartbeat,omitempty"`
}

// subscribeNext forwards a pull to the caller's subscription consumer,
// with the delivery subject as its reply; in a namespace with PII fields
// it relays the batch instead (relayNext).
func (g *Gateway) subscribeNext(ctx context.Context, r *request, req *prismv1.SubscribeNextRequest) (proto.Message, error) {
	ns := r.ns.Name
	deliver, err := g.ownSubscription(ctx, r, req.GetConsumer())
	if err != nil {
		return nil, err
	}
	body, err := json.Marshal(pullRequest{
		Batch:     int(req.GetBatch()),
		Expires:   time.Duration(req.GetExpiresMs()) * time.Millisecond,
		Heartbeat: time.Duration(req.GetHeartbeatMs()) * time.Millisecond,
	})
	if err != nil {
		return nil, &status.Error{Code: prismv1.Code_INTERNAL, Message: "cannot encode the pull request", Err: err}
	}
	if r.hasPII() {
		if err := g.relayNext(r, req.GetConsumer(), deliver, body, req); err != nil {
			return nil, err
		}
		return &prismv1.SubscribeAck{}, nil
	}
	pull := nats.NewMsg(subjects.ConsumerNext(subjects.Stream(ns), req.GetConsumer()))
	pull.Reply, pull.Data = deliver, body
	// The reply to the caller leaves on the same connection after the
	// pull, so the server has the pull before the caller hears it went.
	if err := g.nc.PublishMsg(pull); err != nil {
		return nil, status.FromJetStream(err, ns, "pulling for a subscription")
	}
	return &prismv1.SubscribeAck{}, nil
}

// subscribeClose deletes the caller's subscription consumer.
func (g *Gateway) subscribeClose(ctx context.Context, r *request, req *prismv1.SubscribeCloseRequest) (proto.Message, error) {
	ns := r.ns.Name
	if _, err := g.ownSubscription(ctx, r, req.GetConsumer()); err != nil {
		return nil, err
	}
	stream, err := g.stream(ctx, ns)
	if err != nil {
		return nil, subscribeStreamError(err, ns)
	}
	if err := stream.DeleteConsumer(ctx, req.GetConsumer()); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		return nil, status.FromJetStream(err, ns, "closing a subscription")
	}
	return &prismv1.SubscribeAck{}, nil
}

// dropSubscription deletes the consumer of a subscription whose open is
// not answered, best effort: the server drops it anyway after
// SubscriptionInactiveThreshold.
func (g *Gateway) dropSubscription(ns, consumer string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(g.baseContext()), ioTimeout)
	defer cancel()
	if err := g.js.DeleteConsumer(ctx, subjects.Stream(ns), consumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
		g.log.Warn("delete the consumer of an unanswered subscription", "namespace", ns, "err", err)
	}
}

// ownSubscription returns the delivery subject of consumer when it is a
// subscription the caller opened on the request's namespace, and
// NOT_FOUND otherwise: a consumer of another namespace, of another
// principal, a projector's, or one that is gone all look the same, so
// the answer says nothing about what exists.
func (g *Gateway) ownSubscription(ctx context.Context, r *request, consumer string) (string, error) {
	ns := r.ns.Name
	notFound := status.Newf(prismv1.Code_NOT_FOUND, "no subscription %s of yours in namespace %s: it was closed, or dropped after %v without a pull; open a new one", consumer, ns, SubscriptionInactiveThreshold)
	stream, err := g.stream(ctx, ns)
	if err != nil {
		return "", subscribeStreamError(err, ns)
	}
	c, err := stream.Consumer(ctx, consumer)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return "", notFound
	}
	if err != nil {
		return "", status.FromJetStream(err, ns, "looking up a subscription")
	}
	want := subjects.Deliver(r.principal.Name, consumer)
	if c.CachedInfo().Config.Metadata[metaDeliver] != want {
		return "", notFound
	}
	return want, nil
}

// subscribeStreamError is the error for a namespace stream that cannot
// be looked up.
func subscribeStreamError(err error, ns string) error {
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return &status.Error{Code: prismv1.Code_NAMESPACE_NOT_FOUND, Message: fmt.Sprintf("namespace %s has no stream %s", ns, subjects.Stream(ns)), Err: err}
	}
	return status.FromJetStream(err, ns, "looking up the stream")
}

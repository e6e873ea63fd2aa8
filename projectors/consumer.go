package projectors

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Consumer settings. AckWait only matters for redelivery to a projector that
// lost messages; the checkpoint makes every redelivery harmless.
const (
	ackWait = 30 * time.Second
	// sessionCloseWait bounds the wait for the client to release a
	// subscription.
	sessionCloseWait = 5 * time.Second
)

// session is one Consume subscription of the durable consumer. Its handler
// hands messages to the loop through msgs, in delivery order.
type session struct {
	cc     jetstream.ConsumeContext
	closed <-chan struct{} // cc.Closed()
	msgs   chan jetstream.Msg
	abort  chan struct{} // closed so the handler drops instead of blocking
	ackAll bool          // one ack covers every earlier delivery
	// nextDseq is the consumer (delivery) sequence the next message must
	// carry; any other value means a delivery was lost.
	nextDseq uint64
	// unpositioned: another client was pinned when the session opened, so
	// the consumer was left where it was; the first delivery here (the
	// pin moved to this client) repositions it (pin.go).
	unpositioned bool
}

// close ends the subscription and discards what it still holds: unacked
// messages are redelivered to whoever positions the consumer next.
func (s *session) close() {
	close(s.abort)
	s.cc.Stop()
	select {
	case <-s.closed:
	case <-time.After(sessionCloseWait):
	}
}

// openSession positions the durable consumer right after checkpoint and
// starts consuming it.
func (p *Projector) openSession(ctx context.Context, checkpoint uint64) (*session, error) {
	cons, info, err := p.ensureConsumer(ctx, checkpoint)
	if err != nil {
		return nil, err
	}
	// Later sessions consume through the same object: it holds the pin id
	// the server gave this client, and a new one would wait out the pin
	// (pinnedTTL) before the server delivers to it again.
	p.cons = cons
	s := &session{
		msgs:         make(chan jetstream.Msg, catchUpFactor*p.opts.batchSize),
		abort:        make(chan struct{}),
		ackAll:       info.Config.AckPolicy == jetstream.AckAllPolicy,
		nextDseq:     info.Delivered.Consumer + 1,
		unpositioned: p.unpositioned,
	}
	handler := func(m jetstream.Msg) {
		select {
		case s.msgs <- m:
		case <-s.abort:
		}
	}
	// A server before 2.11 drops the priority settings: the consumer has
	// no group, and pulling in one would be refused.
	var group []jetstream.PullConsumeOpt
	pinned := slices.Contains(info.Config.PriorityGroups, priorityGroup)
	if pinned {
		group = append(group, jetstream.PullPriorityGroup(priorityGroup))
	} else {
		p.log.Warn("the consumer has no priority group (nats-server before 2.11): no pin keeps a second process from consuming it", "consumer", p.consumer)
	}
	if p.opts.throttle != nil {
		s.cc = p.startFetching(cons, info.NumPending, pinned, handler)
		s.closed = s.cc.Closed()
		return s, nil
	}
	s.cc, err = cons.Consume(handler, append(group,
		jetstream.PullMaxMessages(catchUpFactor*p.opts.batchSize),
		// Short pulls and heartbeats: if the client's and the server's view
		// of outstanding pulls ever drift, deliveries stall until the
		// missing heartbeat is noticed (2x the heartbeat). With the default
		// 30s expiry that was a 30s stall (seen here in a catch-up
		// benchmark); with these it is at most 1s. Each pull also renews
		// this client's pin, so the expiry is below pinnedTTL.
		jetstream.PullExpiry(pullExpiry),
		jetstream.PullHeartbeat(pullExpiry/2),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if errors.Is(err, jetstream.ErrPinIDMismatch) {
				// The pin expired or moved; the client pulls again
				// without it (pin.go says what the loop makes of it).
				p.log.Debug("consume: pin lost", "consumer", p.consumer)
				return
			}
			p.log.Warn("consume", "consumer", p.consumer, "err", err)
		}),
	)...)
	if err != nil {
		return nil, fmt.Errorf("consume %s: %w", p.consumer, err)
	}
	s.closed = s.cc.Closed()
	return s, nil
}

// consumerConfig is the configuration of a new durable consumer that
// delivers from checkpoint+1.
func (p *Projector) consumerConfig(checkpoint uint64) jetstream.ConsumerConfig {
	cfg := jetstream.ConsumerConfig{
		Durable:       p.consumer,
		Description:   fmt.Sprintf("Prism projector of namespace %s into target %s", p.ns, p.target),
		AckPolicy:     jetstream.AckAllPolicy,
		AckWait:       ackWait,
		MaxAckPending: max(8*p.opts.batchSize, 1024),
		DeliverPolicy: jetstream.DeliverAllPolicy,
		// One pinned client at a time (ADR 026): the server delivers to
		// it alone, and to another only once it stopped pulling for
		// pinnedTTL.
		PriorityPolicy: jetstream.PriorityPolicyPinned,
		PriorityGroups: []string{priorityGroup},
		PinnedTTL:      pinnedTTL,
	}
	if checkpoint > 0 {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = checkpoint + 1
	}
	if p.opts.owner != "" {
		cfg.Metadata = map[string]string{ownerMetadata: p.opts.owner}
	}
	return cfg
}

// ownerMetadata is the consumer metadata key naming its projector's owner,
// and claimedMetadata the one saying when that owner last claimed the
// consumer (RFC 3339, claim).
const (
	ownerMetadata   = "prism-owner"
	claimedMetadata = "prism-claimed"
)

// claimSettle is how long a projector waits after claiming a consumer
// before it reads the claim back (claim). Reading the consumer, finding
// it free and writing the claim take milliseconds; two processes that
// both found it free have both written their claims well within this.
const claimSettle = 250 * time.Millisecond

// ensureConsumer creates the durable consumer, or updates the settings of
// the existing one, and makes sure its next delivery is checkpoint+1 with
// nothing pending beyond the checkpoint. The target's checkpoint is the
// truth; the consumer is only a cursor. A consumer that delivered past the
// checkpoint (the projector crashed or was aborted holding uncommitted
// messages, or the target was restored from an older copy) is reset, so no
// event after the checkpoint is left unapplied while later ones commit.
// inUseWindow is how recently another owner's delivery or ack makes a
// consumer count as in use.
const inUseWindow = pinnedTTL

// InUseBy reports whether the projector consumer described by info is
// being consumed right now by an owner other than owner (ADR 026), and
// names it: the server has a client pinned, it has pull requests
// outstanding, or it delivered, had an ack or was created within the last
// pinnedTTL (a throttled projector has no pull outstanding while it waits
// on its throttle; a starting one has not pulled yet). It decides which
// process starts a projector; which one is delivered to is the server's
// pin, so a wrong answer costs a process that gets nothing, never a split
// (pin.go). An owner of "" (a projector without WithOwner) neither claims
// nor is refused.
func InUseBy(info *jetstream.ConsumerInfo, owner string) (string, bool) {
	other := info.Config.Metadata[ownerMetadata]
	if owner == "" || other == "" || other == owner {
		return other, false
	}
	recent := func(t *time.Time) bool { return t != nil && time.Since(*t) < inUseWindow }
	// A consumer another owner created or claimed a moment ago has no
	// pull, delivery or ack yet, but its projector is starting: two
	// processes started at the same instant.
	var claimed *time.Time
	if t, err := time.Parse(time.RFC3339Nano, info.Config.Metadata[claimedMetadata]); err == nil {
		claimed = &t
	}
	return other, pinnedClient(info) != "" || info.NumWaiting > 0 || recent(info.Delivered.Last) || recent(info.AckFloor.Last) || recent(&info.Created) || recent(claimed)
}

// claim makes this projector's owner the owner of the existing consumer
// described by info, which InUseBy found free, and returns the consumer's
// info as read back, or ErrConsumerInUse. It writes
// the owner and the time of the claim into the consumer's metadata, waits
// claimSettle and reads them back: of processes that found the consumer
// free at the same moment, each wrote its claim within that wait, and
// only the last writer finds its own. A claim another owner wrote within
// inUseWindow makes the consumer in use (InUseBy) for everyone else. The
// server's pin still decides deliveries (ADR 026); this keeps two
// processes restarted together from both repositioning the consumer,
// which would hand each part of the stream.
func (p *Projector) claim(ctx context.Context, info *jetstream.ConsumerInfo) (*jetstream.ConsumerInfo, error) {
	cfg := info.Config
	cfg.Metadata = maps.Clone(cfg.Metadata)
	if cfg.Metadata == nil {
		cfg.Metadata = map[string]string{}
	}
	cfg.Metadata[ownerMetadata] = p.opts.owner
	cfg.Metadata[claimedMetadata] = time.Now().UTC().Format(time.RFC3339Nano)
	if _, err := p.js.UpdateConsumer(ctx, p.stream, cfg); err != nil {
		return nil, fmt.Errorf("claim consumer %s: %w", p.consumer, err)
	}
	select {
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-time.After(claimSettle):
	}
	cons, err := p.js.Consumer(ctx, p.stream, p.consumer)
	if err != nil {
		return nil, fmt.Errorf("claim consumer %s: read it back: %w", p.consumer, err)
	}
	info = cons.CachedInfo()
	if got := info.Config.Metadata[ownerMetadata]; got != p.opts.owner {
		return nil, fmt.Errorf("%w: consumer %s on %s was claimed by %s at the same moment; one Prism process projects a namespace into a target",
			ErrConsumerInUse, p.consumer, p.stream, got)
	}
	return info, nil
}

func (p *Projector) ensureConsumer(ctx context.Context, checkpoint uint64) (jetstream.Consumer, *jetstream.ConsumerInfo, error) {
	want := p.consumerConfig(checkpoint)
	p.unpositioned = false
	cons, info, err := p.lookUpConsumer(ctx)
	if errors.Is(err, jetstream.ErrConsumerNotFound) {
		return p.createConsumer(ctx, want)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("look up consumer %s: %w", p.consumer, err)
	}
	if owner, busy := InUseBy(info, p.opts.owner); busy {
		return nil, nil, fmt.Errorf("%w: consumer %s on %s is being consumed by %s (%d pull requests waiting); one Prism process projects a namespace into a target",
			ErrConsumerInUse, p.consumer, p.stream, owner, info.NumWaiting)
	}
	if p.opts.claimHook != nil {
		p.opts.claimHook()
	}
	if p.opts.owner != "" {
		if info, err = p.claim(ctx, info); err != nil {
			return nil, nil, err
		}
	}
	switch info.Config.AckPolicy {
	case jetstream.AckAllPolicy, jetstream.AckExplicitPolicy:
	default:
		return nil, nil, fmt.Errorf("consumer %s on %s has ack policy %s; a projector needs explicit or all: delete the consumer", p.consumer, p.stream, info.Config.AckPolicy)
	}
	// Keep what the server cannot change (deliver and ack policy); set the
	// rest as this projector wants it.
	cfg := info.Config
	if cfg.Description != want.Description || cfg.AckWait != want.AckWait || cfg.MaxAckPending != want.MaxAckPending ||
		cfg.PriorityPolicy != want.PriorityPolicy || !slices.Equal(cfg.PriorityGroups, want.PriorityGroups) || cfg.PinnedTTL != want.PinnedTTL ||
		cfg.FilterSubject != "" || len(cfg.FilterSubjects) > 0 || (want.Metadata != nil && cfg.Metadata[ownerMetadata] != want.Metadata[ownerMetadata]) {
		cfg.Description, cfg.AckWait, cfg.MaxAckPending = want.Description, want.AckWait, want.MaxAckPending
		cfg.PriorityPolicy, cfg.PriorityGroups, cfg.PinnedTTL = want.PriorityPolicy, want.PriorityGroups, want.PinnedTTL
		if want.Metadata != nil {
			if cfg.Metadata == nil {
				cfg.Metadata = map[string]string{}
			}
			cfg.Metadata[ownerMetadata] = want.Metadata[ownerMetadata]
		}
		cfg.FilterSubject, cfg.FilterSubjects = "", nil
		if cons, err = p.js.UpdateConsumer(ctx, p.stream, cfg); err != nil {
			return nil, nil, fmt.Errorf("update consumer %s: %w", p.consumer, err)
		}
		info = cons.CachedInfo()
	}
	if info.Delivered.Stream == checkpoint {
		// Anything still pending is at or below the checkpoint and is
		// skipped when redelivered.
		return cons, info, nil
	}
	if pinned := pinnedClient(info); pinned != "" && pinned != p.pins.mine {
		// Another client is pinned and delivered to: repositioning the
		// consumer under it would only make it redeliver. This one waits
		// for the pin and repositions it then.
		p.unpositioned = true
		return cons, info, nil
	}
	p.log.Info("repositioning consumer at the checkpoint",
		"consumer", p.consumer, "delivered", info.Delivered.Stream, "ack_floor", info.AckFloor.Stream,
		"pending", info.NumAckPending, "checkpoint", checkpoint)
	reset, err := p.js.ResetConsumerToSequence(ctx, p.stream, p.consumer, checkpoint+1)
	if errors.Is(err, jetstream.ErrConsumerInvalidReset) {
		// Below the consumer's start sequence: only a new consumer can go
		// back there.
		if err := p.js.DeleteConsumer(ctx, p.stream, p.consumer); err != nil && !errors.Is(err, jetstream.ErrConsumerNotFound) {
			return nil, nil, fmt.Errorf("recreate consumer %s: delete: %w", p.consumer, err)
		}
		return p.createConsumer(ctx, want)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("reset consumer %s to %d: %w", p.consumer, checkpoint+1, err)
	}
	return cons, reset.ConsumerInfo, nil
}

func (p *Projector) createConsumer(ctx context.Context, cfg jetstream.ConsumerConfig) (jetstream.Consumer, *jetstream.ConsumerInfo, error) {
	cons, err := p.js.CreateConsumer(ctx, p.stream, cfg)
	if errors.Is(err, jetstream.ErrConsumerExists) {
		// Another process created it between our look and our create,
		// naming itself the owner (the metadata differs, so the server
		// refuses ours): two processes started at the same instant. It
		// projects; this one does not.
		return nil, nil, fmt.Errorf("%w: consumer %s on %s was created by another projector just now (%v)", ErrConsumerInUse, p.consumer, p.stream, err)
	}
	if err != nil {
		return nil, nil, fmt.Errorf("create consumer %s on %s: %w", p.consumer, p.stream, err)
	}
	return cons, cons.CachedInfo(), nil
}

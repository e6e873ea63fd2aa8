package projectors

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Every projector consumer has one JetStream priority group with the
// pinned-client policy (ADR 026): of all the clients pulling from it, the
// server pins one and delivers to it alone; another is pinned only after
// the pinned one sent no pull for pinnedTTL. Two processes can so never
// be delivered, and so never apply, the same events at once, whatever
// each of them believes about ownership. What a client that lost its pin
// still holds is fenced by the target: a batch commits only the changes
// above the checkpoint it reads under the commit's lock.
const (
	priorityGroup = "prism"
	// pinnedTTL bounds a failover: a dead projector's pin is given to the
	// next pulling client this long after its last pull.
	pinnedTTL = 3 * time.Second
	// pullExpiry is how long one pull request waits; the pinned client
	// renews its pin with every pull, so it is well below pinnedTTL: a
	// client starved of CPU for the difference loses its pin.
	pullExpiry = time.Second
	// pinCheckEvery is how often an idle projector asks the server which
	// client it pins (pinWatch).
	pinCheckEvery = 2 * time.Second
)

// headerPinID is the header the server puts on every message it delivers
// to the pinned client: that client's pin id.
const headerPinID = "Nats-Pin-Id"

// errPinElsewhere ends a session whose projector found the server pinning
// another client: another process projects the target now.
var errPinElsewhere = errors.New("the server pins another client of the consumer")

// pinnedClient returns the id of the client the server has pinned on the
// consumer described by info, "" if none.
func pinnedClient(info *jetstream.ConsumerInfo) string {
	for _, g := range info.PriorityGroups {
		if g.Group == priorityGroup && g.PinnedClientID != "" {
			return g.PinnedClientID
		}
	}
	return ""
}

// lookUpConsumer returns the projector's consumer and fresh information
// on it. The first session looks it up; later ones ask through the
// object the first one got, which holds this client's pin id. A projector
// restarted in the same process (same owner) is not refused, and waits
// for the pin of its previous incarnation to expire (pinnedTTL); it never
// unpins another client, which could be alive (two processes on a copy
// of one data directory have the same owner id).
func (p *Projector) lookUpConsumer(ctx context.Context) (jetstream.Consumer, *jetstream.ConsumerInfo, error) {
	if p.cons != nil {
		info, err := p.cons.Info(ctx)
		if err != nil {
			return nil, nil, err
		}
		return p.cons, info, nil
	}
	cons, err := p.js.Consumer(ctx, p.stream, p.consumer)
	if err != nil {
		return nil, nil, err
	}
	return cons, cons.CachedInfo(), nil
}

// pinWatch follows, in the loop goroutine, which client the server pins:
// every delivery names this client's pin, and an idle projector asks the
// server every pinCheckEvery. Seeing another client pinned twice running
// (the second look at least pinCheckEvery after the first, with no
// delivery to this client under that pin in between) ends the session
// with errPinElsewhere: a single look could race with a delivery still
// on its way here.
type pinWatch struct {
	mine     string    // pin id of the last delivery to this client
	suspect  string    // another client's pin id seen at the last look
	lastSeen time.Time // last delivery or look
}

// delivered records a message delivered to this client.
func (w *pinWatch) delivered(m jetstream.Msg) {
	if id := m.Headers().Get(headerPinID); id != "" {
		w.mine = id
	}
	w.suspect, w.lastSeen = "", time.Now()
}

// check asks the server which client it pins, if the projector has been
// idle for pinCheckEvery, and returns errPinElsewhere once another one is
// pinned for good. An unanswered question is no evidence: it returns nil.
func (p *Projector) checkPin(ctx context.Context, w *pinWatch) error {
	if time.Since(w.lastSeen) < pinCheckEvery || p.cons == nil || p.opts.owner == "" {
		return nil
	}
	w.lastSeen = time.Now()
	ctx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	info, err := p.cons.Info(ctx)
	if err != nil {
		return nil
	}
	pinned := pinnedClient(info)
	switch {
	case pinned == "" || pinned == w.mine:
		w.suspect = ""
	case pinned == w.suspect:
		return fmt.Errorf("%w: %w (pinned %s; owner %s)", ErrConsumerInUse, errPinElsewhere, pinned, info.Config.Metadata[ownerMetadata])
	default:
		w.suspect = pinned
	}
	return nil
}

// releasePin has the server drop this client's pin as the projector
// stops, so that the next projector of the consumer (a replacement in
// this process, another process taking over) is delivered to at once
// instead of after pinnedTTL. Only the loop goroutine calls it, as it
// returns; a pin another client holds is left alone.
func (p *Projector) releasePin() {
	if p.cons == nil || p.pins.mine == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	info, err := p.cons.Info(ctx)
	if err != nil || pinnedClient(info) != p.pins.mine {
		return
	}
	st, err := p.js.Stream(ctx, p.stream)
	if err == nil {
		err = st.UnpinConsumer(ctx, p.consumer, priorityGroup)
	}
	if err != nil {
		p.log.Debug("release the pin", "consumer", p.consumer, "err", err)
	}
}

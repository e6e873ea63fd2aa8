package gateway

import (
	"context"
	"errors"
	"strconv"

	"github.com/nats-io/nats.go"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// Forwarding (ADR 029). The gateways of a queue group are chosen at
// random, so a request may reach one that cannot serve its namespace: a
// standby's reads of a namespace another process projects into its own
// SQLite file, or a namespace whose backend failed to open here. Such a
// gateway forwards the request on subjects.Forwarded, which only the
// gateways that serve the namespace subscribe to (in the same queue
// group), and relays the reply: one extra hop, never a chain of random
// hand-backs. Only when nobody serves it there (no responders) is the
// request handed back to the queue group (requeue), as before.

// HeaderForwarded marks a request forwarded once: a gateway that gets a
// forwarded request it cannot serve (its namespace changed meanwhile)
// hands it back to the queue group rather than forwarding it again.
const HeaderForwarded = "Prism-Forwarded"

// forwardOutcome is what forward did with a request.
type forwardOutcome int

const (
	notForwarded  forwardOutcome = iota // nobody serves it there: hand it back
	forwarded                           // answered: the reply was relayed
	forwardFailed                       // taken, but not answered in time
)

// forward sends msg, a request for namespace ns that this gateway cannot
// serve, to a gateway that serves ns and relays its reply to the caller.
func (g *Gateway) forward(ctx context.Context, msg *nats.Msg, ns string) forwardOutcome {
	if msg.Header.Get(HeaderForwarded) != "" {
		return notForwarded
	}
	out := resend(msg, subjects.Forwarded(msg.Subject))
	out.Header.Set(HeaderForwarded, "1")
	reply, err := g.nc.RequestMsgWithContext(ctx, out)
	if errors.Is(err, nats.ErrNoResponders) {
		return notForwarded
	}
	if err != nil {
		g.log.Warn("forwarded request not answered", "namespace", ns, "err", err)
		return forwardFailed
	}
	g.metrics.observeForward(ns)
	if msg.Reply == "" {
		return forwarded
	}
	relay := &nats.Msg{Subject: msg.Reply, Header: reply.Header, Data: reply.Data}
	if err := g.nc.PublishMsg(relay); err != nil {
		g.log.Warn("relay a forwarded request's reply", "namespace", ns, "err", err)
	}
	return forwarded
}

// errForwardTimeout answers a request forwarded to a gateway that did not
// reply in time. It may have been applied there.
func errForwardTimeout(ns string) error {
	return status.Newf(prismv1.Code_UNAVAILABLE, "namespace %s: the request was forwarded to the Prism process that serves it, which did not answer in time; a write may have been applied: retry it with the same idempotency token", ns)
}

// onForwarded is the callback of a forwarding subscription: the request
// is served like one received on its own subject.
func (g *Gateway) onForwarded(msg *nats.Msg) {
	subj, ok := subjects.Unforward(msg.Subject)
	if !ok {
		return
	}
	msg.Subject = subj
	g.onMsg(msg)
}

// syncForward subscribes to or unsubscribes from namespace name's
// forwarded requests, as its entry now says: a gateway subscribes while
// it serves the namespace's reads. The table calls it after every change
// of an entry.
func (g *Gateway) syncForward(name string) {
	g.runMu.Lock()
	defer g.runMu.Unlock()
	if !g.started || g.draining {
		return // Start subscribes; Drain drains them all
	}
	g.syncForwardLocked(name)
}

// syncForwardLocked is syncForward with g.runMu held.
func (g *Gateway) syncForwardLocked(name string) {
	e, ok := g.namespaces.get(name)
	want := ok && !e.readsElsewhere
	sub := g.fwdSubs[name]
	switch {
	case want && sub == nil:
		s, err := g.nc.QueueSubscribe(subjects.AllForwarded(name), g.opts.queueGroup, g.onForwarded)
		if err == nil {
			err = s.SetPendingLimits(g.opts.pendingMsgs, g.opts.pendingBytes)
		}
		if err != nil {
			// Requests for name reaching other gateways are then handed
			// back to the queue group, as without forwarding.
			g.log.Warn("subscribe to forwarded requests", "namespace", name, "err", err)
			if s != nil {
				_ = s.Unsubscribe()
			}
			return
		}
		g.fwdSubs[name] = s
	case !want && sub != nil:
		// Drain: what was delivered already is still served.
		if err := sub.Drain(); err != nil {
			_ = sub.Unsubscribe()
		}
		delete(g.fwdSubs, name)
	}
}

// HeaderHops counts how often a request was handed back to the gateways'
// queue group by a gateway that could not serve its namespace.
const HeaderHops = "Prism-Hops"

// maxHops bounds the hand-backs of one request: when no gateway of the
// queue group serves the namespace it ends in UNAVAILABLE.
const maxHops = 16

// requeue hands msg back to the queue group, where another gateway (one
// that serves its namespace) may pick it up and reply to the caller
// directly; a fire-and-forget write is handed back too. It returns false
// when msg has been handed back maxHops times already.
func (g *Gateway) requeue(msg *nats.Msg, ns string) bool {
	hops, _ := strconv.Atoi(msg.Header.Get(HeaderHops))
	if hops >= maxHops {
		return false
	}
	out := resend(msg, msg.Subject)
	out.Reply = msg.Reply
	out.Header.Set(HeaderHops, strconv.Itoa(hops+1))
	// Counted before the publish: once it is out, another gateway may
	// answer the request before this one returns, and the count must
	// already hold by then. A failed publish (counted, then answered here)
	// is rare enough to leave in.
	g.metrics.observeHandBack(ns)
	if err := g.nc.PublishMsg(out); err != nil {
		return false
	}
	return true
}

// resend is a copy of request msg, its body and headers, to send on
// subject; the header map is its own, so that setting a header on it
// leaves msg's alone.
func resend(msg *nats.Msg, subject string) *nats.Msg {
	out := nats.NewMsg(subject)
	out.Data = msg.Data
	for k, v := range msg.Header {
		out.Header[k] = v
	}
	return out
}

package gateway

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// Subscriptions of namespaces with PII fields (ADR 017, addendum). The
// stream holds PII values sealed; a subscriber sees them as a read shows
// them: in plaintext with read_pii, else masked or left out. JetStream
// cannot do that on its way to the subscriber, so for these namespaces
// subscribe.next does not forward the pull: the gateway pulls the batch
// into an inbox of its own and relays each delivery to the caller's
// delivery subject with its PII values revealed for the caller, the
// stored subject in HeaderRelaySubject and the JetStream reply (the
// delivery's metadata) in HeaderRelayDelivery. Statuses (heartbeats,
// the expiry that ends a pull) are relayed as they come. A relay that
// cannot go on (keys unavailable, the gateway draining) stops; the client
// sees the missed heartbeats or a gap in the consumer sequence and
// resumes after the last change it handled, so nothing is lost, only
// delayed.

// relaySlack is how long a relay waits past the pull's expiry for the
// server's status before it gives up on the pull.
const relaySlack = 2 * time.Second

// relayNext pulls for a subscription of a namespace with PII fields and
// relays the batch (see above). It returns once the pull is made; the
// relay runs until the batch is complete, the pull ends, or the gateway
// stops.
func (g *Gateway) relayNext(r *request, consumer, deliver string, pull []byte, req *prismv1.SubscribeNextRequest) error {
	ns := r.ns.Name
	inbox := g.nc.NewInbox()
	sub, err := g.nc.SubscribeSync(inbox)
	if err != nil {
		return status.FromJetStream(err, ns, "pulling for a subscription")
	}
	msg := nats.NewMsg(subjects.ConsumerNext(subjects.Stream(ns), consumer))
	msg.Reply, msg.Data = inbox, pull
	if err := g.nc.PublishMsg(msg); err != nil {
		_ = sub.Unsubscribe()
		return status.FromJetStream(err, ns, "pulling for a subscription")
	}
	wait := time.Duration(req.GetExpiresMs())*time.Millisecond + relaySlack
	if hb := time.Duration(req.GetHeartbeatMs()) * time.Millisecond; hb > 0 {
		wait = 2*hb + relaySlack
	}
	ctx := g.baseContext()
	relay := &relay{g: g, r: r, sub: sub, deliver: deliver, batch: int(req.GetBatch()), wait: wait}
	go relay.run(ctx)
	return nil
}

// relay is one pull being relayed.
type relay struct {
	g       *Gateway
	r       *request
	sub     *nats.Subscription
	deliver string
	batch   int
	wait    time.Duration
}

func (rl *relay) run(ctx context.Context) {
	defer func() { _ = rl.sub.Unsubscribe() }()
	for got := 0; got < rl.batch; {
		if ctx.Err() != nil {
			return
		}
		m, err := rl.sub.NextMsg(rl.wait)
		if err != nil {
			return // the pull's end went missing, or the connection closed
		}
		if st := m.Header.Get("Status"); st != "" {
			out := &nats.Msg{Subject: rl.deliver, Header: m.Header}
			if rl.g.nc.PublishMsg(out) != nil || st != "100" {
				return
			}
			continue
		}
		got++
		out, err := rl.reveal(ctx, m)
		if err != nil {
			rl.g.log.Warn("relay of a subscription stopped: the subscriber resumes after its last change", "namespace", rl.r.ns.Name, "err", err)
			return
		}
		if rl.g.nc.PublishMsg(out) != nil {
			return
		}
	}
}

// reveal is the delivery m as the subscriber may see it, addressed to the
// delivery subject.
func (rl *relay) reveal(ctx context.Context, m *nats.Msg) (*nats.Msg, error) {
	h := make(nats.Header, len(m.Header)+1)
	for k, v := range m.Header {
		h[k] = v
	}
	h.Set(subjects.HeaderRelaySubject, m.Subject)
	h.Set(subjects.HeaderRelayDelivery, m.Reply)
	out := &nats.Msg{Subject: rl.deliver, Header: h, Data: m.Data}
	d, err := subjects.DecodeEvent(m.Subject, m.Header, m.Data)
	undecryptable := func(field string) {
		rl.g.log.Warn("a PII value of a subscribed change does not decrypt: left out", "namespace", rl.r.ns.Name, "field", field)
	}
	switch {
	case err != nil:
		// Malformed: the subscriber decodes it and reports what is wrong;
		// Prism has nothing to reveal in it.
		return out, nil
	case d.TimeSeries != nil:
		ts := d.TimeSeries
		evs, err := rl.g.revealEvents(ctx, rl.r, ts.GetSeriesId(), ts.GetEvents(), undecryptable)
		if err != nil {
			return nil, err
		}
		out.Data, err = proto.Marshal(&prismv1.TimeSeriesAppend{SeriesId: ts.GetSeriesId(), Events: evs})
		return out, err
	case d.KeyValue == nil:
		return out, nil // a log event: no PII
	}
	ev := d.KeyValue
	var items []*prismv1.Item
	switch c := ev.GetChange().(type) {
	case *prismv1.KeyValueEvent_Put:
		items = c.Put.GetItems()
	case *prismv1.KeyValueEvent_Replace:
		items = c.Replace.GetItems()
	default:
		return out, nil
	}
	shown, err := rl.g.revealList(ctx, rl.r, ev.GetId(), items, undecryptable)
	if err != nil {
		return nil, err
	}
	revealed := &prismv1.KeyValueEvent{Id: ev.GetId()}
	if _, ok := ev.GetChange().(*prismv1.KeyValueEvent_Put); ok {
		revealed.Change = &prismv1.KeyValueEvent_Put{Put: &prismv1.KeyValuePut{Items: shown}}
	} else {
		revealed.Change = &prismv1.KeyValueEvent_Replace{Replace: &prismv1.KeyValueReplace{Items: shown}}
	}
	if out.Data, err = proto.Marshal(revealed); err != nil {
		return nil, err
	}
	return out, nil
}

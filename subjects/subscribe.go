package subjects

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// KindSubscribe is the kind of the requests that open, pull and close a
// subscription to a namespace's stream through Prism (ADR 017):
// prism.<ns>.subscribe.<op>.
const KindSubscribe = "subscribe"

// Operations of the subscribe requests.
const (
	SubscribeOpen  = "open"
	SubscribeNext  = "next"
	SubscribeClose = "close"
)

// Subscribe is the request subject of subscribe operation op in namespace
// ns, e.g. Subscribe("orders", SubscribeOpen) is
// prism.orders.subscribe.open.
func Subscribe(ns, op string) string { return Root + "." + ns + "." + KindSubscribe + "." + op }

// AllSubscribes is the wildcard subject a gateway subscribes to for every
// namespace's subscribe requests.
func AllSubscribes() string { return Root + ".*." + KindSubscribe + ".*" }

// DeliverToken is the second token of delivery subjects. '$' is not
// allowed in a namespace name, so no namespace's subjects collide with
// them.
const DeliverToken = "$deliver"

// DeliverPrefix is the prefix of the delivery subjects of the
// subscriptions principal opens: prism.$deliver.<the token of
// InboxPrefix(principal)>. In a secured deployment the principal may
// subscribe under its own prefix only, so no one else receives what its
// subscriptions deliver.
func DeliverPrefix(principal string) string {
	return Root + "." + DeliverToken + "." + strings.TrimPrefix(InboxPrefix(principal), "_INBOX.")
}

// Deliver is the subject the messages of subscription consumer consumer,
// opened by principal, are delivered on.
func Deliver(principal, consumer string) string { return DeliverPrefix(principal) + "." + consumer }

// AllDeliveries matches the delivery subject of every subscription: the
// stream the Prism account exports to applications.
func AllDeliveries() string { return Root + "." + DeliverToken + ".>" }

// SubscriptionConsumerPrefix starts the name of every consumer Prism
// creates for a subscription; the rest is the random capability.
const SubscriptionConsumerPrefix = "sub_"

// subscriptionCapLen is the length of the random part of a subscription
// consumer's name: 128 bits in lower-case base32.
const subscriptionCapLen = 26

// SubscriptionConsumer is the consumer name of a subscription whose
// random capability is capability (lower-case base32, 26 characters, as
// NewSubscriptionCapability makes).
func SubscriptionConsumer(capability string) string {
	return SubscriptionConsumerPrefix + capability
}

// ValidateSubscriptionConsumer reports whether name has the shape of a
// subscription consumer's name. It keeps a request from naming any other
// consumer (a projector's) or a subject wildcard.
func ValidateSubscriptionConsumer(name string) error {
	capability, ok := strings.CutPrefix(name, SubscriptionConsumerPrefix)
	if !ok || len(capability) != subscriptionCapLen {
		return fmt.Errorf("%w: %q is not a subscription consumer name", ErrInvalidSubject, name)
	}
	for i := 0; i < len(capability); i++ {
		if c := capability[i]; !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return fmt.Errorf("%w: %q is not a subscription consumer name", ErrInvalidSubject, name)
		}
	}
	return nil
}

// NewSubscriptionCapability encodes 16 random bytes as the capability of
// a subscription consumer's name.
func NewSubscriptionCapability(random [16]byte) string {
	return strings.ToLower(inboxEncoding.EncodeToString(random[:]))
}

// ConsumerNext is the JetStream API subject that pulls the next messages
// of consumer on stream.
func ConsumerNext(stream, consumer string) string {
	return "$JS.API.CONSUMER.MSG.NEXT." + stream + "." + consumer
}

// JetStreamInfo is the JetStream API subject of the account information
// request. Clients in the application account may send it: the server
// answers at once that the account has no JetStream, which is how the Go
// client knows to subscribe through Prism.
const JetStreamInfo = "$JS.API.INFO"

// Delivery is what the reply subject of a message JetStream delivered
// says about it ($JS.ACK.<stream>.<consumer>.<delivered>.<stream
// seq>.<consumer seq>.<time>.<pending>, or the form with domain and
// account hash before the stream).
type Delivery struct {
	Stream, Consumer string
	// Delivered counts the deliveries of this message to the consumer.
	Delivered uint64
	// StreamSeq is the message's stream sequence, ConsumerSeq the
	// consumer's delivery sequence: one more for each new delivery, so a
	// gap means a delivery was lost.
	StreamSeq, ConsumerSeq uint64
	// Time is when the stream stored the message.
	Time time.Time
	// Pending is how many messages the consumer had left after it.
	Pending uint64
}

// ParseDelivery parses the reply subject of a delivered JetStream
// message. It returns an error wrapping ErrInvalidSubject for anything
// else.
func ParseDelivery(reply string) (Delivery, error) {
	toks := strings.Split(reply, ".")
	bad := func() (Delivery, error) {
		return Delivery{}, fmt.Errorf("%w: %q is not the reply subject of a JetStream delivery", ErrInvalidSubject, reply)
	}
	switch {
	case len(toks) == 9:
	case len(toks) >= 11:
		// $JS.ACK.<domain>.<account hash>.<stream>...: drop the two.
		toks = append(toks[:2], toks[4:11]...)
	default:
		return bad()
	}
	if toks[0] != "$JS" || toks[1] != "ACK" {
		return bad()
	}
	var n [5]uint64
	for i := range n {
		v, err := strconv.ParseUint(toks[4+i], 10, 64)
		if err != nil {
			return bad()
		}
		n[i] = v
	}
	return Delivery{Stream: toks[2], Consumer: toks[3], Delivered: n[0], StreamSeq: n[1], ConsumerSeq: n[2], Time: time.Unix(0, int64(n[3])), Pending: n[4]}, nil
}

package subjects

import (
	"fmt"
	"strings"
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

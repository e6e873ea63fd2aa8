package subjects_test

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prism-data/prism/subjects"
)

func TestSubscribeSubjects(t *testing.T) {
	if got := subjects.Subscribe("orders", subjects.SubscribeOpen); got != "prism.orders.subscribe.open" {
		t.Fatalf("Subscribe = %q", got)
	}
	got, err := subjects.ParseRequest(subjects.Subscribe("orders", subjects.SubscribeNext))
	if err != nil || got != (subjects.Request{Namespace: "orders", Kind: subjects.KindSubscribe, Op: "next"}) {
		t.Fatalf("ParseRequest = %+v, %v", got, err)
	}
	if !matches(subjects.AllSubscribes(), subjects.Subscribe("orders", subjects.SubscribeClose)) {
		t.Fatalf("%s does not match the close subject", subjects.AllSubscribes())
	}
	// Deliveries: under the principal's own prefix, which the wildcard of
	// the export covers, and never under another principal's.
	d := subjects.Deliver("app", "sub_x")
	if !strings.HasPrefix(d, subjects.DeliverPrefix("app")+".") || !matches(subjects.AllDeliveries(), d) {
		t.Fatalf("Deliver = %q (prefix %q)", d, subjects.DeliverPrefix("app"))
	}
	if matches(subjects.DeliverPrefix("other")+".>", d) {
		t.Fatalf("another principal's prefix matches %q", d)
	}
	// The gateway's request subscriptions do not take a delivery.
	for _, w := range []string{subjects.AllWrites(), subjects.AllReads(), subjects.AllSubscribes()} {
		if matches(w, d) {
			t.Fatalf("%s matches the delivery subject %s", w, d)
		}
	}
}

func TestSubscriptionConsumer(t *testing.T) {
	name := subjects.SubscriptionConsumer(subjects.NewSubscriptionCapability([16]byte{1, 2, 3, 250}))
	if err := subjects.ValidateSubscriptionConsumer(name); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	for _, bad := range []string{"", "proj_sqlite", "sub_", "sub_*", "sub_>", name + "a", name[:len(name)-1], strings.ToUpper(name), "sub_" + strings.Repeat("a", 25) + "."} {
		if err := subjects.ValidateSubscriptionConsumer(bad); !errors.Is(err, subjects.ErrInvalidSubject) {
			t.Errorf("ValidateSubscriptionConsumer(%q) = %v, want ErrInvalidSubject", bad, err)
		}
	}
}

// matches reports whether NATS subject pattern p matches subject s.
func matches(p, s string) bool {
	pt, st := strings.Split(p, "."), strings.Split(s, ".")
	for i, tok := range pt {
		if tok == ">" {
			return len(st) > i
		}
		if i >= len(st) || tok != "*" && tok != st[i] {
			return false
		}
	}
	return len(pt) == len(st)
}

func TestParseDelivery(t *testing.T) {
	for _, tc := range []struct {
		reply string
		want  subjects.Delivery
	}{
		{"$JS.ACK.PRISM_ORDERS.sub_x.1.7.3.1796613211615879593.9", subjects.Delivery{Stream: "PRISM_ORDERS", Consumer: "sub_x", Delivered: 1, StreamSeq: 7, ConsumerSeq: 3, Time: time.Unix(0, 1796613211615879593), Pending: 9}},
		{"$JS.ACK.hub.ACCHASH.PRISM_ORDERS.sub_x.2.7.3.1796613211615879593.0.rnd", subjects.Delivery{Stream: "PRISM_ORDERS", Consumer: "sub_x", Delivered: 2, StreamSeq: 7, ConsumerSeq: 3, Time: time.Unix(0, 1796613211615879593)}},
	} {
		got, err := subjects.ParseDelivery(tc.reply)
		if err != nil || got != tc.want {
			t.Errorf("ParseDelivery(%q) = %+v, %v; want %+v", tc.reply, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "_INBOX.x", "$JS.ACK.S.C.1.2.3.4", "$JS.ACK.S.C.1.x.3.4.5", "$JS.NAK.S.C.1.2.3.4.5"} {
		if _, err := subjects.ParseDelivery(bad); !errors.Is(err, subjects.ErrInvalidSubject) {
			t.Errorf("ParseDelivery(%q) = %v, want ErrInvalidSubject", bad, err)
		}
	}
}

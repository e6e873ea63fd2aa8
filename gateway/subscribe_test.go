package gateway_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/gateway"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

func followerEnv(t *testing.T) (*env, *testAuditor) {
	t.Helper()
	aud := &testAuditor{}
	sec := testSecurity{grants: map[string][]auth.Permission{
		"writer":   {auth.Write, auth.Read},
		"reader":   {auth.Read},
		"follower": {auth.Subscribe},
		"other":    {auth.Subscribe},
	}}
	return newEnv(t, envConfig{opts: []gateway.Option{gateway.WithSecurity(sec), gateway.WithAuditor(aud)}}), aud
}

// puts writes n records as writer and returns their sequences.
func (e *env) puts(t *testing.T, n int) []uint64 {
	t.Helper()
	seqs := make([]uint64, n)
	for i := range seqs {
		var resp prismv1.WriteResponse
		if er := callAs(t, e, "writer", subjects.Write(testNS, "put"), putReq(string(rune('a'+i)), "k", "v"), &resp); er != nil {
			t.Fatalf("put: %v", er)
		}
		seqs[i] = resp.GetSeq()
	}
	return seqs
}

func (e *env) open(t *testing.T, who string, req *prismv1.SubscribeOpenRequest) *prismv1.SubscribeOpenResponse {
	t.Helper()
	var resp prismv1.SubscribeOpenResponse
	if er := callAs(t, e, who, subjects.Subscribe(testNS, subjects.SubscribeOpen), req, &resp); er != nil {
		t.Fatalf("open as %s: %v", who, er)
	}
	return &resp
}

// receive reads deliveries from sub until a status other than a
// heartbeat ends the pull, or n changes came; it returns the changes'
// stream sequences and the status that ended it ("" when n came).
func receive(t *testing.T, sub *nats.Subscription, n int) ([]uint64, string) {
	t.Helper()
	var seqs []uint64
	for len(seqs) < n {
		m, err := sub.NextMsg(10 * time.Second)
		if err != nil {
			t.Fatalf("after %v: %v", seqs, err)
		}
		if st := m.Header.Get("Status"); st != "" {
			if st == "100" {
				continue
			}
			return seqs, st
		}
		d, err := subjects.ParseDelivery(m.Reply)
		if err != nil {
			t.Fatalf("delivery without JetStream metadata: %v", err)
		}
		seqs = append(seqs, d.StreamSeq)
	}
	return seqs, ""
}

func TestSubscribeThroughTheGateway(t *testing.T) {
	e, aud := followerEnv(t)
	seqs := e.puts(t, 5)
	open := e.open(t, "follower", &prismv1.SubscribeOpenRequest{Start: &prismv1.SubscribeOpenRequest_FromSeq{FromSeq: seqs[1]}})
	if err := subjects.ValidateSubscriptionConsumer(open.GetConsumer()); err != nil {
		t.Fatal(err)
	}
	if want := subjects.Deliver("follower", open.GetConsumer()); open.GetDeliverSubject() != want {
		t.Fatalf("deliver subject %q, want %q", open.GetDeliverSubject(), want)
	}
	acc, waited := aud.last(t)
	if acc.Op != gateway.OpSubscribeOpen || acc.Principal.Name != "follower" || acc.Namespace != testNS || acc.Code != "OK" || !waited {
		t.Fatalf("open audited as %+v (waited %v)", acc, waited)
	}
	// The consumer is Prism's choice, whatever the request.
	c, err := e.js.Consumer(context.Background(), subjects.Stream(testNS), open.GetConsumer())
	if err != nil {
		t.Fatal(err)
	}
	cfg := c.CachedInfo().Config
	if cfg.AckPolicy != jetstream.AckNonePolicy || cfg.InactiveThreshold != gateway.SubscriptionInactiveThreshold || !cfg.MemoryStorage ||
		strings.Join(cfg.FilterSubjects, " ") != strings.Join([]string{subjects.AllKeyValueEvents(testNS), subjects.AllTimeSeriesEvents(testNS), subjects.AllLogEvents(testNS)}, " ") ||
		cfg.DeliverSubject != "" || cfg.OptStartSeq != seqs[1] {
		t.Fatalf("consumer config %+v", cfg)
	}

	sub, err := e.nc.SubscribeSync(open.GetDeliverSubject())
	if err != nil {
		t.Fatal(err)
	}
	next := &prismv1.SubscribeNextRequest{Consumer: open.GetConsumer(), Batch: 3, ExpiresMs: 500, HeartbeatMs: 100}
	if er := callAs(t, e, "follower", subjects.Subscribe(testNS, subjects.SubscribeNext), next, &prismv1.SubscribeAck{}); er != nil {
		t.Fatalf("next: %v", er)
	}
	got, st := receive(t, sub, 3)
	if st != "" || len(got) != 3 || got[0] != seqs[1] || got[2] != seqs[3] {
		t.Fatalf("first batch %v (status %q), want %v", got, st, seqs[1:4])
	}
	if er := callAs(t, e, "follower", subjects.Subscribe(testNS, subjects.SubscribeNext), next, &prismv1.SubscribeAck{}); er != nil {
		t.Fatalf("next: %v", er)
	}
	got, st = receive(t, sub, 3)
	if len(got) != 1 || got[0] != seqs[4] || st != "408" {
		t.Fatalf("second batch %v ended by %q, want [%d] ended by 408 (expired)", got, st, seqs[4])
	}
	acc, waited = aud.last(t)
	if acc.Op != gateway.OpSubscribeNext || acc.Count != 3 || waited {
		t.Fatalf("next audited as %+v (waited %v), want count 3, not waited", acc, waited)
	}

	if er := callAs(t, e, "follower", subjects.Subscribe(testNS, subjects.SubscribeClose), &prismv1.SubscribeCloseRequest{Consumer: open.GetConsumer()}, &prismv1.SubscribeAck{}); er != nil {
		t.Fatalf("close: %v", er)
	}
	if _, err := e.js.Consumer(context.Background(), subjects.Stream(testNS), open.GetConsumer()); !errors.Is(err, jetstream.ErrConsumerNotFound) {
		t.Fatalf("consumer after close: %v, want not found", err)
	}
	if er := callAs(t, e, "follower", subjects.Subscribe(testNS, subjects.SubscribeNext), next, &prismv1.SubscribeAck{}); !isCode(er, prismv1.Code_NOT_FOUND) {
		t.Fatalf("next after close: %v, want NOT_FOUND", er)
	}
}

func TestSubscribeRefusals(t *testing.T) {
	e, aud := followerEnv(t)
	e.puts(t, 1)
	theirs := e.open(t, "other", &prismv1.SubscribeOpenRequest{})
	absent := subjects.SubscriptionConsumer(subjects.NewSubscriptionCapability([16]byte{9}))
	nextOf := func(consumer string) *prismv1.SubscribeNextRequest {
		return &prismv1.SubscribeNextRequest{Consumer: consumer, Batch: 10, ExpiresMs: 1000}
	}
	open, next, closeSubj := subjects.Subscribe(testNS, subjects.SubscribeOpen), subjects.Subscribe(testNS, subjects.SubscribeNext), subjects.Subscribe(testNS, subjects.SubscribeClose)
	for _, tc := range []struct {
		name, who, subject string
		msg                proto.Message
		wantCode           prismv1.Code
		wantMsg            string
	}{
		{name: "reader opens", who: "reader", subject: open, msg: &prismv1.SubscribeOpenRequest{}, wantCode: prismv1.Code_PERMISSION_DENIED, wantMsg: "may not subscribe"},
		{name: "writer pulls", who: "writer", subject: next, msg: nextOf(theirs.GetConsumer()), wantCode: prismv1.Code_PERMISSION_DENIED, wantMsg: "may not subscribe"},
		{name: "pull from another principal's subscription", who: "follower", subject: next, msg: nextOf(theirs.GetConsumer()), wantCode: prismv1.Code_NOT_FOUND, wantMsg: "no subscription"},
		{name: "close another principal's subscription", who: "follower", subject: closeSubj, msg: &prismv1.SubscribeCloseRequest{Consumer: theirs.GetConsumer()}, wantCode: prismv1.Code_NOT_FOUND, wantMsg: "no subscription"},
		{name: "pull from a projector's consumer", who: "follower", subject: next, msg: nextOf("proj_sqlite"), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "not the name of a subscription"},
		{name: "pull from a wildcard", who: "follower", subject: next, msg: nextOf("*"), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "not the name of a subscription"},
		{name: "pull from a subscription that is gone", who: "follower", subject: next, msg: nextOf(absent), wantCode: prismv1.Code_NOT_FOUND, wantMsg: "no subscription"},
		{name: "batch too large", who: "follower", subject: next, msg: &prismv1.SubscribeNextRequest{Consumer: absent, Batch: gateway.MaxSubscribeBatch + 1, ExpiresMs: 1000}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "batch"},
		{name: "heartbeat too long", who: "follower", subject: next, msg: &prismv1.SubscribeNextRequest{Consumer: absent, Batch: 1, ExpiresMs: 1000, HeartbeatMs: 600}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "heartbeat_ms"},
		{name: "no expiry", who: "follower", subject: next, msg: &prismv1.SubscribeNextRequest{Consumer: absent, Batch: 1}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "expires_ms"},
		{name: "seq zero", who: "follower", subject: open, msg: &prismv1.SubscribeOpenRequest{Start: &prismv1.SubscribeOpenRequest_FromSeq{}}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "from_seq"},
		{name: "new only false", who: "follower", subject: open, msg: &prismv1.SubscribeOpenRequest{Start: &prismv1.SubscribeOpenRequest_NewOnly{}}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "new_only"},
		{name: "unknown namespace", who: "follower", subject: subjects.Subscribe("nosuch", subjects.SubscribeOpen), msg: &prismv1.SubscribeOpenRequest{}, wantCode: prismv1.Code_PERMISSION_DENIED, wantMsg: "may not subscribe namespace nosuch"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			er := callAs(t, e, tc.who, tc.subject, tc.msg, &prismv1.SubscribeAck{})
			if !isCode(er, tc.wantCode) || !strings.Contains(er.GetMessage(), tc.wantMsg) {
				t.Fatalf("reply error %v, want %v containing %q", er, tc.wantCode, tc.wantMsg)
			}
			acc, _ := aud.last(t)
			if acc.Code != tc.wantCode.String() || acc.Principal.Name != tc.who || !strings.HasPrefix(acc.Op, subjects.KindSubscribe+".") {
				t.Errorf("audited %+v, want %s's subscribe refused with %v", acc, tc.who, tc.wantCode)
			}
		})
	}
	// The other principal's subscription is still there and untouched.
	c, err := e.js.Consumer(context.Background(), subjects.Stream(testNS), theirs.GetConsumer())
	if err != nil {
		t.Fatal(err)
	}
	if info, err := c.Info(context.Background()); err != nil || info.Delivered.Stream != 0 || info.NumWaiting != 0 {
		t.Fatalf("the other subscription was pulled from: %+v, %v", info, err)
	}
}

// An open whose audit record cannot be stored is refused, and its
// consumer is deleted again.
func TestSubscribeOpenFailsClosedOnAudit(t *testing.T) {
	e, aud := followerEnv(t)
	aud.mu.Lock()
	aud.fail = errors.New("audit publish failed")
	aud.mu.Unlock()
	er := callAs(t, e, "follower", subjects.Subscribe(testNS, subjects.SubscribeOpen), &prismv1.SubscribeOpenRequest{}, &prismv1.SubscribeOpenResponse{})
	if !isCode(er, prismv1.Code_UNAVAILABLE) || !strings.Contains(er.GetMessage(), "subscription was not opened") {
		t.Fatalf("open whose audit failed: %v, want UNAVAILABLE", er)
	}
	s, err := e.js.Stream(context.Background(), subjects.Stream(testNS))
	if err != nil {
		t.Fatal(err)
	}
	for name := range s.ConsumerNames(context.Background()).Name() {
		if subjects.ValidateSubscriptionConsumer(name) == nil {
			t.Fatalf("subscription consumer %s left after a refused open", name)
		}
	}
}

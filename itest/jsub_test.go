package itest

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/prism-data/prism/auth/audit"
	"github.com/prism-data/prism/client"
	"github.com/prism-data/prism/internal/natsconn"
	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// Subscriptions of application principals through Prism (ADR 017), on the
// node's embedded server with authentication on.

// putOrders writes n records r<from>… to orders as nc and returns their
// sequences.
func putOrders(t *testing.T, nc *nats.Conn, from, n int) []uint64 {
	t.Helper()
	seqs := make([]uint64, n)
	for i := range seqs {
		id := base64.StdEncoding.EncodeToString(fmt.Appendf(nil, "r%d", from+i))
		code, seq := call(t, nc, subjects.Write("orders", "put"), `{"id":"`+id+`","items":[{"key":"aw==","value":"dg=="}]}`, nil)
		if code != "" || seq == 0 {
			t.Fatalf("put r%d: code %q seq %d", from+i, code, seq)
		}
		seqs[i] = seq
	}
	return seqs
}

// follow reads n changes from sub and returns their sequences, checking
// each is the put of the record its position says.
func follow(t *testing.T, sub *client.Subscription, from, n int) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	seqs := make([]uint64, 0, n)
	for i := range n {
		ch, err := sub.Next(ctx)
		if err != nil {
			t.Fatalf("after %d changes: %v", len(seqs), err)
		}
		if ch.Err != nil || ch.Namespace != "orders" || string(ch.KeyValue.GetId()) != fmt.Sprint("r", from+i) {
			t.Fatalf("change %d: %+v, want the put of r%d", i, ch, from+i)
		}
		seqs = append(seqs, ch.Seq)
	}
	return seqs
}

func equalUints(t *testing.T, what string, got, want []uint64) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s: %v, want %v", what, got, want)
	}
}

// subscriptionConsumers lists the subscription consumers on orders'
// stream, as the service user sees them.
func (s *secured) subscriptionConsumers(t *testing.T, ns string) []string {
	t.Helper()
	sjs, err := jetstream.New(s.svc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sjs.Stream(context.Background(), subjects.Stream(ns))
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	l := st.ConsumerNames(context.Background())
	for name := range l.Name() {
		if subjects.ValidateSubscriptionConsumer(name) == nil {
			names = append(names, name)
		}
	}
	if err := l.Err(); err != nil {
		t.Fatal(err)
	}
	return names
}

// auditOps lists "principal op code" of ns's audit records whose op
// starts with prefix.
func (s *secured) auditOps(t *testing.T, ns, prefix string) []string {
	t.Helper()
	sjs, _ := jetstream.New(s.svc)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var got []string
	if err := audit.List(ctx, sjs, audit.Filter{Namespace: ns}, func(r audit.Record) error {
		if strings.HasPrefix(r.Op, prefix) {
			got = append(got, r.Principal.Name+" "+r.Op+" "+r.Code)
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return got
}

func TestSecuredSubscribeFollowsAndResumes(t *testing.T) {
	s := startSecured(t)
	app := s.user(t, "app")
	seqs := putOrders(t, app, 0, 30)

	c, err := client.New(app)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// From the fifth write, with a small buffer so that it takes several
	// pulls.
	sub, err := c.Subscribe(ctx, "orders", client.FromSeq(seqs[4]), client.WithBuffer(client.MinSubscribeBuffer))
	if err != nil {
		t.Fatalf("app subscribes to orders: %v", err)
	}
	got := follow(t, sub, 4, 20)
	equalUints(t, "first subscription", got, seqs[4:24])
	if n := len(s.subscriptionConsumers(t, "orders")); n != 1 {
		t.Fatalf("%d subscription consumers on orders, want 1", n)
	}
	if err := sub.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if names := s.subscriptionConsumers(t, "orders"); len(names) != 0 {
		t.Fatalf("consumers %v left after Stop", names)
	}

	// Resume after the last change read: the rest, and what came since,
	// without gap or duplicate.
	seqs = append(seqs, putOrders(t, app, 30, 5)...)
	resumed, err := c.Subscribe(ctx, "orders", client.FromSeq(sub.LastSeq()+1))
	if err != nil {
		t.Fatal(err)
	}
	got = append(got, follow(t, resumed, 24, 11)...)
	equalUints(t, "across the resume", got, seqs[4:])
	// Live: a write made now arrives.
	seqs = append(seqs, putOrders(t, app, 35, 1)...)
	equalUints(t, "live", follow(t, resumed, 35, 1), seqs[35:])
	if err := resumed.Stop(); err != nil {
		t.Fatal(err)
	}

	// Every open is audited, one to one, as app's and OK; the pulls and
	// the closes are audited too.
	equalStrings(t, "opens", s.auditOps(t, "orders", "subscribe.open"), []string{"app subscribe.open OK", "app subscribe.open OK"})
	deadline := time.Now().Add(10 * time.Second)
	for {
		closes, nexts := s.auditOps(t, "orders", "subscribe.close"), s.auditOps(t, "orders", "subscribe.next")
		if len(closes) == 2 && len(nexts) >= 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("audited closes %v and %d pulls, want 2 closes and at least 2 pulls", closes, len(nexts))
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := nodeMetric(t, s.n, "prism_audit_dropped_total"); n != 0 {
		t.Errorf("prism_audit_dropped_total = %v, want 0", n)
	}
}

func equalStrings(t *testing.T, what string, got, want []string) {
	t.Helper()
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("%s:\n%s\nwant:\n%s", what, strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestSecuredSubscribeRefusals(t *testing.T) {
	s := startSecured(t)
	app, stranger, admin := s.user(t, "app"), s.user(t, "stranger"), s.user(t, "admin")
	putOrders(t, app, 0, 3)
	open := func(nc *nats.Conn, ns string) *prismv1.SubscribeOpenResponse {
		t.Helper()
		m := nats.NewMsg(subjects.Subscribe(ns, subjects.SubscribeOpen))
		m.Data = []byte(`{}`)
		reply, err := nc.RequestMsg(m, 5*time.Second)
		if err != nil || reply.Header.Get(subjects.HeaderErrorCode) != "" {
			t.Fatalf("open %s: %v %s", ns, err, reply.Data)
		}
		var resp prismv1.SubscribeOpenResponse
		if err := protojson.Unmarshal(reply.Data, &resp); err != nil {
			t.Fatal(err)
		}
		return &resp
	}
	nextBody := func(consumer string) string {
		return fmt.Sprintf(`{"consumer":%q,"batch":10,"expiresMs":"1000"}`, consumer)
	}
	// Subscriptions of others: admin's on orders, admin's on payroll
	// (which app may not follow).
	adminOrders, adminPayroll := open(admin, "orders"), open(admin, "payroll")

	// The server refuses what the permissions do not allow: nothing
	// reaches Prism.
	for _, tc := range []struct {
		name    string
		nc      *nats.Conn
		subject string
		body    string
	}{
		{"stranger pulls admin's subscription", stranger, subjects.Subscribe("orders", subjects.SubscribeNext), nextBody(adminOrders.GetConsumer())},
		{"app pulls payroll's subscription, knowing its name", app, subjects.Subscribe("payroll", subjects.SubscribeNext), nextBody(adminPayroll.GetConsumer())},
		{"app creates a consumer", app, "$JS.API.CONSUMER.CREATE." + subjects.Stream("orders"), `{}`},
		{"app pulls raw from a subscription consumer", app, subjects.ConsumerNext(subjects.Stream("orders"), adminOrders.GetConsumer()), `{"batch":1}`},
		{"app pulls raw from a projector", app, subjects.ConsumerNext(subjects.Stream("orders"), subjects.Consumer("sqlite")), `{"batch":1}`},
		{"stranger pulls raw", stranger, subjects.ConsumerNext(subjects.Stream("orders"), adminOrders.GetConsumer()), `{"batch":1}`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _ := call(t, tc.nc, tc.subject, tc.body, nil); code != errRefused {
				t.Fatalf("got %q, want the server to refuse it", code)
			}
		})
	}
	// Nor may app listen to what admin's subscriptions deliver.
	if _, err := app.SubscribeSync(adminOrders.GetDeliverSubject()); err != nil {
		t.Fatal(err)
	}
	wantRefusal(t, app, "Subscription", adminOrders.GetDeliverSubject())

	// Anyone may ask to open (so that a refusal gets an answer, not a
	// timeout): Prism refuses it, naming the permission, and creates no
	// consumer.
	for _, tc := range []struct {
		name string
		nc   *nats.Conn
		ns   string
	}{
		{"stranger opens on orders", stranger, "orders"},
		{"app opens on payroll", app, "payroll"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := s.subscriptionConsumers(t, tc.ns)
			c, err := client.New(tc.nc, client.WithSubscribeVia(client.SubscribeThroughPrism))
			if err != nil {
				t.Fatal(err)
			}
			sub, err := c.Subscribe(context.Background(), tc.ns)
			if !errors.Is(err, client.ErrPermissionDenied) || !strings.Contains(err.Error(), "subscribe") {
				if sub != nil {
					_ = sub.Stop()
				}
				t.Fatalf("got %v, want PERMISSION_DENIED naming subscribe", err)
			}
			if after := s.subscriptionConsumers(t, tc.ns); !slices.Equal(after, before) {
				t.Fatalf("subscriptions of %s went from %v to %v", tc.ns, before, after)
			}
		})
	}

	// Prism refuses what the server lets through: app may use orders'
	// subscribe subjects, but not to pull another principal's
	// subscription, nor one of another namespace.
	for _, tc := range []struct {
		name, consumer string
	}{
		{"admin's subscription on orders", adminOrders.GetConsumer()},
		{"a payroll subscription named on orders", adminPayroll.GetConsumer()},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, _ := call(t, app, subjects.Subscribe("orders", subjects.SubscribeNext), nextBody(tc.consumer), nil)
			if code != prismv1.Code_NOT_FOUND.String() {
				t.Fatalf("got %q, want NOT_FOUND", code)
			}
		})
	}
	for _, name := range []string{adminOrders.GetConsumer(), adminPayroll.GetConsumer()} {
		ns := "orders"
		if name == adminPayroll.GetConsumer() {
			ns = "payroll"
		}
		sjs, _ := jetstream.New(s.svc)
		c, err := sjs.Consumer(context.Background(), subjects.Stream(ns), name)
		if err != nil {
			t.Fatal(err)
		}
		if info := c.CachedInfo(); info.Delivered.Stream != 0 || info.NumWaiting != 0 {
			t.Fatalf("admin's subscription %s was pulled from: delivered %d, waiting %d", name, info.Delivered.Stream, info.NumWaiting)
		}
	}

	// A client without subscribe is told so by Prism; one without read,
	// whose request the server drops, by the client from the server's
	// permissions violation. Neither waits for its deadline.
	sc, err := client.New(stranger, client.WithTimeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	if sub, err := sc.Subscribe(context.Background(), "orders"); !errors.Is(err, client.ErrPermissionDenied) || !strings.Contains(err.Error(), "subscribe") {
		if sub != nil {
			_ = sub.Stop()
		}
		t.Fatalf("stranger's Subscribe: %v, want PERMISSION_DENIED naming subscribe", err)
	}
	if _, err := sc.KeyValue("orders").Get(context.Background(), []byte("r0")); !errors.Is(err, client.ErrPermissionDenied) || !strings.Contains(err.Error(), subjects.Read("orders", "get")) {
		t.Fatalf("stranger's Get: %v, want PERMISSION_DENIED naming %s", err, subjects.Read("orders", "get"))
	}

	// Narrow the policy live: app keeps its connection (and its server
	// permissions); Prism refuses its new subscriptions, and its open one
	// at its next pull.
	c, err := client.New(app)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	sub, err := c.Subscribe(ctx, "orders", client.WithBuffer(client.MinSubscribeBuffer))
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Stop()
	follow(t, sub, 0, 3)
	ac := namespaces.NewAdminClient(admin, 10*time.Second)
	cur, err := ac.Get(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	nsSpec := cur.Namespace
	nsSpec.Access.Subscribe = namespaces.Names{}
	if _, err := ac.Apply(ctx, nsSpec, cur.Revision, "ignored"); err != nil {
		t.Fatalf("apply: %v", err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		early, err := c.Subscribe(ctx, "orders")
		if errors.Is(err, client.ErrPermissionDenied) {
			break
		}
		if early != nil {
			_ = early.Stop() // the policy not yet followed
		}
		if time.Now().After(deadline) {
			t.Fatalf("Subscribe after the policy dropped app: %v, want PERMISSION_DENIED", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// More than a batch makes the open subscription pull again.
	putOrders(t, app, 3, client.MinSubscribeBuffer+1)
	for {
		_, err := sub.Next(ctx)
		if err == nil {
			continue // the rest of the batch pulled before the change
		}
		if !errors.Is(err, client.ErrPermissionDenied) {
			t.Fatalf("open subscription after the policy dropped app: %v, want PERMISSION_DENIED", err)
		}
		break
	}
	if got := s.auditOps(t, "orders", "subscribe.open"); len(got) < 3 || got[len(got)-1] != "app subscribe.open PERMISSION_DENIED" {
		t.Fatalf("audited opens %v, want the refused one last", got)
	}
}

// wantRefusal waits for the server's permissions violation of kind
// (Publish or Subscription) on subject for nc.
func wantRefusal(t *testing.T, nc *nats.Conn, kind, subject string) {
	t.Helper()
	ch, ok := refusals.Load(nc)
	if !ok {
		t.Fatal("no refusals recorded for the connection")
	}
	timeout := time.After(5 * time.Second)
	for {
		select {
		case v := <-ch.(chan string):
			if strings.Contains(v, kind) && strings.Contains(v, `"`+subject+`"`) {
				return
			}
		case <-timeout:
			t.Fatalf("the server did not refuse the %s on %s", kind, subject)
		}
	}
}

// TestSecuredConnectionsAudited: the callout's decisions are audited: one
// connect.admit per connection, refused ones too, and the change fan-out
// (core NATS, which never reaches Prism) by its grant on each namespace
// an admitted connection may follow.
func TestSecuredConnectionsAudited(t *testing.T) {
	s := startSecured(t)
	s.user(t, "app")
	s.user(t, "stranger")
	s.user(t, "admin")
	if nc, err := s.dial(natsconn.Options{Token: "opaque-token"}); err == nil {
		nc.Close()
		t.Fatal("an opaque token connected")
	}
	count := func(ops []string, want string) int {
		n := 0
		for _, op := range ops {
			if op == want {
				n++
			}
		}
		return n
	}
	// The grants are stored before the server admits the connection; the
	// other records may trail it a little.
	var connects []string
	deadline := time.Now().Add(10 * time.Second)
	for {
		connects = s.auditOps(t, subjects.AuditNoNamespace, "connect")
		if count(connects, "anonymous connect.admit PERMISSION_DENIED") == 1 && count(connects, "stranger connect.admit OK") == 1 || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	for _, want := range []string{"app connect.admit OK", "stranger connect.admit OK", "admin connect.admit OK", "anonymous connect.admit PERMISSION_DENIED"} {
		if count(connects, want) != 1 {
			t.Errorf("audit has %d %q, want 1:\n%s", count(connects, want), want, strings.Join(connects, "\n"))
		}
	}
	equalStrings(t, "orders' fan-out grants", s.auditOps(t, "orders", "changes"), []string{"app changes.grant OK"})
	equalStrings(t, "payroll's fan-out grants", s.auditOps(t, "payroll", "changes"), nil)
	equalStrings(t, "all-namespace grants (a global admin)", s.auditOps(t, subjects.AuditNoNamespace, "changes"), []string{"admin changes.grant_all OK"})
}

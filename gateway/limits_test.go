package gateway_test

import (
	"context"
	"fmt"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// gateWaiter is a projection that has applied nothing until open is
// closed, and everything after: reads with min_seq wait on it, holding
// their gateway slot.
type gateWaiter struct{ open chan struct{} }

func newGateWaiter() *gateWaiter { return &gateWaiter{open: make(chan struct{})} }

func (w *gateWaiter) Applied() uint64 {
	select {
	case <-w.open:
		return 1 << 62
	default:
		return 0
	}
}

func (w *gateWaiter) WaitApplied(ctx context.Context, _ uint64) error {
	select {
	case <-w.open:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// replies collects the replies of requests sent with PublishRequest.
type replies struct {
	mu   sync.Mutex
	msgs []*nats.Msg
	sub  *nats.Subscription
}

func collect(t *testing.T, nc *nats.Conn) *replies {
	t.Helper()
	r := &replies{}
	sub, err := nc.Subscribe(nats.NewInbox(), func(m *nats.Msg) {
		r.mu.Lock()
		r.msgs = append(r.msgs, m)
		r.mu.Unlock()
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	r.sub = sub
	return r
}

func (r *replies) send(t *testing.T, nc *nats.Conn, subject string, req proto.Message) {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Reply = r.sub.Subject
	m.Header.Set(subjects.HeaderContentTypeReq, subjects.ContentTypeProto)
	m.Data = encode(t, req, encProto)
	if err := nc.PublishMsg(m); err != nil {
		t.Fatal(err)
	}
}

// codes counts the replies by code ("OK" for a success).
func (r *replies) codes() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]int{}
	for _, m := range r.msgs {
		c := m.Header.Get(subjects.HeaderErrorCode)
		if c == "" {
			c = "OK"
		}
		out[c]++
	}
	return out
}

// waitFor polls cond until it holds or 5 s passed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// checkShedReply asserts m is a RESOURCE_EXHAUSTED reply whose header and
// body carry the same positive retry-after hint.
func checkShedReply(t *testing.T, m *nats.Msg) {
	t.Helper()
	if c := m.Header.Get(subjects.HeaderErrorCode); c != prismv1.Code_RESOURCE_EXHAUSTED.String() {
		t.Fatalf("code %q, want RESOURCE_EXHAUSTED", c)
	}
	ms, err := strconv.Atoi(m.Header.Get(subjects.HeaderRetryAfter))
	if err != nil || ms <= 0 {
		t.Fatalf("%s = %q, want a positive number of milliseconds", subjects.HeaderRetryAfter, m.Header.Get(subjects.HeaderRetryAfter))
	}
	var er prismv1.ErrorReply
	if err := proto.Unmarshal(m.Data, &er); err != nil {
		t.Fatal(err)
	}
	if got := er.GetError().GetRetryAfterMs(); int(got) != ms {
		t.Errorf("body retry_after_ms %d, header %d", got, ms)
	}
}

// holdReads sends n reads of namespace demo that wait for min_seq on a
// gated projection, and waits until held of them are running and the
// rest were shed for reason; it returns the replies.
func holdReads(t *testing.T, e *env, n, held int, reason string) *replies {
	t.Helper()
	r := collect(t, e.nc)
	for i := range n {
		r.send(t, e.nc, subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte(fmt.Sprint("id", i)), MinSeq: 1})
	}
	waitFor(t, fmt.Sprintf("%d held and %d shed", held, n-held), func() bool {
		return r.codes()[prismv1.Code_RESOURCE_EXHAUSTED.String()] == n-held && e.gw.Load().InFlight == int64(held)
	})
	if got := e.gw.Shed(testNS); got[reason] != int64(n-held) {
		t.Errorf("sheds %v, want %d %s", got, n-held, reason)
	}
	return r
}

// release opens w and waits until the held reads of r finished (NOT_FOUND:
// there is no such record) and nothing is in flight.
func releaseHeld(t *testing.T, e *env, w *gateWaiter, r *replies, held int) {
	t.Helper()
	close(w.open)
	waitFor(t, "the held reads to finish", func() bool {
		return r.codes()[prismv1.Code_NOT_FOUND.String()] == held && e.gw.Load().InFlight == 0
	})
}

// A namespace declaring write_rps 5 is admitted 10 writes/s with a burst
// of 10: on the tests' clock, which stands still, exactly 10 of 15 puts
// are stored and 5 are shed with RESOURCE_EXHAUSTED and a retry-after
// hint, counted by reason. Reads have no limit (read_rps not stated).
// Lifting the need by an update admits writes again at once.
func TestWriteRateLimitShedsAndChangesLive(t *testing.T) {
	ns := namespaces.Namespace{Name: testNS, Abstraction: "keyvalue", Backend: "sqlite", Needs: namespaces.Needs{WriteRPS: 5}}
	e := newEnv(t, envConfig{namespace: func(n *namespaces.Namespace) { *n = ns }})
	lim, ok := e.gw.Limits(testNS)
	if !ok || lim.WriteRate.Value != 10 || lim.ReadRate.Value != 0 || lim.InFlight.Value != namespaces.MinInFlightQuota {
		t.Fatalf("limits %+v, want write 10/s, no read limit, in-flight %d", lim, namespaces.MinInFlightQuota)
	}
	ok10, shed := 0, 0
	var lastSeq uint64
	for i := range 15 {
		reply := request(t, e.nc, subjects.Write(testNS, "put"), encode(t, putReq(fmt.Sprint("r", i), "k", "v"), encProto), encProto)
		if reply.Header.Get(subjects.HeaderErrorCode) == "" {
			var w prismv1.WriteResponse
			if err := proto.Unmarshal(reply.Data, &w); err != nil {
				t.Fatal(err)
			}
			lastSeq = max(lastSeq, w.GetSeq())
			ok10++
			continue
		}
		checkShedReply(t, reply)
		shed++
	}
	if ok10 != 10 || shed != 5 {
		t.Fatalf("%d stored, %d shed; want 10 and 5", ok10, shed)
	}
	if n := streamMsgs(t, e.js); n != 10 {
		t.Errorf("stream holds %d events, want the 10 admitted", n)
	}
	if got := e.gw.Shed(testNS); got[gateway.ShedWriteRate] != 5 || got[gateway.ShedNamespaceInFlight] != 0 {
		t.Errorf("shed counts %v, want 5 write_rate", got)
	}
	var get prismv1.GetResponse
	// Reads have their own limit: a get (waiting for the puts, which the
	// namespace's eventual consistency would not) is served.
	mustCall(t, e.nc, subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte("r0"), MinSeq: lastSeq}, &get)

	// A JSON caller gets the same code and hint in JSON.
	reply := request(t, e.nc, subjects.Write(testNS, "put"), encode(t, putReq("j", "k", "v"), encJSON), encJSON)
	var er prismv1.ErrorReply
	if err := protojson.Unmarshal(reply.Data, &er); err != nil || er.GetError().GetCode() != prismv1.Code_RESOURCE_EXHAUSTED || er.GetError().GetRetryAfterMs() == 0 {
		t.Fatalf("JSON shed reply %s (%v), want RESOURCE_EXHAUSTED with retry_after_ms", reply.Data, err)
	}

	// prism apply of needs without write_rps: UpdateNamespace, live.
	ns.Needs.WriteRPS = 0
	if err := e.gw.UpdateNamespace(ns); err != nil {
		t.Fatal(err)
	}
	if lim, _ := e.gw.Limits(testNS); lim.WriteRate.Value != 0 {
		t.Fatalf("write limit after the update %d, want none", lim.WriteRate.Value)
	}
	for i := range 5 {
		var resp prismv1.WriteResponse
		mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq(fmt.Sprint("after", i), "k", "v"), &resp)
	}
	// And a lower one sheds again, still without a restart.
	ns.Needs.WriteRPS = 1
	if err := e.gw.UpdateNamespace(ns); err != nil {
		t.Fatal(err)
	}
	shed = 0
	for i := range 5 {
		reply := request(t, e.nc, subjects.Write(testNS, "put"), encode(t, putReq(fmt.Sprint("low", i), "k", "v"), encProto), encProto)
		if reply.Header.Get(subjects.HeaderErrorCode) != "" {
			checkShedReply(t, reply)
			shed++
		}
	}
	if shed < 3 { // a burst of 2 at most
		t.Errorf("%d of 5 writes shed at write_rps 1, want at least 3", shed)
	}
}

// The in-flight quota of a namespace (16 for a small write_rps) bounds its
// requests at once: of 20 reads held waiting for min_seq, 16 run and 4 are
// shed at once, and the held ones finish normally.
func TestInFlightQuotaSheds(t *testing.T) {
	w := newGateWaiter()
	e := newEnv(t, envConfig{waiter: w, opts: []gateway.Option{gateway.WithConsistencyWait(10 * time.Second)},
		namespace: func(n *namespaces.Namespace) { n.Needs.WriteRPS = 5 }})
	r := holdReads(t, e, 20, 16, gateway.ShedNamespaceInFlight)
	releaseHeld(t, e, w, r, 16)
}

// With two namespaces on a gateway of 8 slots, namespace demo flooding
// with held reads gets its fair share (8 / (1 busy + 1 kept for another)
// = 4) and is shed beyond it, while namespace other, arriving later, is
// served at once: the process cap sheds rather than blocks, and one
// namespace cannot take every slot.
func TestFairShareKeepsRoomForAnotherNamespace(t *testing.T) {
	w := newGateWaiter()
	e := newEnv(t, envConfig{waiter: w, opts: []gateway.Option{gateway.WithConsistencyWait(10 * time.Second), gateway.WithMaxInFlight(8)}})
	other := namespaces.Namespace{Name: "other", Abstraction: "keyvalue", Backend: "sqlite"}
	if err := e.gw.AddNamespace(other, e.store, w); err != nil {
		t.Fatal(err)
	}
	r := holdReads(t, e, 8, 4, gateway.ShedFairShare)
	reply := request(t, e.nc, subjects.Read("other", "get"), encode(t, &prismv1.GetRequest{Id: []byte("x")}, encProto), encProto)
	if c := reply.Header.Get(subjects.HeaderErrorCode); c != prismv1.Code_NOT_FOUND.String() {
		t.Errorf("a get of namespace other answered %q, want it served (NOT_FOUND: no such record)", c)
	}
	if got := e.gw.Shed("other"); got[gateway.ShedFairShare]+got[gateway.ShedProcessInFlight] != 0 {
		t.Errorf("other was shed: %v", got)
	}
	releaseHeld(t, e, w, r, 4)
}

// With one namespace the whole process is its share: a gateway of 8 slots
// runs 8 held reads and sheds the rest with process_in_flight instead of
// queueing them.
func TestProcessCapShedsInsteadOfQueueing(t *testing.T) {
	w := newGateWaiter()
	e := newEnv(t, envConfig{waiter: w, opts: []gateway.Option{gateway.WithConsistencyWait(10 * time.Second), gateway.WithMaxInFlight(8)}})
	r := holdReads(t, e, 12, 8, gateway.ShedProcessInFlight)
	releaseHeld(t, e, w, r, 8)
}

// limits.principal_share 50 gives each caller half of write_rps 5 × 2:
// writer's burst of 10 puts stores 5 and sheds 5 with principal_rate,
// without taking the namespace's tokens, so root's 5 puts are stored
// too; root's sixth is shed at root's own share.
func TestPrincipalShare(t *testing.T) {
	sec := testSecurity{grants: map[string][]auth.Permission{"writer": {auth.Write}}}
	e := newEnv(t, envConfig{opts: []gateway.Option{gateway.WithSecurity(sec), gateway.WithAuditor(&testAuditor{})},
		namespace: func(n *namespaces.Namespace) {
			n.Needs.WriteRPS = 5
			n.Limits.PrincipalShare = 50
		}})
	put := func(principal, id string) *nats.Msg {
		m := nats.NewMsg(subjects.Write(testNS, "put"))
		m.Header.Set(testPrincipalHeader, principal)
		m.Header.Set(subjects.HeaderContentTypeReq, subjects.ContentTypeProto)
		m.Data = encode(t, putReq(id, "k", "v"), encProto)
		reply, err := e.nc.RequestMsg(m, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		return reply
	}
	count := func(principal string, n int) (stored int) {
		for i := range n {
			reply := put(principal, fmt.Sprint(principal, i))
			if reply.Header.Get(subjects.HeaderErrorCode) == "" {
				stored++
				continue
			}
			checkShedReply(t, reply)
		}
		return stored
	}
	if got := count("writer", 10); got != 5 {
		t.Errorf("writer stored %d of 10, want its share of 5", got)
	}
	if got := e.gw.Shed(testNS); got[gateway.ShedPrincipalRate] != 5 || got[gateway.ShedWriteRate] != 0 {
		t.Errorf("shed counts %v, want 5 principal_rate", got)
	}
	if got := count("root", 5); got != 5 {
		t.Errorf("root stored %d of 5: another caller's sheds took its allowance", got)
	}
	if got := count("root", 1); got != 0 || e.gw.Shed(testNS)[gateway.ShedPrincipalRate] != 6 {
		t.Errorf("root's sixth put: stored %d, sheds %v; want it shed at root's share", got, e.gw.Shed(testNS))
	}
	if n := streamMsgs(t, e.js); n != 10 {
		t.Errorf("stream holds %d events, want 10", n)
	}
}

// The bodies in flight are bounded too: with room for two and a half
// read bodies, two held reads run and the next three are shed with
// process_bytes.
func TestInFlightBytesShed(t *testing.T) {
	size := len(encode(t, &prismv1.GetRequest{Id: []byte("id0"), MinSeq: 1}, encProto))
	w := newGateWaiter()
	e := newEnv(t, envConfig{waiter: w, opts: []gateway.Option{gateway.WithConsistencyWait(10 * time.Second), gateway.WithMaxInFlightBytes(int64(size * 5 / 2))}})
	r := holdReads(t, e, 5, 2, gateway.ShedProcessBytes)
	if l := e.gw.Load(); l.InFlightBytes != int64(2*size) || l.PeakInFlightBytes > l.MaxBytes {
		t.Errorf("load %+v, want %d bytes in flight, peak within the bound", l, 2*size)
	}
	releaseHeld(t, e, w, r, 2)
}

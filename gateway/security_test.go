package gateway_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/gateway"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// testPrincipalHeader names the caller in these tests. The real Security
// reads Nats-Request-Info, which only a NATS server with accounts sets
// (auth and itest test that); here the gateway's enforcement is tested.
const testPrincipalHeader = "Test-Principal"

// testSecurity grants each principal the permissions listed for it, on
// namespace testNS; "root" may do anything anywhere.
type testSecurity struct{ grants map[string][]auth.Permission }

func (s testSecurity) Identify(h nats.Header) (auth.Principal, error) {
	name := h.Get(testPrincipalHeader)
	if name == "" {
		return auth.Principal{}, errors.New("no principal")
	}
	return auth.Principal{Name: name, Via: "test"}, nil
}

func (s testSecurity) Authorize(p auth.Principal, ns string, perm auth.Permission) error {
	if p.Name == "root" || (ns == testNS || ns == tsNS) && slices.Contains(s.grants[p.Name], perm) {
		return nil
	}
	return status.Newf(prismv1.Code_PERMISSION_DENIED, "%s may not %s namespace %s", p.Name, perm, ns)
}

// testAuditor keeps every access; fail makes records fail, unhealthy
// refuses everything.
type testAuditor struct {
	mu        sync.Mutex
	accesses  []gateway.Access
	waited    []bool
	fail      error
	unhealthy error
}

func (a *testAuditor) Audit(_ context.Context, acc gateway.Access, wait bool) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.fail != nil {
		return a.fail
	}
	a.accesses = append(a.accesses, acc)
	a.waited = append(a.waited, wait)
	return nil
}

func (a *testAuditor) Healthy() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.unhealthy
}

func (a *testAuditor) last(t *testing.T) (gateway.Access, bool) {
	t.Helper()
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.accesses) == 0 {
		t.Fatal("nothing audited")
	}
	return a.accesses[len(a.accesses)-1], a.waited[len(a.waited)-1]
}

func securedEnv(t *testing.T) (*env, *testAuditor) {
	t.Helper()
	aud := &testAuditor{}
	sec := testSecurity{grants: map[string][]auth.Permission{
		"writer": {auth.Write, auth.Read},
		"reader": {auth.Read},
	}}
	e := newEnv(t, envConfig{opts: []gateway.Option{gateway.WithSecurity(sec), gateway.WithAuditor(aud)}})
	return e, aud
}

// callAs sends req as principal (none when "") to subject and returns the
// reply's error, nil on success.
func callAs(t *testing.T, e *env, principal, subject string, req, resp proto.Message) *prismv1.Error {
	t.Helper()
	msg := nats.NewMsg(subject)
	msg.Data = encode(t, req, encJSON)
	if principal != "" {
		msg.Header.Set(testPrincipalHeader, principal)
	}
	reply, err := e.nc.RequestMsg(msg, 10*time.Second)
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	return decodeReply(t, reply, resp, encJSON)
}

func TestSecurityAllowsAndRecordsThePrincipal(t *testing.T) {
	e, aud := securedEnv(t)
	var resp prismv1.WriteResponse
	put := &prismv1.PutRequest{Id: []byte("u1"), Items: []*prismv1.Item{{Key: []byte("k"), Value: []byte("v")}}}
	if er := callAs(t, e, "writer", subjects.Write(testNS, "put"), put, &resp); er != nil {
		t.Fatalf("put as writer: %v", er)
	}
	stored := storedMsg(t, e.js, resp.GetSeq())
	if got := stored.Header.Get(subjects.HeaderPrincipal); got != "writer" {
		t.Errorf("event %s = %q, want writer", subjects.HeaderPrincipal, got)
	}
	acc, waited := aud.last(t)
	if acc.Principal.Name != "writer" || acc.Namespace != testNS || acc.Op != "write.put" || acc.Code != "OK" ||
		acc.Seq != resp.GetSeq() || acc.Count != 1 || len(acc.IDs) != 1 || string(acc.IDs[0]) != "u1" || !waited {
		t.Errorf("audited %+v (waited %v), want writer's write.put of u1 at seq %d, waited", acc, waited, resp.GetSeq())
	}

	var got prismv1.GetResponse
	if er := callAs(t, e, "reader", subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte("u1"), MinSeq: resp.GetSeq()}, &got); er != nil {
		t.Fatalf("get as reader: %v", er)
	}
	if len(got.GetItems()) != 1 || string(got.GetItems()[0].GetValue()) != "v" {
		t.Errorf("get = %v", &got)
	}
	acc, waited = aud.last(t)
	if acc.Principal.Name != "reader" || acc.Op != "read.get" || acc.Code != "OK" || waited {
		t.Errorf("audited %+v (waited %v), want reader's read.get, not waited", acc, waited)
	}
}

func TestSecurityRefusesAndWritesNothing(t *testing.T) {
	e, aud := securedEnv(t)
	put := &prismv1.PutRequest{Id: []byte("u1"), Items: []*prismv1.Item{{Key: []byte("k"), Value: []byte("v")}}}
	for _, tc := range []struct {
		name, principal, subject string
		wantCode                 prismv1.Code
		wantMsg                  string
	}{
		{"reader writes", "reader", subjects.Write(testNS, "put"), prismv1.Code_PERMISSION_DENIED, "may not write"},
		{"stranger reads", "stranger", subjects.Read(testNS, "get"), prismv1.Code_PERMISSION_DENIED, "may not read"},
		{"no identity", "", subjects.Write(testNS, "put"), prismv1.Code_PERMISSION_DENIED, "no identity"},
		// An unknown namespace is refused like a forbidden one...
		{"unknown namespace", "writer", subjects.Write("nosuch", "put"), prismv1.Code_PERMISSION_DENIED, "may not write namespace nosuch"},
		// ...except to who may see every namespace.
		{"unknown namespace, root", "root", subjects.Write("nosuch", "put"), prismv1.Code_NAMESPACE_NOT_FOUND, "not registered"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var req proto.Message = put
			if strings.Contains(tc.subject, ".read.") {
				req = &prismv1.GetRequest{Id: []byte("u1")}
			}
			er := callAs(t, e, tc.principal, tc.subject, req, &prismv1.WriteResponse{})
			if er == nil || er.GetCode() != tc.wantCode || !strings.Contains(er.GetMessage(), tc.wantMsg) {
				t.Fatalf("reply error %v, want %v containing %q", er, tc.wantCode, tc.wantMsg)
			}
			acc, _ := aud.last(t)
			if acc.Code != tc.wantCode.String() || acc.Principal.Name != tc.principal && tc.principal != "" {
				t.Errorf("audited %+v, want code %v by %q", acc, tc.wantCode, tc.principal)
			}
		})
	}
	if info, err := e.js.Stream(context.Background(), subjects.Stream(testNS)); err != nil {
		t.Fatal(err)
	} else if n := info.CachedInfo().State.Msgs; n != 0 {
		t.Errorf("stream holds %d events after refused writes, want 0", n)
	}
}

func TestSecurityFailsClosedOnAudit(t *testing.T) {
	e, aud := securedEnv(t)
	put := &prismv1.PutRequest{Id: []byte("u1"), Items: []*prismv1.Item{{Key: []byte("k"), Value: []byte("v")}}}

	aud.mu.Lock()
	aud.unhealthy = status.Newf(prismv1.Code_UNAVAILABLE, "audit stream unavailable: test")
	aud.mu.Unlock()
	er := callAs(t, e, "writer", subjects.Write(testNS, "put"), put, &prismv1.WriteResponse{})
	if er.GetCode() != prismv1.Code_UNAVAILABLE || !strings.Contains(er.GetMessage(), "audit") {
		t.Fatalf("write while the audit is unhealthy: %v, want UNAVAILABLE naming the audit", er)
	}
	if info, err := e.js.Stream(context.Background(), subjects.Stream(testNS)); err != nil || info.CachedInfo().State.Msgs != 0 {
		t.Fatalf("a write was stored while the audit was unhealthy (%v)", err)
	}

	// Healthy, but this write's record cannot be stored: the write is
	// not acknowledged, and the reply says it was stored.
	aud.mu.Lock()
	aud.unhealthy, aud.fail = nil, errors.New("audit publish failed")
	aud.mu.Unlock()
	er = callAs(t, e, "writer", subjects.Write(testNS, "put"), put, &prismv1.WriteResponse{})
	if er.GetCode() != prismv1.Code_UNAVAILABLE || !strings.Contains(er.GetMessage(), "was stored but its audit record was not") || er.GetSeq() != 1 {
		t.Fatalf("write whose audit failed: %v, want UNAVAILABLE with seq 1", er)
	}
	// A read whose record cannot be kept is not answered.
	var got prismv1.GetResponse
	er = callAs(t, e, "reader", subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte("u1"), MinSeq: 1}, &got)
	if er.GetCode() != prismv1.Code_UNAVAILABLE || len(got.GetItems()) != 0 {
		t.Fatalf("read whose audit failed: %v (items %v), want UNAVAILABLE and no data", er, got.GetItems())
	}
}

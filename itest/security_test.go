package itest

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.yaml.in/yaml/v3"

	"github.com/prism-data/prism/auth/audit"
	"github.com/prism-data/prism/auth/authn"
	"github.com/prism-data/prism/auth/authn/authntest"
	"github.com/prism-data/prism/auth/devinit"
	"github.com/prism-data/prism/internal/natsconn"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/node"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// secured is a Prism with authentication on, started from what prism
// auth init writes, with an OIDC issuer added to its auth.yaml.
type secured struct {
	n      *node.Node
	res    *devinit.Result
	issuer *authntest.Issuer
	key    authntest.Key
	svc    *nats.Conn // a PRISM service user: JetStream, the audit
}

// ordersAccess is the policy of namespace orders in these tests.
var ordersAccess = namespaces.Access{
	Write:     namespaces.NewNames("app"),
	Read:      namespaces.NewNames("app", "group:analysts"),
	Subscribe: namespaces.NewNames("app"),
	Admin:     namespaces.NewNames("admin"),
}

func startSecured(t *testing.T) *secured {
	t.Helper()
	dir := t.TempDir()
	res, err := devinit.Init(filepath.Join(dir, "auth"), devinit.Options{Users: []devinit.User{
		{Name: "admin", Groups: []string{"admins"}}, {Name: "app"}, {Name: "stranger"},
	}})
	if err != nil {
		t.Fatalf("auth init: %v", err)
	}
	iss, key := authntest.NewIssuer(t)
	// Add the OIDC issuer to the written auth.yaml.
	var f devinit.File
	b, err := os.ReadFile(res.AuthConfig)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &f); err != nil {
		t.Fatal(err)
	}
	f.Authn.OIDC = []authn.OIDCConfig{{Issuer: iss.URL, Audience: "prism", CAFile: iss.CAFile, Revoked: []string{"leaked"}}}
	if b, err = yaml.Marshal(f); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(res.AuthConfig, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ns := namespaces.Namespace{Name: "orders", Abstraction: "keyvalue", Backend: "sqlite", Consistency: "strong", Access: ordersAccess, PublishChanges: true}
	other := namespaces.Namespace{Name: "payroll", Abstraction: "keyvalue", Backend: "sqlite", Consistency: "strong"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	n, err := node.Start(ctx, node.Config{DataDir: dir, AuthConfig: res.AuthConfig, DrainTimeout: 5 * time.Second, HTTPListen: "127.0.0.1:0"},
		nil, node.Seed{Namespaces: []namespaces.Namespace{ns, other}, By: "test"})
	if err != nil {
		t.Fatalf("start: %v", err)
	}
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	s := &secured{n: n, res: res, issuer: iss, key: key}
	s.svc = s.connect(t, natsconn.Options{NKey: res.ServiceSeed})
	return s
}

// connect connects to the node's listener with o's credentials (TLS
// verified against the development CA).
func (s *secured) connect(t *testing.T, o natsconn.Options) *nats.Conn {
	t.Helper()
	nc, err := s.dial(o)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

func (s *secured) dial(o natsconn.Options) (*nats.Conn, error) {
	o.URL, o.TLSCA = s.n.URL(), s.res.CACert
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	violations := make(chan string, 16)
	nc, err := o.Connect(ctx, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		if errors.Is(err, nats.ErrPermissionViolation) {
			select {
			case violations <- err.Error():
			default:
			}
		}
	}))
	if err == nil {
		refusals.Store(nc, violations)
	}
	return nc, err
}

// refusals holds each connection's permission violations, as the server
// reports them, so that call sees a refusal at once rather than time out.
var refusals sync.Map // *nats.Conn → chan string

// user connects as the development user name, by its certificate.
func (s *secured) user(t *testing.T, name string) *nats.Conn {
	t.Helper()
	for _, u := range s.res.Users {
		if u.Name == name {
			return s.connect(t, natsconn.Options{TLSCert: u.Cert, TLSKey: u.Key})
		}
	}
	t.Fatalf("no user %s", name)
	return nil
}

// call sends a JSON request and returns the error reply's code ("" for
// success) and, for a write, its sequence. A request the server refused
// (no permission to publish it) comes back as errRefused.
func call(t *testing.T, nc *nats.Conn, subject, body string, hdr nats.Header) (string, uint64) {
	t.Helper()
	m := nats.NewMsg(subject)
	m.Data = []byte(body)
	for k, v := range hdr {
		m.Header[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if ch, ok := refusals.Load(nc); ok {
		go func() {
			for {
				select {
				case v := <-ch.(chan string):
					if strings.Contains(v, `"`+subject+`"`) {
						cancel()
						return
					}
				case <-ctx.Done():
					return
				}
			}
		}()
	}
	reply, err := nc.RequestMsgWithContext(ctx, m)
	if errors.Is(err, context.Canceled) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) {
		return errRefused, 0
	}
	if err != nil {
		t.Fatalf("request %s: %v", subject, err)
	}
	if code := reply.Header.Get(subjects.HeaderErrorCode); code != "" {
		return code, 0
	}
	var w struct {
		Seq uint64 `json:"seq,string"`
	}
	_ = json.Unmarshal(reply.Data, &w)
	return "", w.Seq
}

const errRefused = "refused by the server"

const putBody = `{"id":"b3JkZXIx","items":[{"key":"c3RhdHVz","value":"cGFpZA=="}]}` // order1 status=paid

func TestSecurityRolesEndToEnd(t *testing.T) {
	s := startSecured(t)
	app, stranger, admin := s.user(t, "app"), s.user(t, "stranger"), s.user(t, "admin")
	put, get := subjects.Write("orders", "put"), subjects.Read("orders", "get")

	// Allowed: app writes and reads its namespace; admin (a global admin)
	// reads any.
	code, seq := call(t, app, put, putBody, nil)
	if code != "" || seq == 0 {
		t.Fatalf("app put: code %q seq %d", code, seq)
	}
	if code, _ := call(t, app, get, `{"id":"b3JkZXIx"}`, nil); code != "" {
		t.Fatalf("app get: %s", code)
	}
	if code, _ := call(t, admin, subjects.Read("payroll", "scan"), `{}`, nil); code != "" {
		t.Fatalf("admin scan payroll: %s", code)
	}

	// Refused by the server: what the permissions do not allow never
	// reaches Prism.
	for _, tc := range []struct {
		name    string
		nc      *nats.Conn
		subject string
	}{
		{"stranger writes orders", stranger, put},
		{"stranger reads orders", stranger, get},
		{"app writes payroll", app, subjects.Write("payroll", "put")},
		{"app reads payroll", app, subjects.Read("payroll", "get")},
		{"app administers", app, subjects.Admin(namespaces.AdminDelete)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, _ := call(t, tc.nc, tc.subject, putBody, nil); code != errRefused {
				t.Fatalf("got %q, want the server to refuse it", code)
			}
		})
	}
	// Publishing straight onto the events subjects, or reading a stream
	// through the JetStream API, is refused: APP has no JetStream.
	if err := app.Publish(subjects.KeyValueEvent("orders", []byte("order1")), []byte("forged")); err != nil {
		t.Fatal(err)
	}
	if err := app.Flush(); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(app)
	if err != nil {
		t.Fatal(err)
	}
	short := func() context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		t.Cleanup(cancel)
		return ctx
	}
	if _, err := js.Stream(short(), subjects.Stream("orders")); err == nil {
		t.Fatal("app reached the orders stream through the JetStream API")
	}
	if _, err := js.OrderedConsumer(short(), subjects.Stream("payroll"), jetstream.OrderedConsumerConfig{}); err == nil {
		t.Fatal("app created a consumer on the payroll stream")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	sjs, err := jetstream.New(s.svc)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sjs.Stream(ctx, subjects.Stream("orders"))
	if err != nil {
		t.Fatal(err)
	}
	if got := st.CachedInfo().State.Msgs; got != 1 {
		t.Errorf("orders stream holds %d events, want 1 (the refused and forged writes stored nothing)", got)
	}
	ev, err := st.GetMsg(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.Header.Get(subjects.HeaderPrincipal); got != "app" {
		t.Errorf("event principal %q, want app", got)
	}
}

func TestSecurityIdentityCannotBeSpoofed(t *testing.T) {
	s := startSecured(t)
	app := s.user(t, "app")
	forged := nats.Header{subjects.HeaderRequestInfo: []string{`{"acc":"APP","user":"{\"n\":\"admin\",\"g\":[\"admins\"],\"v\":\"tls\"}"}`}}
	code, seq := call(t, app, subjects.Write("orders", "put"), putBody, forged)
	if code != "" {
		t.Fatalf("put: %s", code)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	sjs, _ := jetstream.New(s.svc)
	st, err := sjs.Stream(ctx, subjects.Stream("orders"))
	if err != nil {
		t.Fatal(err)
	}
	ev, err := st.GetMsg(ctx, seq)
	if err != nil {
		t.Fatal(err)
	}
	if got := ev.Header.Get(subjects.HeaderPrincipal); got != "app" {
		t.Fatalf("a forged Nats-Request-Info made the write %q's, want app's", got)
	}
	// The forged admin identity does not open payroll either.
	if code, _ := call(t, app, subjects.Write("payroll", "put"), putBody, forged); code != errRefused {
		t.Fatalf("forged admin write on payroll: %q, want refused", code)
	}
}

func TestSecurityLivePolicyAndAudit(t *testing.T) {
	s := startSecured(t)
	app, admin := s.user(t, "app"), s.user(t, "admin")
	ac := namespaces.NewAdminClient(admin, 10*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()

	// did is every access to orders the test makes, as the audit should
	// record it: principal, operation, outcome. The first is app's
	// connection, which may follow orders' change fan-out.
	did := []string{"app changes.grant OK"}
	code, _ := call(t, app, subjects.Write("orders", "put"), putBody, nil)
	if code != "" {
		t.Fatalf("put: %s", code)
	}
	did = append(did, "app write.put OK")
	// Narrow the policy live: app keeps its connection (and its server
	// permissions), the gateway refuses at once.
	cur, err := ac.Get(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	did = append(did, "admin admin.ns.get OK")
	ns := cur.Namespace
	ns.Access.Write = namespaces.Names{}
	if _, err := ac.Apply(ctx, ns, cur.Revision, "ignored"); err != nil {
		t.Fatalf("apply: %v", err)
	}
	did = append(did, "admin admin.ns.apply OK")
	deadline := time.Now().Add(10 * time.Second)
	for {
		code, _ := call(t, app, subjects.Write("orders", "put"), putBody, nil)
		if code == "" {
			did = append(did, "app write.put OK") // the policy not yet followed
		} else {
			did = append(did, "app write.put "+code)
		}
		if code == prismv1.Code_PERMISSION_DENIED.String() {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("write after the policy dropped app: %q, want PERMISSION_DENIED", code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	// app may not administer payroll, nor see it: the admin API refuses
	// (the server lets app send only the read-only admin requests).
	short, cancelShort := context.WithTimeout(ctx, 3*time.Second)
	defer cancelShort()
	appAdmin := namespaces.NewAdminClient(app, 3*time.Second)
	if _, err := appAdmin.Get(short, "payroll"); err == nil || !strings.Contains(err.Error(), "PERMISSION_DENIED") {
		t.Fatalf("app read payroll's spec (%v), want PERMISSION_DENIED", err)
	}
	// app may see the namespaces it has a permission on, and only those.
	l, err := appAdmin.List(ctx)
	if err != nil || len(l.Namespaces) != 1 || l.Namespaces[0].Namespace.Name != "orders" {
		t.Fatalf("app's ns list = %+v, %v; want orders alone", l.Namespaces, err)
	}

	// The audit has the accesses, one to one and in order, with who and
	// the outcome, and dropped none.
	var got []string
	sjs, _ := jetstream.New(s.svc)
	if err := audit.List(ctx, sjs, audit.Filter{Namespace: "orders"}, func(r audit.Record) error {
		got = append(got, r.Principal.Name+" "+r.Op+" "+r.Code)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if strings.Join(got, "\n") != strings.Join(did, "\n") {
		t.Errorf("audit of orders:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(did, "\n"))
	}
	if n := nodeMetric(t, s.n, "prism_audit_dropped_total"); n != 0 {
		t.Errorf("prism_audit_dropped_total = %v, want 0", n)
	}
	reg, err := s.n.Registry().Get(ctx, "orders")
	if err != nil {
		t.Fatal(err)
	}
	if reg.AppliedBy != "admin" {
		t.Errorf("registry says applied by %q, want the authenticated admin", reg.AppliedBy)
	}
}

func TestSecurityOIDCTokens(t *testing.T) {
	s := startSecured(t)
	now := time.Now()
	token := func(claims map[string]any) string {
		base := map[string]any{"iss": s.issuer.URL, "aud": "prism", "sub": "app", "iat": now.Unix(), "exp": now.Add(time.Hour).Unix()}
		for k, v := range claims {
			base[k] = v
		}
		return authntest.SignToken(t, s.key, base)
	}
	nc := s.connect(t, natsconn.Options{Token: token(nil)})
	if code, _ := call(t, nc, subjects.Write("orders", "put"), putBody, nil); code != "" {
		t.Fatalf("put with a valid token: %s", code)
	}
	analyst := s.connect(t, natsconn.Options{Token: token(map[string]any{"sub": "ann", "groups": []string{"analysts"}})})
	if code, _ := call(t, analyst, subjects.Read("orders", "get"), `{"id":"b3JkZXIx"}`, nil); code != "" {
		t.Fatalf("analyst get: %s", code)
	}
	other := authntest.NewKey(t, "k2", "ES256")
	for name, tok := range map[string]string{
		"expired":        token(map[string]any{"exp": now.Add(-time.Minute).Unix()}),
		"wrong audience": token(map[string]any{"aud": "someone-else"}),
		"wrong issuer":   token(map[string]any{"iss": "https://elsewhere.example"}),
		"wrong key":      authntest.SignToken(t, other, map[string]any{"iss": s.issuer.URL, "aud": "prism", "sub": "app", "exp": now.Add(time.Hour).Unix()}),
		"not a jwt":      "opaque-token",
		"revoked":        token(map[string]any{"jti": "leaked"}),
	} {
		if nc, err := s.dial(natsconn.Options{Token: tok}); err == nil {
			nc.Close()
			t.Errorf("%s token: connected", name)
		}
	}
	if nc, err := s.dial(natsconn.Options{}); err == nil {
		nc.Close()
		t.Error("no credential: connected")
	}
}

func TestSecurityHTTPNeedsACertificate(t *testing.T) {
	s := startSecured(t)
	pool := x509.NewCertPool()
	caPEM, err := os.ReadFile(s.res.CACert)
	if err != nil || !pool.AppendCertsFromPEM(caPEM) {
		t.Fatalf("CA: %v", err)
	}
	get := func(certs ...tls.Certificate) (int, string, error) {
		c := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: certs}}}
		resp, err := c.Get("https://" + s.n.HTTPAddr() + "/readyz")
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), nil
	}
	if _, _, err := get(); err == nil {
		t.Fatal("/readyz answered a client without a certificate")
	}
	u := s.res.Users[0]
	cert, err := tls.LoadX509KeyPair(u.Cert, u.Key)
	if err != nil {
		t.Fatal(err)
	}
	code, body, err := get(cert)
	if err != nil || code != http.StatusOK || !strings.Contains(body, "auth: on") {
		t.Fatalf("/readyz with a certificate: %d %q %v, want 200 saying auth: on", code, body, err)
	}
}

// nodeMetric is the value of the counter or gauge name of n.
func nodeMetric(t *testing.T, n *node.Node, name string) float64 {
	t.Helper()
	mfs, err := n.Metrics().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		var sum float64
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
		return sum
	}
	t.Fatalf("no metric %s", name)
	return 0
}

func TestSecurityChangeFanOut(t *testing.T) {
	s := startSecured(t)
	app, stranger := s.user(t, "app"), s.user(t, "stranger")
	changes, err := app.SubscribeSync(subjects.Changes("orders"))
	if err != nil {
		t.Fatal(err)
	}
	if err := app.Flush(); err != nil {
		t.Fatal(err)
	}
	// stranger may not follow orders: the server refuses the subscription.
	if _, err := stranger.SubscribeSync(subjects.Changes("orders")); err != nil {
		t.Fatal(err)
	}
	_ = stranger.Flush()
	code, seq := call(t, app, subjects.Write("orders", "put"), putBody, nil)
	if code != "" {
		t.Fatalf("put: %s", code)
	}
	m, err := changes.NextMsg(5 * time.Second)
	if err != nil {
		t.Fatalf("app saw no change of its write (seq %d) on the fan-out: %v", seq, err)
	}
	if got := m.Header.Get(subjects.HeaderPrincipal); got != "app" {
		t.Errorf("the change says it was written by %q, want app", got)
	}
	if ch, ok := refusals.Load(stranger); ok {
		select {
		case v := <-ch.(chan string):
			if !strings.Contains(v, "Subscription") || !strings.Contains(v, "changes") {
				t.Errorf("stranger's refusal: %s", v)
			}
		case <-time.After(5 * time.Second):
			t.Error("the server did not refuse stranger's subscription to the changes of orders")
		}
	}
}

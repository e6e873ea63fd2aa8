package auth_test

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/subjects"
)

// waitFor bounds every wait of these tests; nothing is timed.
const waitFor = 10 * time.Second

// cred is what the test authenticator knows about a token.
type cred struct {
	p   auth.Principal
	exp time.Time
}

// tokenAuth is the test Authenticator: a token → principal map.
type tokenAuth struct {
	mu    sync.Mutex
	creds map[string]cred
	seen  []string // tokens asked about, in order
}

func (a *tokenAuth) set(token string, c cred) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.creds[token] = c
}

func (a *tokenAuth) Authenticate(_ context.Context, req *jwt.AuthorizationRequestClaims) (auth.Principal, time.Time, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	tok := req.ConnectOptions.Token
	a.seen = append(a.seen, tok)
	if c, ok := a.creds[tok]; ok {
		return c.p, c.exp, nil
	}
	// A verified client certificate: its first email SAN names the
	// principal (the way the TLS authenticator of auth/authn does).
	if req.TLS != nil && len(req.TLS.VerifiedChains) > 0 && len(req.TLS.VerifiedChains[0]) > 0 {
		blk, _ := pem.Decode([]byte(req.TLS.VerifiedChains[0][0]))
		if blk == nil {
			return auth.Principal{}, time.Time{}, errors.New("bad certificate PEM")
		}
		cert, err := x509.ParseCertificate(blk.Bytes)
		if err != nil || len(cert.EmailAddresses) == 0 {
			return auth.Principal{}, time.Time{}, errors.New("certificate without an email SAN")
		}
		return auth.Principal{Name: cert.EmailAddresses[0], Via: auth.ViaTLS}, cert.NotAfter, nil
	}
	return auth.Principal{}, time.Time{}, errors.New("unknown token")
}

// env is a NATS server configured from auth.ServerConfig, a PRISM service
// connection and a Callout answering on it.
type env struct {
	t        testing.TB
	srv      *server.Server
	cfg      auth.ServerConfig
	issuer   nkeys.KeyPair
	svcKey   nkeys.KeyPair
	svc      *nats.Conn
	callout  *auth.Callout
	authn    *tokenAuth
	policies atomic.Pointer[auth.Policies]
	reg      *prometheus.Registry
}

type envOptions struct {
	xkey bool // encrypt the callout's requests and replies
	leaf bool // open a leafnode listener
	tls  *auth.TLSFiles
	// svcCert and svcKey are the service connection's client certificate
	// when tls is set.
	svcCert, svcKey string
}

// Principals and tokens of the tests.
var (
	alice = auth.Principal{Name: "alice@example.com", Groups: []string{"writers"}, Via: auth.ViaOIDC}
	bob   = auth.Principal{Name: "bob", Via: auth.ViaTLS}
	root  = auth.Principal{Name: "root", Groups: []string{"platform"}, Via: auth.ViaOIDC}
	edge  = auth.Principal{Name: "edge-site-1", Via: auth.ViaNKey}
)

// testPolicies: alice writes and reads demo and follows it; bob only
// reads demo; the platform group administers everything.
func testPolicies() auth.Policies {
	return auth.Policies{
		Admins: []string{"group:platform"},
		Namespaces: map[string]auth.Policy{
			"demo":  {Read: []string{"group:writers", "bob"}, Write: []string{"group:writers", "edge-site-1"}, Subscribe: []string{"alice@example.com"}, Admin: []string{"alice@example.com"}},
			"other": {Write: []string{"bob"}},
		},
	}
}

func mustKey(t testing.TB, create func() (nkeys.KeyPair, error)) (nkeys.KeyPair, string) {
	t.Helper()
	kp, err := create()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return kp, pub
}

func newEnv(t testing.TB, o envOptions) *env {
	t.Helper()
	e := &env{t: t, reg: prometheus.NewRegistry(), authn: &tokenAuth{creds: map[string]cred{}}}
	var issuerPub, svcPub string
	e.issuer, issuerPub = mustKey(t, nkeys.CreateAccount)
	e.svcKey, svcPub = mustKey(t, nkeys.CreateUser)
	e.cfg = auth.ServerConfig{
		Listen:       "127.0.0.1:-1",
		StoreDir:     t.TempDir(),
		IssuerPub:    issuerPub,
		ServiceNKeys: []string{svcPub},
	}
	var xkey nkeys.KeyPair
	if o.xkey {
		xkey, e.cfg.XKeyPub = mustKey(t, nkeys.CreateCurveKeys)
	}
	if o.leaf {
		e.cfg.LeafListen = "127.0.0.1:-1"
	}
	e.cfg.TLS = o.tls
	e.srv = startServer(t, e.cfg)

	var err error
	svcOpts := []nats.Option{nats.Nkey(svcPub, e.svcKey.Sign), nats.Name("prism-test-service")}
	if o.tls != nil {
		// Prism's processes present a certificate too when the listener
		// verifies them.
		svcOpts = append(svcOpts, nats.ClientCert(o.svcCert, o.svcKey), nats.RootCAs(o.tls.CA))
	}
	e.svc, err = nats.Connect(e.srv.ClientURL(), svcOpts...)
	if err != nil {
		t.Fatalf("connect the PRISM service user: %v", err)
	}
	t.Cleanup(e.svc.Close)

	ps := testPolicies()
	e.policies.Store(&ps)
	e.callout, err = auth.NewCallout(e.svc, auth.CalloutConfig{
		Issuer:        e.issuer,
		XKey:          xkey,
		Authenticator: e.authn,
		Policies:      func() auth.Policies { return *e.policies.Load() },
		Logger:        slog.New(slog.NewTextHandler(io.Discard, nil)),
		Registerer:    e.reg,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.callout.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := e.callout.Close(); err != nil {
			t.Errorf("close the callout: %v", err)
		}
	})
	for tok, p := range map[string]auth.Principal{"alice-token": alice, "bob-token": bob, "root-token": root, "edge-token": edge} {
		e.authn.set(tok, cred{p: p})
	}
	return e
}

// startServer starts an embedded server configured by cfg.Apply.
func startServer(t testing.TB, cfg auth.ServerConfig) *server.Server {
	t.Helper()
	opts := &server.Options{}
	if err := cfg.Apply(opts); err != nil {
		t.Fatalf("apply the server configuration: %v", err)
	}
	opts.NoLog, opts.NoSigs = true, true
	return runServer(t, opts)
}

func runServer(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	s, err := server.NewServer(opts)
	if err != nil {
		t.Fatalf("new server: %v", err)
	}
	go s.Start()
	if !s.ReadyForConnections(waitFor) {
		s.Shutdown()
		t.Fatal("the server did not become ready")
	}
	t.Cleanup(func() { s.Shutdown(); s.WaitForShutdown() })
	return s
}

// client is an application connection and the asynchronous errors the
// server sent it.
type client struct {
	*nats.Conn
	errs chan error
}

// connect opens an application connection with token, using the inbox
// prefix of principal name.
func (e *env) connect(token, name string, opts ...nats.Option) (*client, error) {
	return connectURL(e.t, e.srv.ClientURL(), token, name, opts...)
}

func connectURL(t testing.TB, url, token, name string, opts ...nats.Option) (*client, error) {
	c := &client{errs: make(chan error, 16)}
	base := []nats.Option{
		nats.Token(token),
		nats.CustomInboxPrefix(subjects.InboxPrefix(name)),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			select {
			case c.errs <- err:
			default:
			}
		}),
	}
	nc, err := nats.Connect(url, append(base, opts...)...)
	if err != nil {
		return nil, err
	}
	t.Cleanup(nc.Close)
	c.Conn = nc
	return c, nil
}

func (e *env) mustConnect(token, name string, opts ...nats.Option) *client {
	e.t.Helper()
	c, err := e.connect(token, name, opts...)
	if err != nil {
		e.t.Fatalf("connect with %s: %v", token, err)
	}
	return c
}

// wantViolation waits for the server's permissions violation naming
// subject on c.
func wantViolation(t testing.TB, c *client, kind, subject string) {
	t.Helper()
	want := strings.ToLower(fmt.Sprintf("permissions violation for %s to %q", kind, subject))
	deadline := time.After(waitFor)
	for {
		select {
		case err := <-c.errs:
			if errors.Is(err, nats.ErrPermissionViolation) && strings.Contains(strings.ToLower(err.Error()), want) {
				return
			}
		case <-deadline:
			t.Fatalf("no %s", want)
		}
	}
}

// respondInfo answers requests on subject in PRISM with the
// Nats-Request-Info header they arrived with, and counts them.
func (e *env) respondInfo(subject string) *atomic.Int64 {
	e.t.Helper()
	var n atomic.Int64
	sub, err := e.svc.Subscribe(subject, func(m *nats.Msg) {
		n.Add(1)
		_ = m.Respond([]byte(m.Header.Get(subjects.HeaderRequestInfo)))
	})
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { _ = sub.Unsubscribe() })
	if err := e.svc.Flush(); err != nil {
		e.t.Fatal(err)
	}
	return &n
}

// calloutCount is prism_auth_callout_total{result}.
func (e *env) calloutCount(result string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "prism_auth_callout_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "result" && l.GetValue() == result {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}

// waitCount is prism_auth_callout_total{result} once it reaches want, or
// after waitFor: the callout counts a request once it has replied, which
// may be after the client's connect returned.
func (e *env) waitCount(result string, want float64) float64 {
	e.t.Helper()
	deadline := time.Now().Add(waitFor)
	for e.calloutCount(result) < want && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	return e.calloutCount(result)
}

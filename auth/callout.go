package auth

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-data/prism/subjects"
)

// CalloutQueue is the queue group of the callout's subscription: several
// Prism processes share the authorization requests.
const CalloutQueue = "prism-auth-callout"

// Defaults of CalloutConfig.
const (
	// DefaultCalloutConcurrency is how many requests a Callout
	// authenticates at once when CalloutConfig.Concurrency is 0.
	DefaultCalloutConcurrency = 32
	// calloutTimeout bounds an authentication when the request carries no
	// expiry of its own.
	calloutTimeout = 5 * time.Second
	// closeWait bounds how long Close waits for requests in flight.
	closeWait = 5 * time.Second
)

// Results of an authorization request (the result label of
// prism_auth_callout_total).
const (
	resultAllowed = "allowed" // a user JWT was issued
	resultDenied  = "denied"  // the Authenticator refused the credential
	resultError   = "error"   // a malformed request or a failure of the callout
)

// CalloutConfig configures a Callout.
type CalloutConfig struct {
	// Issuer is the account key pair (A...) whose public key is the
	// server's auth_callout issuer (ServerConfig.IssuerPub); it signs the
	// responses and the user JWTs. Required. The caller owns it (and
	// wipes it when done); the Callout drops its reference on Close.
	Issuer nkeys.KeyPair
	// XKey, if set, is the curve key pair whose public key is the server's
	// auth_callout xkey (ServerConfig.XKeyPub): requests are decrypted
	// with it and replies encrypted to the requesting server. When set,
	// unencrypted requests are refused.
	XKey nkeys.KeyPair
	// Authenticator decides who is connecting. Required.
	Authenticator Authenticator
	// Policies returns the policies now in force; it is called once per
	// connection and must be safe for concurrent use (the caller keeps the
	// view current from the namespace registry). Required.
	Policies func() Policies
	// MaxLifetime, if positive, caps the lifetime of the user JWTs issued,
	// so that a connection whose credential never expires still picks up
	// policy changes when it reconnects at least this often.
	MaxLifetime time.Duration
	// Concurrency is how many requests are authenticated at once (default
	// DefaultCalloutConcurrency).
	Concurrency int
	// Logger receives a line per request: the result, the principal or the
	// reason of a refusal, never the credential. Default slog.Default().
	Logger *slog.Logger
	// Registerer, if set, registers prism_auth_callout_total{result} and
	// prism_auth_callout_duration_seconds.
	Registerer prometheus.Registerer
	// Audit, if set, is told of every admission and refusal before the
	// server gets its answer. An admission whose Admission.Changes or
	// ChangesAll grant the change fan-out, which no later request
	// records, is refused when Audit returns an error (fail closed); the
	// error of any other is logged only, as its requests are audited one
	// by one. It must be safe for concurrent use.
	Audit func(ctx context.Context, a Admission) error
}

// Admission is what the callout decided for one connection, for the
// audit.
type Admission struct {
	// Principal is who connected; Anonymous for a refused credential.
	Principal Principal
	// Allowed says whether the connection was admitted.
	Allowed bool
	// Reason is why it was refused ("" when admitted). It names no
	// credential.
	Reason string
	// Changes are the namespaces whose change fan-out the connection may
	// subscribe to, and ChangesAll says it may subscribe to every
	// namespace's (ChangeGrants).
	Changes    []string
	ChangesAll bool
	// Latency is how long the authentication took.
	Latency time.Duration
}

// Grants reports whether a carries a grant of the change fan-out.
func (a Admission) Grants() bool { return a.ChangesAll || len(a.Changes) > 0 }

// String describes c without any key material.
func (c CalloutConfig) String() string {
	issuer := "<none>"
	if c.Issuer != nil {
		if pub, err := c.Issuer.PublicKey(); err == nil {
			issuer = pub
		}
	}
	return fmt.Sprintf("auth.CalloutConfig{Issuer: %s, XKey: %t, MaxLifetime: %s, Concurrency: %d}", issuer, c.XKey != nil, c.MaxLifetime, c.Concurrency)
}

// GoString is String, so that %#v prints no key material either.
func (c CalloutConfig) GoString() string { return c.String() }

// Callout is the auth callout service: it answers the NATS server's
// authorization requests for every connection that is not a Prism process.
// It verifies that a request is signed by a NATS server and addressed to
// its issuer, asks the Authenticator who is connecting, and replies with a
// user JWT signed by the issuer: placed in the APP account, named by the
// encoded principal (which the server then stamps on each of the
// connection's requests as the user of Nats-Request-Info), expiring with
// the credential, with the subject permissions UserPermissions derives
// from the live policies. A refused connection gets a response whose
// error the server logs.
//
// The server fixes a connection's permissions when it connects: a policy
// change reaches it when it reconnects (at the latest when its JWT expires;
// see CalloutConfig.MaxLifetime). The gateway enforces the live policy on
// every request regardless, so a revoked permission takes effect there at
// once.
type Callout struct {
	nc          *nats.Conn
	issuer      nkeys.KeyPair
	issuerPub   string
	xkey        nkeys.KeyPair
	authn       Authenticator
	policies    func() Policies
	audit       func(context.Context, Admission) error
	maxLifetime time.Duration
	log         *slog.Logger
	metrics     *calloutMetrics
	sem         chan struct{}

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu     sync.Mutex
	sub    *nats.Subscription
	closed bool

	closeOnce sync.Once
	closeErr  error
}

// NewCallout returns a Callout that answers on nc, which must be a
// connection of a PRISM user listed in the server's auth_users. It
// returns an error when nc or a required field of cfg is missing, when
// Issuer is not an account key pair with its seed, when XKey is not a
// curve key pair, or when the metrics cannot be registered.
func NewCallout(nc *nats.Conn, cfg CalloutConfig) (*Callout, error) {
	if nc == nil {
		return nil, errors.New("auth callout: nil NATS connection")
	}
	c, err := newCallout(cfg)
	if err != nil {
		return nil, err
	}
	c.nc = nc
	return c, nil
}

// newCallout is NewCallout without the connection (the tests answer
// requests directly).
func newCallout(cfg CalloutConfig) (*Callout, error) {
	if cfg.Issuer == nil {
		return nil, errors.New("auth callout: no issuer key pair")
	}
	pub, err := cfg.Issuer.PublicKey()
	if err != nil || !nkeys.IsValidPublicAccountKey(pub) {
		return nil, errors.New("auth callout: the issuer must be an account key pair (A...)")
	}
	if _, err := cfg.Issuer.Sign([]byte("probe")); err != nil {
		return nil, errors.New("auth callout: the issuer key pair has no seed: it cannot sign")
	}
	if cfg.XKey != nil {
		xpub, err := cfg.XKey.PublicKey()
		if err != nil || !nkeys.IsValidPublicCurveKey(xpub) {
			return nil, errors.New("auth callout: the xkey must be a curve key pair (X...)")
		}
	}
	if cfg.Authenticator == nil {
		return nil, errors.New("auth callout: no authenticator")
	}
	if cfg.Policies == nil {
		return nil, errors.New("auth callout: no policies function")
	}
	if cfg.MaxLifetime < 0 || cfg.Concurrency < 0 {
		return nil, errors.New("auth callout: negative MaxLifetime or Concurrency")
	}
	m, err := newCalloutMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	log := cfg.Logger
	if log == nil {
		log = slog.Default()
	}
	n := cfg.Concurrency
	if n == 0 {
		n = DefaultCalloutConcurrency
	}
	ctx, cancel := context.WithCancel(context.Background())
	return &Callout{
		issuer: cfg.Issuer, issuerPub: pub, xkey: cfg.XKey,
		authn: cfg.Authenticator, policies: cfg.Policies, audit: cfg.Audit, maxLifetime: cfg.MaxLifetime,
		log: log.With("component", "auth-callout"), metrics: m, sem: make(chan struct{}, n),
		ctx: ctx, cancel: cancel,
	}, nil
}

// Start subscribes to subjects.AuthCallout in queue group CalloutQueue and
// waits until the server has the subscription. It returns an error if the
// Callout was started before or is closed, or if subscribing fails.
func (c *Callout) Start() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return errors.New("auth callout: closed")
	}
	if c.sub != nil {
		return errors.New("auth callout: already started")
	}
	sub, err := c.nc.QueueSubscribe(subjects.AuthCallout, CalloutQueue, c.onMsg)
	if err != nil {
		return fmt.Errorf("auth callout: subscribe to %s: %w", subjects.AuthCallout, err)
	}
	if err := c.nc.Flush(); err != nil {
		_ = sub.Unsubscribe()
		return fmt.Errorf("auth callout: subscribe to %s: %w", subjects.AuthCallout, err)
	}
	c.sub = sub
	return nil
}

// Close stops taking requests, cancels the authentications in flight,
// waits for them (at most 5s) and drops the key pairs. It is idempotent:
// every call waits for the first and returns its error, an unsubscribe
// failure or the number of requests still running after the wait.
func (c *Callout) Close() error {
	c.closeOnce.Do(func() { c.closeErr = c.close() })
	return c.closeErr
}

func (c *Callout) close() error {
	c.mu.Lock()
	c.closed = true
	c.issuer, c.xkey = nil, nil
	var err error
	if c.sub != nil {
		if uerr := c.sub.Unsubscribe(); uerr != nil && !errors.Is(uerr, nats.ErrConnectionClosed) {
			err = fmt.Errorf("auth callout: unsubscribe: %w", uerr)
		}
	}
	c.mu.Unlock()
	c.cancel()
	done := make(chan struct{})
	go func() { c.wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(closeWait):
		err = errors.Join(err, fmt.Errorf("auth callout: %d requests still running after %s", len(c.sem), closeWait))
	}
	return err
}

// onMsg runs each request in a goroutine of its own, at most Concurrency
// at once: a slow Authenticator (a JWKS fetch) does not hold up the others.
func (c *Callout) onMsg(msg *nats.Msg) {
	select {
	case c.sem <- struct{}{}:
	case <-c.ctx.Done():
		return
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		<-c.sem
		return
	}
	c.wg.Add(1)
	issuer, xkey := c.issuer, c.xkey
	c.mu.Unlock()
	go func() {
		defer func() { <-c.sem; c.wg.Done() }()
		c.handle(msg, keys{issuer: issuer, xkey: xkey})
	}()
}

// keys are the key pairs one request is answered with.
type keys struct{ issuer, xkey nkeys.KeyPair }

// outcome is what became of one request, for the log and the metrics.
type outcome struct {
	result    string
	reason    string
	principal Principal
	expires   time.Time
	req       *jwt.AuthorizationRequestClaims
}

func (c *Callout) handle(msg *nats.Msg, k keys) {
	start := time.Now()
	resp, out := c.respond(c.ctx, k, msg.Data, msg.Header.Get(server.AuthRequestXKeyHeader))
	if resp != nil {
		if err := msg.Respond(resp); err != nil {
			out.result, out.reason = resultError, "send the response: "+err.Error()
		}
	}
	c.metrics.requests.WithLabelValues(out.result).Inc()
	c.metrics.duration.Observe(time.Since(start).Seconds())
	attrs := []any{"result", out.result}
	if r := out.req; r != nil {
		attrs = append(attrs, "client_host", r.ClientInformation.Host, "client_name", r.ClientInformation.Name,
			"client_kind", r.ClientInformation.Kind, "server", r.Server.Name)
	}
	switch out.result {
	case resultAllowed:
		attrs = append(attrs, "principal", out.principal.Name, "via", out.principal.Via)
		if !out.expires.IsZero() {
			attrs = append(attrs, "expires", out.expires)
		}
		c.log.Info("connection admitted", attrs...)
	case resultDenied:
		c.log.Warn("connection refused", append(attrs, "reason", out.reason)...)
	default:
		c.log.Error("authorization request failed", append(attrs, "reason", out.reason)...)
	}
}

// respond returns the reply to one authorization request (nil when the
// request cannot be answered: not decodable, so no server to address).
func (c *Callout) respond(ctx context.Context, k keys, data []byte, serverXKey string) ([]byte, outcome) {
	req, err := c.decodeRequest(k, data, serverXKey)
	if err != nil {
		return nil, outcome{result: resultError, reason: err.Error()}
	}
	out := outcome{req: req}
	refuse := func(result, reason string) ([]byte, outcome) {
		out.result, out.reason = result, reason
		resp, err := c.encodeResponse(k, req, serverXKey, "", reason)
		if err != nil {
			return nil, outcome{result: resultError, reason: err.Error(), req: req}
		}
		return resp, out
	}
	if k.xkey != nil && serverXKey == "" {
		return refuse(resultError, "the request is not encrypted but the auth callout has an xkey: set xkey in the server's auth_callout block")
	}
	actx, cancel := context.WithTimeout(ctx, requestTimeout(req))
	defer cancel()
	start := time.Now()
	p, exp, err := c.authn.Authenticate(actx, req)
	if err != nil {
		reason := truncate(err.Error(), maxReason)
		c.record(actx, Admission{Principal: Anonymous, Reason: reason, Latency: time.Since(start)})
		return refuse(resultDenied, reason)
	}
	if err := p.Validate(); err != nil {
		return refuse(resultError, "the authenticator returned an invalid principal: "+err.Error())
	}
	if p.Via == ViaService || p.Via == ViaNone {
		return refuse(resultError, fmt.Sprintf("the authenticator returned a %q principal, which no application connection may be", p.Via))
	}
	now := time.Now()
	if !exp.IsZero() && !exp.After(now) {
		return refuse(resultDenied, "the credential has expired")
	}
	if c.maxLifetime > 0 && (exp.IsZero() || exp.After(now.Add(c.maxLifetime))) {
		exp = now.Add(c.maxLifetime)
	}
	ps := c.policies()
	uc := jwt.NewUserClaims(req.UserNkey)
	uc.Audience = subjects.AppAccount
	uc.Name = EncodePrincipal(p)
	uc.Permissions = UserPermissions(p, ps)
	if !exp.IsZero() {
		uc.Expires = exp.Unix()
	}
	ujwt, err := uc.Encode(k.issuer)
	if err != nil {
		return refuse(resultError, "the auth callout could not sign the user JWT")
	}
	adm := Admission{Principal: p, Allowed: true, Latency: time.Since(start)}
	adm.Changes, adm.ChangesAll = ChangeGrants(p, ps)
	if err := c.record(actx, adm); err != nil && adm.Grants() {
		return refuse(resultError, "the audit of the connection's change fan-out grant could not be stored: "+truncate(err.Error(), maxReason))
	}
	resp, err := c.encodeResponse(k, req, serverXKey, ujwt, "")
	if err != nil {
		return nil, outcome{result: resultError, reason: err.Error(), req: req}
	}
	out.result, out.principal, out.expires = resultAllowed, p, exp
	return resp, out
}

// record hands a to the Audit hook, if any, logging its error.
func (c *Callout) record(ctx context.Context, a Admission) error {
	if c.audit == nil {
		return nil
	}
	err := c.audit(ctx, a)
	if err != nil {
		c.log.Error("the audit of a connection failed", "principal", a.Principal.Name, "allowed", a.Allowed, "error", err)
	}
	return err
}

// maxReason bounds the refusal reason sent to the server and logged.
const maxReason = 512

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return strings.ToValidUTF8(s[:n], "") + "…"
}

// requestTimeout is how long the Authenticator may take: until the server
// stops waiting (the request's expiry), else calloutTimeout.
func requestTimeout(req *jwt.AuthorizationRequestClaims) time.Duration {
	if req.Expires > 0 {
		if d := time.Until(time.Unix(req.Expires, 0)); d > 0 && d < calloutTimeout {
			return d
		}
	}
	return calloutTimeout
}

// decodeRequest decrypts (when the server encrypted) and verifies an
// authorization request: a JWT signed by a server key, issued by the
// server it names, for the authorization audience, addressed to this
// callout's issuer, not expired. Errors wrap ErrInvalidAuthRequest.
func (c *Callout) decodeRequest(k keys, data []byte, serverXKey string) (*jwt.AuthorizationRequestClaims, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrInvalidAuthRequest, fmt.Sprintf(format, args...))
	}
	if serverXKey != "" {
		if k.xkey == nil {
			return nil, bad("the request is encrypted but the auth callout has no xkey")
		}
		if !nkeys.IsValidPublicCurveKey(serverXKey) {
			return nil, bad("the %s header is not a curve public key", server.AuthRequestXKeyHeader)
		}
		plain, err := k.xkey.Open(data, serverXKey)
		if err != nil {
			return nil, bad("cannot decrypt the request: %v", err)
		}
		data = plain
	}
	req, err := jwt.DecodeAuthorizationRequestClaims(string(data))
	if err != nil {
		return nil, bad("not a signed authorization request: %v", err)
	}
	switch {
	case !nkeys.IsValidPublicServerKey(req.Issuer):
		return nil, bad("not signed by a NATS server key")
	case req.Server.ID != req.Issuer:
		return nil, bad("signed by a server other than the one it names")
	case req.Audience != server.AuthRequestSubject:
		return nil, bad("audience is not %s", server.AuthRequestSubject)
	case req.Subject != c.issuerPub:
		return nil, bad("addressed to another auth callout issuer")
	}
	vr := jwt.CreateValidationResults()
	req.Validate(vr)
	if vr.IsBlocking(true) {
		return nil, bad("%v", vr.Issues[0].Description)
	}
	return req, nil
}

// encodeResponse signs the response to req carrying ujwt or errText, and
// encrypts it to the server when the request was encrypted.
func (c *Callout) encodeResponse(k keys, req *jwt.AuthorizationRequestClaims, serverXKey, ujwt, errText string) ([]byte, error) {
	rc := jwt.NewAuthorizationResponseClaims(req.UserNkey)
	rc.Audience = req.Server.ID
	rc.Jwt = ujwt
	rc.Error = errText
	tok, err := rc.Encode(k.issuer)
	if err != nil {
		return nil, fmt.Errorf("sign the authorization response: %w", err)
	}
	if serverXKey == "" {
		return []byte(tok), nil
	}
	sealed, err := k.xkey.Seal([]byte(tok), serverXKey)
	if err != nil {
		return nil, fmt.Errorf("encrypt the authorization response: %w", err)
	}
	return sealed, nil
}

package authn

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/prism-data/prism/auth"
)

// Option configures New.
type Option func(*options) error

type options struct {
	now         func() time.Time
	httpTimeout time.Duration
}

// WithClock sets the clock that expiry and validity are checked against
// (time.Now by default). It returns an error from New when now is nil.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		if now == nil {
			return errors.New("authn.WithClock: nil clock")
		}
		o.now = now
		return nil
	}
}

// WithHTTPTimeout bounds each request to an OIDC issuer (discovery, JWKS);
// the default is 10s. It returns an error from New when d is not positive.
func WithHTTPTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("authn.WithHTTPTimeout: %v is not positive", d)
		}
		o.httpTimeout = d
		return nil
	}
}

// defaultSetupTimeout bounds OIDC discovery in New when ctx has no
// deadline.
const defaultSetupTimeout = 30 * time.Second

// New validates cfg and returns the authenticator chain it describes. It
// reads the CA files and, for each OIDC issuer without a JWKS URL, runs
// discovery (bounded by ctx, or 30s when ctx has no deadline). Errors wrap
// ErrInvalidConfig for a bad configuration or unreadable CA file; a
// discovery failure is returned with the issuer's URL.
//
// The chain is safe for concurrent use; it owns no goroutine that outlives
// a call, so it has no Close.
func New(ctx context.Context, cfg Config, opts ...Option) (auth.Authenticator, error) {
	o := options{now: time.Now, httpTimeout: 10 * time.Second}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, defaultSetupTimeout)
		defer cancel()
	}
	c := &chain{now: o.now}
	for i, oc := range cfg.OIDC {
		v, err := newOIDC(ctx, fmt.Sprintf("oidc[%d]", i), oc, o)
		if err != nil {
			return nil, err
		}
		c.oidc = append(c.oidc, v)
	}
	if cfg.TLS.CAFile != "" {
		v, err := newCerts(cfg.TLS, o.now)
		if err != nil {
			return nil, err
		}
		c.certs = v
	}
	if len(cfg.NKeys) > 0 {
		c.nkeys = newNKeys(cfg.NKeys)
	}
	if cfg.Creds.IssuerPub != "" {
		c.creds = newCreds(cfg.Creds, o.now)
	}
	return c, nil
}

// chain dispatches on what the client presented; see the package doc.
type chain struct {
	now   func() time.Time
	oidc  []*oidcVerifier
	certs *certAuth
	nkeys *nkeyAuth
	creds *credsAuth
}

var _ auth.Authenticator = (*chain)(nil)

// Authenticate implements auth.Authenticator.
func (c *chain) Authenticate(ctx context.Context, req *jwt.AuthorizationRequestClaims) (auth.Principal, time.Time, error) {
	if req == nil {
		return auth.Principal{}, time.Time{}, refuse("", ErrNoCredentials, "no authorization request")
	}
	co := req.ConnectOptions
	switch {
	case co.Token != "":
		if len(c.oidc) == 0 {
			return refused(refuse(auth.ViaOIDC, ErrUnsupported, "a token was presented but no OIDC issuer is configured: connect with a creds file, nkey or client certificate"))
		}
		return c.authOIDC(ctx, co.Token)
	case co.JWT != "":
		if c.creds == nil {
			return refused(refuse(auth.ViaCreds, ErrUnsupported, "a user JWT (creds file) was presented but no creds issuer is configured (creds.issuer)"))
		}
		return c.creds.authenticate(co.JWT, co.SignedNonce, req.ClientInformation.Nonce)
	case co.Nkey != "":
		if c.nkeys == nil {
			return refused(refuse(auth.ViaNKey, ErrUnsupported, "an nkey was presented but no nkey users are configured (nkeys)"))
		}
		return c.nkeys.authenticate(co.Nkey, co.SignedNonce, req.ClientInformation.Nonce)
	case req.TLS != nil && (len(req.TLS.VerifiedChains) > 0 || len(req.TLS.Certs) > 0):
		if c.certs == nil {
			return refused(refuse(auth.ViaTLS, ErrUnsupported, "a client certificate was presented but certificates are not accepted (tls.ca_file is not configured)"))
		}
		return c.certs.authenticate(req.TLS)
	case co.SignedNonce != "":
		// nats-server discards the user JWT of a CONNECT unless it runs
		// in operator mode, so a creds file arrives as a bare signature.
		return refused(refuse(auth.ViaCreds, ErrUnsupported, "a signed nonce came without a user JWT or nkey: a NATS server without an operator discards the user JWT of a creds file; connect with an nkey, client certificate or token"))
	case co.Username != "" || co.Password != "":
		return refused(refuse("", ErrUnsupported, "username/password is not accepted: connect with a token, creds file, nkey or client certificate"))
	}
	return refused(refuse("", ErrNoCredentials, "no credentials: connect with a token, creds file, nkey or client certificate"))
}

func refused(err error) (auth.Principal, time.Time, error) {
	return auth.Principal{}, time.Time{}, err
}

// verifyNonce checks that sig (base64, raw URL or standard, as the NATS
// server accepts) is pub's signature over nonce. via names the method in
// the refusal.
func verifyNonce(via, pub, sig, nonce string) error {
	if sig == "" {
		return refuse(via, ErrBadSignature, "no signed nonce: the client must sign the server's nonce with its key")
	}
	if nonce == "" {
		return refuse(via, ErrNoNonce, "the server sent the client no nonce, so its signature proves nothing: enable always_enable_nonce in the NATS server")
	}
	raw, err := base64.RawURLEncoding.DecodeString(sig)
	if err != nil {
		if raw, err = base64.StdEncoding.DecodeString(sig); err != nil {
			return refuse(via, ErrMalformed, "the signed nonce is not base64")
		}
	}
	kp, err := nkeys.FromPublicKey(pub)
	if err != nil {
		return refuse(via, ErrMalformed, "the public key is not an nkey")
	}
	if err := kp.Verify([]byte(nonce), raw); err != nil {
		return refuse(via, ErrBadSignature, "the nonce signature does not verify with key %s", pub)
	}
	return nil
}

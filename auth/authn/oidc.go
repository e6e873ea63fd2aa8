package authn

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	jose "github.com/go-jose/go-jose/v4"
	josejwt "github.com/go-jose/go-jose/v4/jwt"

	"github.com/prism-data/prism/auth"
)

// signingAlgs are the algorithms a token may be signed with: asymmetric
// only, so a token can never be "signed" with a public key used as an HMAC
// secret, nor be unsigned.
var signingAlgs = []jose.SignatureAlgorithm{
	jose.RS256, jose.RS384, jose.RS512,
	jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512,
	jose.EdDSA,
}

// oidcVerifier is one configured issuer.
type oidcVerifier struct {
	cfg      OIDCConfig
	verifier *oidc.IDTokenVerifier
}

// newOIDC builds the verifier of one issuer: an HTTP client with timeouts
// and the configured CA, then discovery or the configured JWKS URL. field
// names the issuer in errors.
func newOIDC(ctx context.Context, field string, cfg OIDCConfig, o options) (*oidcVerifier, error) {
	client, err := issuerClient(field, cfg.CAFile, o.httpTimeout)
	if err != nil {
		return nil, err
	}
	algs := make([]string, len(signingAlgs))
	for i, a := range signingAlgs {
		algs[i] = string(a)
	}
	vc := &oidc.Config{ClientID: cfg.Audience, SupportedSigningAlgs: algs, Now: o.now}
	// The key set keeps the context for every later fetch: it must carry
	// the client but not the caller's cancellation or deadline.
	keyCtx := oidc.ClientContext(context.WithoutCancel(ctx), client)
	v := &oidcVerifier{cfg: cfg}
	if cfg.JWKSURL != "" {
		v.verifier = oidc.NewVerifier(cfg.Issuer, oidc.NewRemoteKeySet(keyCtx, cfg.JWKSURL), vc)
		return v, nil
	}
	p, err := oidc.NewProvider(oidc.ClientContext(ctx, client), cfg.Issuer)
	if err != nil {
		return nil, fmt.Errorf("%s: OIDC discovery at %s: %w", field, cfg.Issuer, err)
	}
	v.verifier = p.VerifierContext(keyCtx, vc)
	return v, nil
}

// issuerClient is the HTTP client for an issuer: bounded requests, TLS 1.2
// at least, the CA of caFile when set.
func issuerClient(field, caFile string, timeout time.Duration) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12}
	tr.TLSHandshakeTimeout = timeout
	tr.ResponseHeaderTimeout = timeout
	if caFile != "" {
		pool, err := loadPool(caFile)
		if err != nil {
			return nil, invalidConfig(field+".ca_file", "%v", err)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr, Timeout: timeout}, nil
}

// authOIDC picks the issuer of token and verifies it with that issuer.
func (c *chain) authOIDC(ctx context.Context, token string) (auth.Principal, time.Time, error) {
	if len(token) > maxJWTLen {
		return refused(refuse(auth.ViaOIDC, ErrMalformed, "the token is longer than %d bytes", maxJWTLen))
	}
	v := c.oidc[0]
	if len(c.oidc) > 1 {
		iss, err := unverifiedIssuer(token)
		if err != nil {
			return refused(err)
		}
		v = nil
		for _, o := range c.oidc {
			if o.cfg.Issuer == iss {
				v = o
				break
			}
		}
		if v == nil {
			return refused(refuse(auth.ViaOIDC, ErrWrongIssuer, "the token's issuer is not one of the configured OIDC issuers"))
		}
	}
	return v.authenticate(ctx, token)
}

// unverifiedIssuer reads the iss claim of token without verifying it, only
// to pick the verifier that will.
func unverifiedIssuer(token string) (string, error) {
	t, err := josejwt.ParseSigned(token, signingAlgs)
	if err != nil {
		return "", refuse(auth.ViaOIDC, ErrMalformed, "the token is not a JWT signed with an asymmetric algorithm")
	}
	var cl struct {
		Issuer string `json:"iss"`
	}
	if err := t.UnsafeClaimsWithoutVerification(&cl); err != nil {
		return "", refuse(auth.ViaOIDC, ErrMalformed, "the token's claims are not a JSON object with a string iss")
	}
	return cl.Issuer, nil
}

// authenticate verifies token (signature, issuer, audience, expiry, not
// before) and maps its claims to a principal that expires with the token.
func (v *oidcVerifier) authenticate(ctx context.Context, token string) (auth.Principal, time.Time, error) {
	idt, err := v.verifier.Verify(ctx, token)
	if err != nil {
		return refused(v.classify(ctx, err))
	}
	var payload json.RawMessage
	if err := idt.Claims(&payload); err != nil {
		return refused(refuse(auth.ViaOIDC, ErrMalformed, "the token's claims are not JSON"))
	}
	name, groups, err := principalFromClaims(payload, v.cfg.usernameClaim(), v.cfg.groupsClaim())
	if err != nil {
		return refused(err)
	}
	if len(v.cfg.Revoked) > 0 {
		var id struct {
			JTI string `json:"jti"`
		}
		if json.Unmarshal(payload, &id) == nil && id.JTI != "" && slices.Contains(v.cfg.Revoked, id.JTI) {
			return refused(refuse(auth.ViaOIDC, ErrRevoked, "token %s of %s is revoked (oidc revoked)", id.JTI, name))
		}
	}
	return auth.Principal{Name: name, Groups: groups, Via: auth.ViaOIDC}, idt.Expiry, nil
}

// classify maps a go-oidc verification error to a refusal. go-oidc has one
// typed error (expiry); the others are told apart by their fixed prefixes,
// and each is covered by a test so a library change shows. The library's
// message is not passed on: it may quote claims of the token.
func (v *oidcVerifier) classify(ctx context.Context, err error) error {
	var exp *oidc.TokenExpiredError
	msg := err.Error()
	switch {
	case errors.As(err, &exp):
		return refuse(auth.ViaOIDC, ErrExpired, "the token expired at %s", exp.Expiry.UTC().Format(time.RFC3339))
	case strings.HasPrefix(msg, "oidc: expected audience"):
		return refuse(auth.ViaOIDC, ErrWrongAudience, "the token's audience does not include %q (oidc audience)", v.cfg.Audience)
	case strings.HasPrefix(msg, "oidc: id token issued by a different provider"):
		return refuse(auth.ViaOIDC, ErrWrongIssuer, "the token was not issued by %s", v.cfg.Issuer)
	case strings.HasPrefix(msg, "oidc: current time") && strings.Contains(msg, "nbf"):
		return refuse(auth.ViaOIDC, ErrNotYetValid, "the token is not valid yet (nbf)")
	case strings.HasPrefix(msg, "oidc: malformed jwt"):
		return refuse(auth.ViaOIDC, ErrMalformed, "the token is not a JWT signed with an asymmetric algorithm")
	case strings.HasPrefix(msg, "failed to verify signature: fetching keys"):
		if ctx.Err() != nil {
			return unavailable(auth.ViaOIDC, ctx.Err(), "the request ended before the keys of %s were fetched; retry", v.cfg.Issuer)
		}
		// The cause is about the JWKS endpoint, never the token.
		return unavailable(auth.ViaOIDC, errors.New(msg), "the keys of %s could not be fetched; retry", v.cfg.Issuer)
	case strings.HasPrefix(msg, "failed to verify signature"):
		return refuse(auth.ViaOIDC, ErrBadSignature, "the token's signature does not verify with any key of %s", v.cfg.Issuer)
	}
	return refuse(auth.ViaOIDC, ErrMalformed, "the token was refused by the verifier of %s", v.cfg.Issuer)
}

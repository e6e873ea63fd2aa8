package authn_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http/httptest"
	"runtime"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/auth/authn"
	"github.com/prism-data/prism/auth/authn/authntest"
	"github.com/prism-data/prism/status"
)

func claimsFor(iss *authntest.Issuer, now time.Time, extra map[string]any) map[string]any {
	c := map[string]any{
		"iss": iss.URL,
		"sub": "alice",
		"aud": "prism",
		"iat": now.Add(-time.Minute).Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
	for k, v := range extra {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

func TestOIDC(t *testing.T) {
	iss, k1 := authntest.NewIssuer(t)
	other := authntest.NewKey(t, "k1", jose.ES256) // same kid, not published
	rsaKey := authntest.NewKey(t, "r1", jose.RS256)
	iss.Publish(rsaKey)
	now := time.Now().Truncate(time.Second)
	exp := now.Add(time.Hour)

	for _, mode := range []string{"discovery", "jwks_url"} {
		cfg := authn.OIDCConfig{Issuer: iss.URL, Audience: "prism", CAFile: iss.CAFile, Revoked: []string{"leaked-1"}}
		if mode == "jwks_url" {
			cfg.JWKSURL = iss.JWKSURL()
		}
		a := newChain(t, authn.Config{OIDC: []authn.OIDCConfig{cfg}}, now)
		tests := []struct {
			name  string
			key   authntest.Key
			extra map[string]any
			want  want
		}{
			{name: "valid with groups", key: k1, extra: map[string]any{"groups": []string{"admins", "ops"}},
				want: want{name: "alice", groups: []string{"admins", "ops"}, via: auth.ViaOIDC, exp: exp}},
			{name: "valid RS256 without groups", key: rsaKey,
				want: want{name: "alice", via: auth.ViaOIDC, exp: exp}},
			{name: "groups as one string", key: k1, extra: map[string]any{"groups": "admins"},
				want: want{name: "alice", groups: []string{"admins"}, via: auth.ViaOIDC, exp: exp}},
			{name: "audience list containing prism", key: k1, extra: map[string]any{"aud": []string{"other", "prism"}},
				want: want{name: "alice", via: auth.ViaOIDC, exp: exp}},
			{name: "expired", key: k1, extra: map[string]any{"exp": now.Add(-time.Second).Unix()}, want: want{err: authn.ErrExpired}},
			{name: "no exp", key: k1, extra: map[string]any{"exp": nil}, want: want{err: authn.ErrExpired}},
			{name: "not yet valid", key: k1, extra: map[string]any{"nbf": now.Add(time.Hour).Unix()}, want: want{err: authn.ErrNotYetValid}},
			{name: "wrong signature", key: other, want: want{err: authn.ErrBadSignature}},
			{name: "wrong audience", key: k1, extra: map[string]any{"aud": "someone-else"}, want: want{err: authn.ErrWrongAudience}},
			{name: "wrong issuer", key: k1, extra: map[string]any{"iss": "https://evil.example"}, want: want{err: authn.ErrWrongIssuer}},
			{name: "no sub", key: k1, extra: map[string]any{"sub": nil}, want: want{err: authn.ErrBadIdentity}},
			{name: "sub posing as a group", key: k1, extra: map[string]any{"sub": "group:admins"}, want: want{err: authn.ErrBadIdentity}},
			{name: "groups of numbers", key: k1, extra: map[string]any{"groups": []int{1}}, want: want{err: authn.ErrBadIdentity}},
			{name: "revoked token id", key: k1, extra: map[string]any{"jti": "leaked-1"}, want: want{err: authn.ErrRevoked}},
			{name: "another token id", key: k1, extra: map[string]any{"jti": "fine-2"}, want: want{name: "alice", via: auth.ViaOIDC, exp: exp}},
		}
		for _, tt := range tests {
			t.Run(mode+"/"+tt.name, func(t *testing.T) {
				tok := authntest.SignToken(t, tt.key, claimsFor(iss, now, tt.extra))
				check(t, a, authntest.Token(tok), tt.want, tok)
			})
		}
		t.Run(mode+"/not a JWT", func(t *testing.T) {
			check(t, a, authntest.Token("not-a-jwt-secret-token"), want{err: authn.ErrMalformed}, "not-a-jwt-secret-token")
		})
		t.Run(mode+"/HMAC with the public key", func(t *testing.T) {
			// Algorithm confusion: an HS256 token must never be accepted.
			signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, (&jose.SignerOptions{}).WithHeader("kid", "k1"))
			if err != nil {
				t.Fatal(err)
			}
			payload, err := json.Marshal(claimsFor(iss, now, nil))
			if err != nil {
				t.Fatal(err)
			}
			jws, err := signer.Sign(payload)
			if err != nil {
				t.Fatal(err)
			}
			tok, _ := jws.CompactSerialize()
			check(t, a, authntest.Token(tok), want{err: authn.ErrMalformed}, tok)
		})
	}
}

func TestOIDCClaimMapping(t *testing.T) {
	iss, k1 := authntest.NewIssuer(t)
	now := time.Now().Truncate(time.Second)
	a := newChain(t, authn.Config{OIDC: []authn.OIDCConfig{{
		Issuer: iss.URL, Audience: "prism", CAFile: iss.CAFile,
		UsernameClaim: "preferred_username", GroupsClaim: "realm_access.roles",
	}}}, now)
	tok := authntest.SignToken(t, k1, claimsFor(iss, now, map[string]any{
		"preferred_username": "alice@example.com",
		"realm_access":       map[string]any{"roles": []string{"writers"}},
	}))
	check(t, a, authntest.Token(tok), want{name: "alice@example.com", groups: []string{"writers"}, via: auth.ViaOIDC, exp: now.Add(time.Hour)})

	tok = authntest.SignToken(t, k1, claimsFor(iss, now, nil))
	check(t, a, authntest.Token(tok), want{err: authn.ErrBadIdentity}, tok)
}

func TestOIDCKeyRotation(t *testing.T) {
	iss, k1 := authntest.NewIssuer(t)
	now := time.Now().Truncate(time.Second)
	a := newChain(t, authn.Config{OIDC: []authn.OIDCConfig{{Issuer: iss.URL, Audience: "prism", CAFile: iss.CAFile}}}, now)
	w := want{name: "alice", via: auth.ViaOIDC, exp: now.Add(time.Hour)}

	check(t, a, authntest.Token(authntest.SignToken(t, k1, claimsFor(iss, now, nil))), w)
	before := iss.Fetches()
	check(t, a, authntest.Token(authntest.SignToken(t, k1, claimsFor(iss, now, nil))), w)
	if got := iss.Fetches(); got != before {
		t.Fatalf("a known key id was fetched again: %d fetches, want %d", got, before)
	}

	k2 := authntest.NewKey(t, "k2", jose.ES256)
	tok2 := authntest.SignToken(t, k2, claimsFor(iss, now, nil))
	check(t, a, authntest.Token(tok2), want{err: authn.ErrBadSignature}, tok2)

	iss.Publish(k2) // the issuer rotates: same authenticator, no restart
	// go-oidc releases the waiters of a JWKS fetch just before it forgets
	// the fetch, so a call right after one may get that fetch's keys; only
	// a refusal after a fresh fetch of the rotated JWKS is a failure.
	for i := 0; ; i++ {
		fetches := iss.Fetches()
		_, _, err := a.Authenticate(context.Background(), authntest.Token(tok2))
		if err == nil {
			break
		}
		if iss.Fetches() > fetches || i == 1000 {
			t.Fatalf("the rotated key is refused after %d tries: %v", i+1, err)
		}
		runtime.Gosched()
	}
	check(t, a, authntest.Token(tok2), w)
	check(t, a, authntest.Token(authntest.SignToken(t, k1, claimsFor(iss, now, nil))), w)
}

func TestOIDCMultipleIssuers(t *testing.T) {
	iss1, k1 := authntest.NewIssuer(t)
	iss2, k2 := authntest.NewIssuer(t)
	now := time.Now().Truncate(time.Second)
	a := newChain(t, authn.Config{OIDC: []authn.OIDCConfig{
		{Issuer: iss1.URL, Audience: "prism", CAFile: iss1.CAFile},
		{Issuer: iss2.URL, Audience: "prism", CAFile: iss2.CAFile, UsernameClaim: "email"},
	}}, now)
	w := want{name: "alice", via: auth.ViaOIDC, exp: now.Add(time.Hour)}
	check(t, a, authntest.Token(authntest.SignToken(t, k1, claimsFor(iss1, now, nil))), w)
	w.name = "a@example.com"
	check(t, a, authntest.Token(authntest.SignToken(t, k2, claimsFor(iss2, now, map[string]any{"email": "a@example.com"}))), w)
	// iss2's key does not sign for iss1.
	check(t, a, authntest.Token(authntest.SignToken(t, k2, claimsFor(iss1, now, nil))), want{err: authn.ErrBadSignature})
	check(t, a, authntest.Token(authntest.SignToken(t, k1, claimsFor(iss1, now, map[string]any{"iss": "https://other.example"}))), want{err: authn.ErrWrongIssuer})
}

func TestOIDCKeysUnavailable(t *testing.T) {
	iss, k1 := authntest.NewIssuer(t)
	down := httptest.NewTLSServer(nil)
	jwks := down.URL + "/jwks"
	down.Close()
	now := time.Now().Truncate(time.Second)
	a := newChain(t, authn.Config{OIDC: []authn.OIDCConfig{{Issuer: iss.URL, Audience: "prism", JWKSURL: jwks}}}, now)
	tok := authntest.SignToken(t, k1, claimsFor(iss, now, nil))
	_, _, err := a.Authenticate(context.Background(), authntest.Token(tok))
	if !errors.Is(err, authn.ErrKeysUnavailable) || !errors.Is(err, status.ErrUnavailable) {
		t.Fatalf("Authenticate error = %v, want UNAVAILABLE wrapping ErrKeysUnavailable", err)
	}
}

func TestOIDCNew(t *testing.T) {
	iss, _ := authntest.NewIssuer(t)
	tests := []struct {
		name    string
		cfg     authn.OIDCConfig
		wantErr error
	}{
		{name: "issuer CA not trusted", cfg: authn.OIDCConfig{Issuer: iss.URL, Audience: "prism"}},
		{name: "missing CA file", cfg: authn.OIDCConfig{Issuer: iss.URL, Audience: "prism", CAFile: "/nonexistent/ca.pem"}, wantErr: authn.ErrInvalidConfig},
		{name: "discovery names another issuer", cfg: authn.OIDCConfig{Issuer: iss.URL + "/", Audience: "prism", CAFile: iss.CAFile}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := authn.New(context.Background(), authn.Config{OIDC: []authn.OIDCConfig{tt.cfg}})
			if err == nil {
				t.Fatal("New succeeded")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Fatalf("New error = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

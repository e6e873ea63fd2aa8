package authn_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/auth/authn"
	"github.com/prism-data/prism/auth/authn/authntest"
)

func TestDispatch(t *testing.T) {
	iss, k1 := authntest.NewIssuer(t)
	ca := authntest.NewCA(t, "CA")
	svc, svcPub := newUser(t)
	issuer, issuerPub := newAccount(t)
	user, userPub := newUser(t)
	now := time.Now().Truncate(time.Second)
	full := newChain(t, authn.Config{
		OIDC:  []authn.OIDCConfig{{Issuer: iss.URL, Audience: "prism", CAFile: iss.CAFile}},
		TLS:   authn.CertConfig{CAFile: ca.WriteFile(t)},
		NKeys: []authn.NKeyUser{{Name: "svc", NKey: svcPub}},
		Creds: authn.CredsConfig{IssuerPub: issuerPub},
	}, now)
	certOnly := newChain(t, authn.Config{TLS: authn.CertConfig{CAFile: ca.WriteFile(t)}}, now)
	cert := ca.Issue(t, authntest.Leaf{CN: "cert-user"})
	certWant := want{name: "cert-user", via: auth.ViaTLS, exp: cert.NotAfter}
	nonce := authntest.Nonce()
	nkeyReq, err := authntest.NKey(svc, nonce)
	if err != nil {
		t.Fatal(err)
	}
	credsReq, err := authntest.UserJWT(userJWT(t, issuer, userPub, "app", nil), user, nonce)
	if err != nil {
		t.Fatal(err)
	}
	good := authntest.SignToken(t, k1, claimsFor(iss, now, nil))
	expired := authntest.SignToken(t, k1, claimsFor(iss, now, map[string]any{"exp": now.Add(-time.Minute).Unix()}))
	withCert := func(r *jwt.AuthorizationRequestClaims) *jwt.AuthorizationRequestClaims {
		r.TLS = authntest.Cert(cert).TLS
		return r
	}

	tests := []struct {
		name string
		a    auth.Authenticator
		req  *jwt.AuthorizationRequestClaims
		want want
	}{
		{name: "nothing", a: full, req: authntest.Request(), want: want{err: authn.ErrNoCredentials}},
		{name: "nil request", a: full, req: nil, want: want{err: authn.ErrNoCredentials}},
		{name: "username and password", a: full, req: func() *jwt.AuthorizationRequestClaims {
			r := authntest.Request()
			r.ConnectOptions.Username, r.ConnectOptions.Password = "admin", "hunter2-secret"
			return r
		}(), want: want{err: authn.ErrUnsupported}},
		{name: "a signed nonce alone (creds through a server without operator)", a: full, req: func() *jwt.AuthorizationRequestClaims {
			r := authntest.Request()
			r.ConnectOptions.SignedNonce, r.ClientInformation.Nonce = credsReq.ConnectOptions.SignedNonce, nonce
			return r
		}(), want: want{err: authn.ErrUnsupported}},
		{name: "token wins over a certificate", a: full, req: withCert(authntest.Token(good)), want: want{name: "alice", via: auth.ViaOIDC, exp: now.Add(time.Hour)}},
		{name: "a refused token does not fall through to the certificate", a: full, req: withCert(authntest.Token(expired)), want: want{err: authn.ErrExpired}},
		{name: "nkey", a: full, req: nkeyReq, want: want{name: "svc", via: auth.ViaNKey}},
		{name: "creds", a: full, req: credsReq, want: want{name: "app", via: auth.ViaCreds}},
		{name: "certificate", a: full, req: authntest.Cert(cert), want: certWant},
		{name: "token without OIDC configured", a: certOnly, req: withCert(authntest.Token(good)), want: want{err: authn.ErrUnsupported}},
		{name: "user JWT without creds configured", a: certOnly, req: credsReq, want: want{err: authn.ErrUnsupported}},
		{name: "nkey without nkeys configured", a: certOnly, req: nkeyReq, want: want{err: authn.ErrUnsupported}},
		{name: "certificate only", a: certOnly, req: authntest.Cert(cert), want: certWant},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, tt.a, tt.req, tt.want, good, expired, "hunter2-secret")
		})
	}
}

func TestNewOptions(t *testing.T) {
	_, pub := newUser(t)
	cfg := authn.Config{NKeys: []authn.NKeyUser{{Name: "svc", NKey: pub}}}
	tests := []struct {
		name    string
		opt     authn.Option
		wantErr bool
	}{
		{name: "clock", opt: authn.WithClock(time.Now)},
		{name: "nil clock", opt: authn.WithClock(nil), wantErr: true},
		{name: "timeout", opt: authn.WithHTTPTimeout(time.Second)},
		{name: "zero timeout", opt: authn.WithHTTPTimeout(0), wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a, err := authn.New(context.Background(), cfg, tt.opt)
			if (err != nil) != tt.wantErr || (a == nil) != tt.wantErr {
				t.Fatalf("New = %v, %v; wantErr %v", a, err, tt.wantErr)
			}
		})
	}
	if _, err := authn.New(context.Background(), authn.Config{}); !errors.Is(err, authn.ErrInvalidConfig) {
		t.Fatalf("New(empty config) error = %v, want ErrInvalidConfig", err)
	}
}

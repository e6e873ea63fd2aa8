package devinit_test

import (
	"context"
	"crypto/tls"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	natstest "github.com/nats-io/nats-server/v2/test"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/auth/authn"
	"github.com/prism-data/prism/auth/authn/authntest"
	"github.com/prism-data/prism/auth/devinit"
)

// TestInitWithNATSServer runs a real NATS server configured from what
// Init wrote (its TLS, the callout issuer) with a minimal auth callout
// responder around authn.New, and connects real clients with the
// generated nkeys, certificates and creds and with an OIDC token: the
// request fields the server fills in (token, nonce, signed nonce, verified
// chains) are what the authenticators expect, and a creds file is refused
// with the reason (the server drops user JWTs outside operator mode).
func TestInitWithNATSServer(t *testing.T) {
	r, err := devinit.Init(filepath.Join(t.TempDir(), "auth"), devinit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	f := loadFile(t, r.AuthConfig)
	iss, key := authntest.NewIssuer(t)
	f.Authn.OIDC = []authn.OIDCConfig{{Issuer: iss.URL, Audience: "prism", CAFile: iss.CAFile}}
	token := authntest.SignToken(t, key, map[string]any{"iss": iss.URL, "sub": "carol", "aud": "prism", "groups": []string{"readers"}, "exp": time.Now().Add(time.Hour).Unix()})
	a, err := authn.New(context.Background(), f.Authn)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := os.ReadFile(f.Callout.IssuerSeedFile)
	if err != nil {
		t.Fatal(err)
	}
	issuer, err := nkeys.FromSeed([]byte(strings.TrimSpace(string(seed))))
	if err != nil {
		t.Fatal(err)
	}

	tc, err := server.GenTLSConfig(&server.TLSConfigOpts{CertFile: f.ServerTLS.CertFile, KeyFile: f.ServerTLS.KeyFile, CaFile: f.ServerTLS.CAFile, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	// Certificates are optional on the one client listener (an embedded
	// server can do this; nats-server's config file can only require them).
	tc.ClientAuth = tls.VerifyClientCertIfGiven
	authAcc, appAcc := server.NewAccount("AUTH"), server.NewAccount("APP")
	s := natstest.RunServer(&server.Options{
		Host: "127.0.0.1", Port: -1, NoLog: true, NoSigs: true,
		TLS: true, TLSConfig: tc, TLSTimeout: 5,
		AlwaysEnableNonce: true,
		Accounts:          []*server.Account{authAcc, appAcc},
		Users:             []*server.User{{Username: "callout", Password: "callout-pw", Account: authAcc}},
		AuthCallout:       &server.AuthCallout{Issuer: f.Callout.Issuer, Account: "AUTH", AuthUsers: []string{"callout"}},
	})
	t.Cleanup(s.Shutdown)

	tlsOpt := nats.RootCAs(f.ServerTLS.CAFile)
	svc, err := nats.Connect(s.ClientURL(), nats.UserInfo("callout", "callout-pw"), tlsOpt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(svc.Close)
	seen := make(chan auth.Principal, 10)
	refusals := make(chan error, 10)
	_, err = svc.Subscribe(server.AuthCalloutSubject, func(m *nats.Msg) {
		req, err := jwt.DecodeAuthorizationRequestClaims(string(m.Data))
		if err != nil {
			t.Errorf("decode request: %v", err)
			return
		}
		resp := jwt.NewAuthorizationResponseClaims(req.UserNkey)
		resp.Audience = req.Server.ID
		p, exp, err := a.Authenticate(context.Background(), req)
		if err != nil {
			refusals <- err
			resp.Error = err.Error()
		} else {
			seen <- p
			uc := jwt.NewUserClaims(req.UserNkey)
			uc.Name = p.Name
			uc.Audience = "APP"
			if !exp.IsZero() {
				uc.Expires = exp.Unix()
			}
			if resp.Jwt, err = uc.Encode(issuer); err != nil {
				t.Errorf("encode user: %v", err)
				return
			}
		}
		tok, err := resp.Encode(issuer)
		if err != nil {
			t.Errorf("encode response: %v", err)
			return
		}
		_ = m.Respond([]byte(tok))
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := svc.Flush(); err != nil {
		t.Fatal(err)
	}

	user := func(name string) devinit.UserFiles {
		for _, u := range r.Users {
			if u.Name == name {
				return u
			}
		}
		t.Fatalf("no user %s", name)
		return devinit.UserFiles{}
	}
	nkeyOpt := func(name string) nats.Option {
		o, err := nats.NkeyOptionFromSeed(user(name).NKey)
		if err != nil {
			t.Fatal(err)
		}
		return o
	}
	tests := []struct {
		name    string
		opts    []nats.Option
		want    auth.Principal // zero: the connection is refused
		wantErr error          // the refusal the callout returned
	}{
		{name: "nkey", opts: []nats.Option{nkeyOpt("admin")}, want: auth.Principal{Name: "admin", Groups: []string{"admins"}, Via: auth.ViaNKey}},
		{name: "app nkey", opts: []nats.Option{nkeyOpt("app")}, want: auth.Principal{Name: "app", Via: auth.ViaNKey}},
		// Without an operator the server drops the user JWT of a creds
		// file before the callout sees it (client.go processConnect).
		{name: "creds file without operator mode", opts: []nats.Option{nats.UserCredentials(user("admin").Creds)}, wantErr: authn.ErrUnsupported},
		{name: "client certificate", opts: []nats.Option{nats.ClientCert(user("app").Cert, user("app").Key)}, want: auth.Principal{Name: "app", Via: auth.ViaTLS}},
		{name: "admin certificate", opts: []nats.Option{nats.ClientCert(user("admin").Cert, user("admin").Key)}, want: auth.Principal{Name: "admin", Groups: []string{"admins"}, Via: auth.ViaTLS}},
		{name: "nothing", opts: nil, wantErr: authn.ErrNoCredentials},
		{name: "OIDC token", opts: []nats.Option{nats.Token(token)}, want: auth.Principal{Name: "carol", Groups: []string{"readers"}, Via: auth.ViaOIDC}},
		{name: "a token that is not a JWT", opts: []nats.Option{nats.Token("not-a-token")}, wantErr: authn.ErrMalformed},
		{name: "a bad token wins over a certificate", opts: []nats.Option{nats.ClientCert(user("admin").Cert, user("admin").Key), nats.Token("not-a-token")}, wantErr: authn.ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			opts := append([]nats.Option{tlsOpt, nats.Timeout(5 * time.Second), nats.NoReconnect()}, tt.opts...)
			nc, err := nats.Connect(s.ClientURL(), opts...)
			if tt.wantErr != nil {
				if err == nil {
					nc.Close()
					t.Fatal("connection accepted")
				}
				select {
				case rerr := <-refusals:
					if !errors.Is(rerr, tt.wantErr) {
						t.Fatalf("the callout refused with %v, want %v", rerr, tt.wantErr)
					}
				default:
					t.Fatalf("connect failed (%v) without a refusal of the callout", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer nc.Close()
			select {
			case p := <-seen:
				if p.Name != tt.want.Name || p.Via != tt.want.Via || strings.Join(p.Groups, ",") != strings.Join(tt.want.Groups, ",") {
					t.Fatalf("principal %+v, want %+v", p, tt.want)
				}
			default:
				t.Fatal("the callout authenticated no principal")
			}
		})
	}
}

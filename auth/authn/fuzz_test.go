package authn

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/auth/authn/authntest"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
)

// FuzzCertName feeds arbitrary PEM to the certificate parser and the
// certificate → name mapping: no panic, and a name returned is usable.
func FuzzCertName(f *testing.F) {
	ca := authntest.NewCA(f, "CA")
	for _, l := range []authntest.Leaf{
		{CN: "app"},
		{CN: "x", Emails: []string{"a@example.com"}},
		{URIs: []string{"spiffe://prism/svc"}},
		{CN: "group:admins"},
		{},
	} {
		f.Add(authntest.PEMs(ca.Issue(f, l))[0])
	}
	f.Add(authntest.PEMs(ca.Cert)[0] + authntest.PEMs(ca.Issue(f, authntest.Leaf{CN: "b"}))[0])
	f.Add("-----BEGIN CERTIFICATE-----\nMAA=\n-----END CERTIFICATE-----\n")
	f.Add("")
	f.Fuzz(func(t *testing.T, in string) {
		certs, err := parseChain([]string{in})
		if err != nil {
			if certs != nil {
				t.Fatal("parseChain returned certificates with an error")
			}
			return
		}
		if len(certs) == 0 || len(certs) > maxChainCerts {
			t.Fatalf("parseChain returned %d certificates", len(certs))
		}
		name, err := certName(certs[0])
		if err != nil {
			return
		}
		if cerr := checkName(name); cerr != nil {
			t.Fatalf("certName returned unusable name %q: %v", name, cerr)
		}
	})
}

// FuzzClaims feeds arbitrary JSON and claim names to the claim extraction:
// no panic; success only with a usable name and usable groups; a refusal is
// PERMISSION_DENIED.
func FuzzClaims(f *testing.F) {
	f.Add([]byte(`{"sub":"alice","groups":["admins","ops"]}`), "sub", "groups")
	f.Add([]byte(`{"sub":"alice","groups":"admins"}`), "sub", "groups")
	f.Add([]byte(`{"email":"a@b","realm_access":{"roles":["x"]}}`), "email", "realm_access.roles")
	f.Add([]byte(`{"sub":"group:admins"}`), "sub", "groups")
	f.Add([]byte(`{"sub":1,"groups":[1,2]}`), "sub", "groups")
	f.Add([]byte(`{"a.b":"x","a":{"b":"y"}}`), "a.b", "a")
	f.Add([]byte(`[]`), "sub", "groups")
	f.Add([]byte(`null`), "sub", "groups")
	f.Fuzz(func(t *testing.T, payload []byte, userClaim, groupsClaim string) {
		name, groups, err := principalFromClaims(payload, userClaim, groupsClaim)
		if err != nil {
			var se *status.Error
			if !errors.As(err, &se) || se.Code != prismv1.Code_PERMISSION_DENIED {
				t.Fatalf("refusal %v is not PERMISSION_DENIED", err)
			}
			if name != "" || groups != nil {
				t.Fatal("refusal came with a name or groups")
			}
			return
		}
		if cerr := checkName(name); cerr != nil {
			t.Fatalf("name %q unusable: %v", name, cerr)
		}
		if len(groups) > maxGroups {
			t.Fatalf("%d groups", len(groups))
		}
		if gerr := checkGroups(groups); gerr != nil {
			t.Fatal(gerr)
		}
	})
}

// FuzzDispatch feeds arbitrary connect options, nonce and TLS state to the
// chain: no panic; a success is a usable principal of a known method; a
// refusal is PERMISSION_DENIED or UNAVAILABLE and never holds the token,
// password or signature the client sent.
func FuzzDispatch(f *testing.F) {
	iss, key := authntest.NewIssuer(f)
	ca := authntest.NewCA(f, "CA")
	svc, _ := nkeys.CreateUser()
	svcPub, _ := svc.PublicKey()
	issuer, _ := nkeys.CreateAccount()
	issuerPub, _ := issuer.PublicKey()
	user, _ := nkeys.CreateUser()
	userPub, _ := user.PublicKey()
	now := time.Now()
	a, err := New(context.Background(), Config{
		OIDC:  []OIDCConfig{{Issuer: iss.URL, Audience: "prism", CAFile: iss.CAFile}},
		TLS:   CertConfig{CAFile: ca.WriteFile(f)},
		NKeys: []NKeyUser{{Name: "svc", NKey: svcPub}},
		Creds: CredsConfig{IssuerPub: issuerPub},
	}, WithClock(func() time.Time { return now }))
	if err != nil {
		f.Fatal(err)
	}
	nonce := authntest.Nonce()
	tok := authntest.SignToken(f, key, map[string]any{"iss": iss.URL, "sub": "alice", "aud": "prism", "exp": now.Add(time.Hour).Unix()})
	uc := jwt.NewUserClaims(userPub)
	uc.Name = "app"
	ujwt, err := uc.Encode(issuer)
	if err != nil {
		f.Fatal(err)
	}
	svcSig, _ := authntest.SignNonce(svc, nonce)
	userSig, _ := authntest.SignNonce(user, nonce)
	cert := authntest.PEMs(ca.Issue(f, authntest.Leaf{CN: "cert-user"}))[0]

	// token, user JWT, nkey, signature, nonce, username, password, cert PEM
	f.Add(tok, "", "", "", "", "", "", "")
	f.Add("", ujwt, "", userSig, nonce, "", "", "")
	f.Add("", "", svcPub, svcSig, nonce, "", "", "")
	f.Add("", "", "", "", "", "", "", cert)
	f.Add("", "", "", "", "", "admin", "secret-password", "")
	f.Add(tok[:len(tok)-4]+"AAAA", "", "", "", "", "", "", cert)
	f.Add("", "", "", "", "", "", "", "")
	f.Fuzz(func(t *testing.T, token, ujwt, nkey, sig, nonce, user, pass, certPEM string) {
		r := authntest.Request()
		r.ConnectOptions = jwt.ConnectOptions{Token: token, JWT: ujwt, Nkey: nkey, SignedNonce: sig, Username: user, Password: pass}
		r.ClientInformation.Nonce = nonce
		if certPEM != "" {
			r.TLS = &jwt.ClientTLS{VerifiedChains: []jwt.StringList{{certPEM}}}
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		p, exp, err := a.Authenticate(ctx, r)
		if err != nil {
			var se *status.Error
			if !errors.As(err, &se) || (se.Code != prismv1.Code_PERMISSION_DENIED && se.Code != prismv1.Code_UNAVAILABLE) {
				t.Fatalf("refusal %v is neither PERMISSION_DENIED nor UNAVAILABLE", err)
			}
			if se.Message == "" {
				t.Fatal("refusal without a message")
			}
			for _, s := range []string{token, pass, sig} {
				// Refusals may quote a presented public nkey and name the
				// issuer; a "secret" that is part of those is no leak.
				echoed := strings.Contains(nkey, s) || strings.Contains(iss.URL, s)
				if len(s) >= 12 && !echoed && strings.Contains(err.Error(), s) {
					t.Fatalf("refusal %q holds a secret of the client", err)
				}
			}
			if p.Name != "" || !exp.IsZero() {
				t.Fatal("refusal came with a principal")
			}
			return
		}
		switch p.Via {
		case auth.ViaOIDC, auth.ViaCreds, auth.ViaNKey, auth.ViaTLS:
		default:
			t.Fatalf("principal %+v has no known method", p)
		}
		if cerr := checkName(p.Name); cerr != nil {
			t.Fatalf("principal name %q unusable: %v", p.Name, cerr)
		}
	})
}

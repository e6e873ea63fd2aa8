package auth

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nkeys"
)

// mapAuth authenticates connect-option tokens from a map.
type mapAuth map[string]struct {
	p   Principal
	exp time.Time
}

func (m mapAuth) Authenticate(_ context.Context, req *jwt.AuthorizationRequestClaims) (Principal, time.Time, error) {
	c, ok := m[req.ConnectOptions.Token]
	if !ok {
		return Principal{}, time.Time{}, errors.New("unknown token")
	}
	return c.p, c.exp, nil
}

// fixture is a Callout, the keys of a fake server that signs requests
// to it, and a policy view.
type fixture struct {
	c          *Callout
	issuerPub  string
	server     nkeys.KeyPair
	serverPub  string
	serverX    nkeys.KeyPair // the server's curve key
	serverXPub string
	calloutX   string // the callout's curve public key
	policies   Policies
}

func newKey(t testing.TB, create func() (nkeys.KeyPair, error)) (nkeys.KeyPair, string) {
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

var (
	tAlice = Principal{Name: "alice", Groups: []string{"writers"}, Via: ViaOIDC}
	tLater = time.Now().Add(time.Hour).Truncate(time.Second)
)

func newFixture(t testing.TB, xkey bool, maxLifetime time.Duration) *fixture {
	t.Helper()
	f := &fixture{policies: Policies{Namespaces: map[string]Policy{"demo": {Write: []string{"group:writers"}}}}}
	issuer, pub := newKey(t, nkeys.CreateAccount)
	f.issuerPub = pub
	f.server, f.serverPub = newKey(t, nkeys.CreateServer)
	f.serverX, f.serverXPub = newKey(t, nkeys.CreateCurveKeys)
	cfg := CalloutConfig{
		Issuer: issuer,
		Authenticator: mapAuth{
			"alice":   {p: tAlice, exp: tLater},
			"forever": {p: tAlice},
			"expired": {p: tAlice, exp: time.Now().Add(-time.Second)},
			"service": {p: ServicePrincipal},
		},
		Policies:    func() Policies { return f.policies },
		MaxLifetime: maxLifetime,
		Logger:      slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
	if xkey {
		cfg.XKey, f.calloutX = newKey(t, nkeys.CreateCurveKeys)
	}
	c, err := newCallout(cfg)
	if err != nil {
		t.Fatal(err)
	}
	f.c = c
	return f
}

// request returns an authorization request for token signed by the
// fixture's server, and the user nkey it asks a JWT for.
func (f *fixture) request(t testing.TB, token string) (string, string) {
	t.Helper()
	_, user := newKey(t, nkeys.CreateUser)
	rc := jwt.NewAuthorizationRequestClaims(f.issuerPub)
	rc.Audience = server.AuthRequestSubject
	rc.UserNkey = user
	rc.Server = jwt.ServerID{Name: "test", ID: f.serverPub}
	rc.ConnectOptions.Token = token
	rc.Expires = time.Now().Add(time.Minute).Unix()
	tok, err := rc.Encode(f.server)
	if err != nil {
		t.Fatal(err)
	}
	return tok, user
}

func (f *fixture) keys() keys { return keys{issuer: f.c.issuer, xkey: f.c.xkey} }

// decodeResponse checks the response's envelope and returns it.
func (f *fixture) decodeResponse(t testing.TB, resp []byte, user string, encrypted bool) *jwt.AuthorizationResponseClaims {
	t.Helper()
	if encrypted {
		plain, err := f.serverX.Open(resp, f.calloutX)
		if err != nil {
			t.Fatalf("open the encrypted response: %v", err)
		}
		resp = plain
	}
	rc, err := jwt.DecodeAuthorizationResponseClaims(string(resp))
	if err != nil {
		t.Fatalf("decode the response: %v", err)
	}
	if rc.Issuer != f.issuerPub || rc.Subject != user || rc.Audience != f.serverPub {
		t.Fatalf("response issuer/subject/audience = %s/%s/%s, want %s/%s/%s", rc.Issuer, rc.Subject, rc.Audience, f.issuerPub, user, f.serverPub)
	}
	return rc
}

func TestCalloutDecodeRequest(t *testing.T) {
	f := newFixture(t, false, 0)
	other, _ := newKey(t, nkeys.CreateServer)
	account, _ := newKey(t, nkeys.CreateAccount)
	_, otherIssuer := newKey(t, nkeys.CreateAccount)
	sign := func(kp nkeys.KeyPair, edit func(*jwt.AuthorizationRequestClaims)) string {
		_, user := newKey(t, nkeys.CreateUser)
		rc := jwt.NewAuthorizationRequestClaims(f.issuerPub)
		rc.Audience, rc.UserNkey = server.AuthRequestSubject, user
		rc.Server = jwt.ServerID{ID: f.serverPub}
		if edit != nil {
			edit(rc)
		}
		tok, err := rc.Encode(kp)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	// The jwt package signs requests only with server keys: an account
	// signs another claim type.
	_, user := newKey(t, nkeys.CreateUser)
	resp := jwt.NewAuthorizationResponseClaims(user)
	resp.Audience, resp.Error = f.serverPub, "x"
	accountSigned, err := resp.Encode(account)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		data    string
		xkeyHdr string
		wantErr error
	}{
		{"valid", sign(f.server, nil), "", nil},
		{"garbage", "not a jwt", "", ErrInvalidAuthRequest},
		{"a response signed by an account key", accountSigned, "", ErrInvalidAuthRequest},
		{"signed by another server than named", sign(other, nil), "", ErrInvalidAuthRequest},
		{"wrong audience", sign(f.server, func(rc *jwt.AuthorizationRequestClaims) { rc.Audience = "APP" }), "", ErrInvalidAuthRequest},
		{"another issuer", sign(f.server, func(rc *jwt.AuthorizationRequestClaims) { rc.Subject = otherIssuer }), "", ErrInvalidAuthRequest},
		{"expired", sign(f.server, func(rc *jwt.AuthorizationRequestClaims) { rc.Expires = time.Now().Add(-time.Minute).Unix() }), "", ErrInvalidAuthRequest},
		{"no user nkey", sign(f.server, func(rc *jwt.AuthorizationRequestClaims) { rc.UserNkey = "" }), "", ErrInvalidAuthRequest},
		{"encrypted without a callout xkey", sign(f.server, nil), f.serverXPub, ErrInvalidAuthRequest},
		{"tampered signature", sign(f.server, nil) + "x", "", ErrInvalidAuthRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := f.c.decodeRequest(f.keys(), []byte(tt.data), tt.xkeyHdr)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if err == nil && req.Server.ID != f.serverPub {
				t.Fatalf("server id %s, want %s", req.Server.ID, f.serverPub)
			}
		})
	}
}

func TestCalloutDecodeEncrypted(t *testing.T) {
	f := newFixture(t, true, 0)
	tok, _ := f.request(t, "alice")
	sealed, err := f.serverX.Seal([]byte(tok), f.calloutX)
	if err != nil {
		t.Fatal(err)
	}
	_, strangerX := newKey(t, nkeys.CreateCurveKeys)
	tests := []struct {
		name    string
		hdr     string
		wantErr error
	}{
		{"valid", f.serverXPub, nil},
		{"sealed by another key", strangerX, ErrInvalidAuthRequest},
		{"header not a curve key", f.serverPub, ErrInvalidAuthRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := f.c.decodeRequest(f.keys(), sealed, tt.hdr); !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestCalloutRespond checks the user JWT a request gets, or the error.
func TestCalloutRespond(t *testing.T) {
	tests := []struct {
		name        string
		xkey        bool
		maxLifetime time.Duration
		token       string
		result      string
		wantError   string // substring of the response's error
		wantExpires func(before, after time.Time) (lo, hi int64)
	}{
		{name: "allowed", token: "alice", result: resultAllowed,
			wantExpires: func(time.Time, time.Time) (int64, int64) { return tLater.Unix(), tLater.Unix() }},
		{name: "allowed encrypted", xkey: true, token: "alice", result: resultAllowed,
			wantExpires: func(time.Time, time.Time) (int64, int64) { return tLater.Unix(), tLater.Unix() }},
		{name: "no expiry", token: "forever", result: resultAllowed,
			wantExpires: func(time.Time, time.Time) (int64, int64) { return 0, 0 }},
		{name: "max lifetime caps no expiry", maxLifetime: time.Minute, token: "forever", result: resultAllowed,
			wantExpires: func(b, a time.Time) (int64, int64) { return b.Add(time.Minute).Unix(), a.Add(time.Minute).Unix() }},
		{name: "max lifetime caps a later expiry", maxLifetime: time.Minute, token: "alice", result: resultAllowed,
			wantExpires: func(b, a time.Time) (int64, int64) { return b.Add(time.Minute).Unix(), a.Add(time.Minute).Unix() }},
		{name: "credential expires before max lifetime", maxLifetime: 2 * time.Hour, token: "alice", result: resultAllowed,
			wantExpires: func(time.Time, time.Time) (int64, int64) { return tLater.Unix(), tLater.Unix() }},
		{name: "unknown token", token: "nope", result: resultDenied, wantError: "unknown token"},
		{name: "expired credential", token: "expired", result: resultDenied, wantError: "expired"},
		{name: "service principal", token: "service", result: resultError, wantError: `"service" principal`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.xkey, tt.maxLifetime)
			tok, user := f.request(t, tt.token)
			data, hdr := []byte(tok), ""
			if tt.xkey {
				var err error
				if data, err = f.serverX.Seal(data, f.calloutX); err != nil {
					t.Fatal(err)
				}
				hdr = f.serverXPub
			}
			before := time.Now()
			resp, out := f.c.respond(context.Background(), f.keys(), data, hdr)
			after := time.Now()
			if out.result != tt.result {
				t.Fatalf("result %s (%s), want %s", out.result, out.reason, tt.result)
			}
			rc := f.decodeResponse(t, resp, user, tt.xkey)
			if tt.wantError != "" {
				if rc.Jwt != "" || !strings.Contains(rc.Error, tt.wantError) {
					t.Fatalf("response jwt %q error %q, want only an error with %q", rc.Jwt, rc.Error, tt.wantError)
				}
				return
			}
			if rc.Error != "" {
				t.Fatalf("response error %q", rc.Error)
			}
			uc, err := jwt.DecodeUserClaims(rc.Jwt)
			if err != nil {
				t.Fatal(err)
			}
			if uc.Issuer != f.issuerPub || uc.Subject != user || uc.Audience != "APP" || uc.Name != EncodePrincipal(tAlice) {
				t.Fatalf("user jwt issuer/subject/audience/name = %s/%s/%s/%s", uc.Issuer, uc.Subject, uc.Audience, uc.Name)
			}
			if lo, hi := tt.wantExpires(before, after); uc.Expires < lo || uc.Expires > hi {
				t.Fatalf("expires %d, want in [%d, %d]", uc.Expires, lo, hi)
			}
			want := UserPermissions(tAlice, f.policies)
			if !slices.Equal(uc.Pub.Allow, want.Pub.Allow) || !slices.Equal(uc.Sub.Allow, want.Sub.Allow) || len(uc.Pub.Deny) != 0 {
				t.Fatalf("permissions %+v, want %+v", uc.Permissions, want)
			}
		})
	}
}

// TestCalloutRefusesPlaintextWithXKey: with an xkey, an unencrypted
// request is answered with an error only.
func TestCalloutRefusesPlaintextWithXKey(t *testing.T) {
	f := newFixture(t, true, 0)
	tok, user := f.request(t, "alice")
	resp, out := f.c.respond(context.Background(), f.keys(), []byte(tok), "")
	if out.result != resultError {
		t.Fatalf("result %s, want error", out.result)
	}
	if rc := f.decodeResponse(t, resp, user, false); rc.Jwt != "" || !strings.Contains(rc.Error, "not encrypted") {
		t.Fatalf("response jwt %q error %q", rc.Jwt, rc.Error)
	}
}

// TestCalloutConfigPrintsNoSecret: no verb prints the seeds.
func TestCalloutConfigPrintsNoSecret(t *testing.T) {
	issuer, _ := newKey(t, nkeys.CreateAccount)
	xkey, _ := newKey(t, nkeys.CreateCurveKeys)
	cfg := CalloutConfig{Issuer: issuer, XKey: xkey}
	for _, kp := range []nkeys.KeyPair{issuer, xkey} {
		seed, err := kp.Seed()
		if err != nil {
			t.Fatal(err)
		}
		raw, err := nkeys.Decode(nkeys.PrefixByteSeed, seed)
		if err != nil {
			t.Fatal(err)
		}
		for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
			out := fmt.Sprintf(verb, cfg)
			if strings.Contains(out, string(seed)) || strings.Contains(out, fmt.Sprint(raw)) || strings.Contains(out, fmt.Sprint(seed)) {
				t.Fatalf("%s of the config prints key material: %s", verb, out)
			}
		}
	}
}

func TestNewCalloutRefuses(t *testing.T) {
	account, _ := newKey(t, nkeys.CreateAccount)
	user, _ := newKey(t, nkeys.CreateUser)
	curve, _ := newKey(t, nkeys.CreateCurveKeys)
	_, pub := newKey(t, nkeys.CreateAccount)
	publicOnly, err := nkeys.FromPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	ok := CalloutConfig{Issuer: account, Authenticator: mapAuth{}, Policies: func() Policies { return Policies{} }}
	tests := []struct {
		name    string
		edit    func(*CalloutConfig)
		wantErr string
	}{
		{"valid", func(*CalloutConfig) {}, ""},
		{"no issuer", func(c *CalloutConfig) { c.Issuer = nil }, "no issuer"},
		{"user key as issuer", func(c *CalloutConfig) { c.Issuer = user }, "account key pair"},
		{"public key only", func(c *CalloutConfig) { c.Issuer = publicOnly }, "no seed"},
		{"account key as xkey", func(c *CalloutConfig) { c.XKey = account }, "curve key pair"},
		{"valid xkey", func(c *CalloutConfig) { c.XKey = curve }, ""},
		{"no authenticator", func(c *CalloutConfig) { c.Authenticator = nil }, "no authenticator"},
		{"no policies", func(c *CalloutConfig) { c.Policies = nil }, "no policies"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := ok
			tt.edit(&cfg)
			_, err := newCallout(cfg)
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// BenchmarkCallout measures answering one authorization request: verify
// the server's signature, authenticate, derive the permissions, sign the
// user JWT and the response.
func BenchmarkCallout(b *testing.B) {
	for _, xkey := range []bool{false, true} {
		b.Run(fmt.Sprintf("xkey=%t", xkey), func(b *testing.B) {
			f := newFixture(b, xkey, 0)
			for i := range 50 {
				f.policies.Namespaces[fmt.Sprintf("ns%d", i)] = Policy{Read: []string{"group:writers"}}
			}
			tok, _ := f.request(b, "alice")
			data, hdr := []byte(tok), ""
			if xkey {
				var err error
				if data, err = f.serverX.Seal(data, f.calloutX); err != nil {
					b.Fatal(err)
				}
				hdr = f.serverXPub
			}
			k := f.keys()
			b.ReportAllocs()
			for b.Loop() {
				if _, out := f.c.respond(context.Background(), k, data, hdr); out.result != resultAllowed {
					b.Fatal(out.reason)
				}
			}
		})
	}
}

// TestCalloutAudit: every decision reaches the Audit hook, with the
// fan-out grants of an admitted connection; when the grant cannot be
// recorded the connection is refused, while one with no grant is still
// admitted (its requests are audited one by one).
func TestCalloutAudit(t *testing.T) {
	tests := []struct {
		name       string
		token      string
		policies   Policies
		auditErr   error
		result     string
		want       Admission
		wantRefuse string
	}{
		{name: "admitted with a grant", token: "alice", result: resultAllowed,
			policies: Policies{Namespaces: map[string]Policy{"feed": {Subscribe: []string{"alice"}}, "other": {Subscribe: []string{"bob"}}, "zeta": {Subscribe: []string{"group:writers"}}}},
			want:     Admission{Principal: tAlice, Allowed: true, Changes: []string{"feed", "zeta"}}},
		{name: "global admin", token: "alice", result: resultAllowed,
			policies: Policies{Admins: []string{"alice"}},
			want:     Admission{Principal: tAlice, Allowed: true, ChangesAll: true}},
		{name: "refused credential", token: "nope", result: resultDenied,
			want: Admission{Principal: Anonymous, Reason: "unknown token"}},
		{name: "grant not recorded: refused", token: "alice", result: resultError, auditErr: errors.New("audit stream full"),
			policies:   Policies{Namespaces: map[string]Policy{"feed": {Subscribe: []string{"alice"}}}},
			want:       Admission{Principal: tAlice, Allowed: true, Changes: []string{"feed"}},
			wantRefuse: "audit stream full"},
		{name: "no grant, not recorded: admitted", token: "alice", result: resultAllowed, auditErr: errors.New("audit stream full"),
			policies: Policies{Namespaces: map[string]Policy{"feed": {Read: []string{"alice"}}}},
			want:     Admission{Principal: tAlice, Allowed: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, false, 0)
			f.policies = tt.policies
			var got []Admission
			f.c.audit = func(_ context.Context, a Admission) error {
				got = append(got, a)
				return tt.auditErr
			}
			tok, user := f.request(t, tt.token)
			resp, out := f.c.respond(context.Background(), f.keys(), []byte(tok), "")
			if out.result != tt.result {
				t.Fatalf("result %s (%s), want %s", out.result, out.reason, tt.result)
			}
			if len(got) != 1 {
				t.Fatalf("audited %d admissions, want 1", len(got))
			}
			a := got[0]
			if a.Principal.Name != tt.want.Principal.Name || a.Allowed != tt.want.Allowed || a.ChangesAll != tt.want.ChangesAll ||
				!slices.Equal(a.Changes, tt.want.Changes) || !strings.Contains(a.Reason, tt.want.Reason) {
				t.Fatalf("audited %+v, want %+v", a, tt.want)
			}
			rc := f.decodeResponse(t, resp, user, false)
			if tt.wantRefuse != "" && (rc.Jwt != "" || !strings.Contains(rc.Error, tt.wantRefuse)) {
				t.Fatalf("response jwt %q error %q, want a refusal naming %q", rc.Jwt, rc.Error, tt.wantRefuse)
			}
		})
	}
}

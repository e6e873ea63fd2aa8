package authn_test

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/auth/authn"
	"github.com/prism-data/prism/auth/authn/authntest"
)

func newUser(t *testing.T) (nkeys.KeyPair, string) {
	t.Helper()
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return kp, pub
}

func newAccount(t *testing.T) (nkeys.KeyPair, string) {
	t.Helper()
	kp, err := nkeys.CreateAccount()
	if err != nil {
		t.Fatal(err)
	}
	pub, err := kp.PublicKey()
	if err != nil {
		t.Fatal(err)
	}
	return kp, pub
}

func TestNKey(t *testing.T) {
	svc, svcPub := newUser(t)
	stranger, _ := newUser(t)
	now := time.Now()
	a := newChain(t, authn.Config{NKeys: []authn.NKeyUser{{Name: "projector", NKey: svcPub, Groups: []string{"services"}}}}, now)
	nonce := authntest.Nonce()
	ok := want{name: "projector", groups: []string{"services"}, via: auth.ViaNKey}

	tests := []struct {
		name   string
		mutate func(r *jwt.AuthorizationRequestClaims)
		want   want
	}{
		{name: "valid", want: ok},
		{name: "standard base64 signature", mutate: func(r *jwt.AuthorizationRequestClaims) {
			raw, _ := base64.RawURLEncoding.DecodeString(r.ConnectOptions.SignedNonce)
			r.ConnectOptions.SignedNonce = base64.StdEncoding.EncodeToString(raw)
		}, want: ok},
		{name: "signed by another key", mutate: func(r *jwt.AuthorizationRequestClaims) {
			r.ConnectOptions.SignedNonce, _ = authntest.SignNonce(stranger, nonce)
		}, want: want{err: authn.ErrBadSignature}},
		{name: "signature over another nonce", mutate: func(r *jwt.AuthorizationRequestClaims) {
			r.ClientInformation.Nonce = authntest.Nonce()
		}, want: want{err: authn.ErrBadSignature}},
		{name: "unknown key", mutate: func(r *jwt.AuthorizationRequestClaims) {
			pub, _ := stranger.PublicKey()
			r.ConnectOptions.Nkey = pub
			r.ConnectOptions.SignedNonce, _ = authntest.SignNonce(stranger, nonce)
		}, want: want{err: authn.ErrUnknownKey}},
		{name: "not a user key", mutate: func(r *jwt.AuthorizationRequestClaims) {
			_, r.ConnectOptions.Nkey = newAccount(t)
		}, want: want{err: authn.ErrMalformed}},
		{name: "no signature", mutate: func(r *jwt.AuthorizationRequestClaims) {
			r.ConnectOptions.SignedNonce = ""
		}, want: want{err: authn.ErrBadSignature}},
		{name: "server sent no nonce", mutate: func(r *jwt.AuthorizationRequestClaims) {
			r.ConnectOptions.SignedNonce, _ = authntest.SignNonce(svc, "")
			r.ClientInformation.Nonce = ""
		}, want: want{err: authn.ErrNoNonce}},
		{name: "signature not base64", mutate: func(r *jwt.AuthorizationRequestClaims) {
			r.ConnectOptions.SignedNonce = "!!!"
		}, want: want{err: authn.ErrMalformed}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, err := authntest.NKey(svc, nonce)
			if err != nil {
				t.Fatal(err)
			}
			if tt.mutate != nil {
				tt.mutate(r)
			}
			check(t, a, r, tt.want, r.ConnectOptions.SignedNonce)
		})
	}
}

// userJWT issues a user JWT for user pub signed by issuer.
func userJWT(t *testing.T, issuer nkeys.KeyPair, pub, name string, edit func(*jwt.UserClaims)) string {
	t.Helper()
	uc := jwt.NewUserClaims(pub)
	uc.Name = name
	if edit != nil {
		edit(uc)
	}
	s, err := uc.Encode(issuer)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestCreds(t *testing.T) {
	issuer, issuerPub := newAccount(t)
	otherIssuer, _ := newAccount(t)
	user, userPub := newUser(t)
	stranger, _ := newUser(t)
	revoked, revokedPub := newUser(t)
	now := time.Now().Truncate(time.Second)
	exp := now.Add(time.Hour)
	a := newChain(t, authn.Config{Creds: authn.CredsConfig{IssuerPub: issuerPub, Revoked: []string{revokedPub}}}, now)
	withExp := func(uc *jwt.UserClaims) { uc.Expires = exp.Unix(); uc.Tags.Add("group:admins", "team:x", "group:Ops") }

	tests := []struct {
		name   string
		issuer nkeys.KeyPair
		user   nkeys.KeyPair
		signer nkeys.KeyPair // signs the nonce
		edit   func(*jwt.UserClaims)
		want   want
	}{
		{name: "valid", edit: withExp, want: want{name: "app", groups: []string{"admins", "ops"}, via: auth.ViaCreds, exp: exp}},
		{name: "valid without expiry or groups", want: want{name: "app", via: auth.ViaCreds}},
		{name: "other issuer", issuer: otherIssuer, want: want{err: authn.ErrWrongIssuer}},
		{name: "expired", edit: func(uc *jwt.UserClaims) { uc.Expires = now.Unix() }, want: want{err: authn.ErrExpired}},
		{name: "not yet valid", edit: func(uc *jwt.UserClaims) { uc.NotBefore = now.Add(time.Minute).Unix() }, want: want{err: authn.ErrNotYetValid}},
		{name: "revoked", user: revoked, want: want{err: authn.ErrRevoked}},
		{name: "nonce signed by another key", signer: stranger, want: want{err: authn.ErrBadSignature}},
		{name: "issued through a signing key", edit: func(uc *jwt.UserClaims) { uc.IssuerAccount = issuerPub }, issuer: otherIssuer, want: want{err: authn.ErrWrongIssuer}},
		{name: "no name", edit: func(uc *jwt.UserClaims) { uc.Name = "" }, want: want{err: authn.ErrBadIdentity}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			is, u, signer := issuer, user, user
			if tt.issuer != nil {
				is = tt.issuer
			}
			if tt.user != nil {
				u, signer = tt.user, tt.user
			}
			if tt.signer != nil {
				signer = tt.signer
			}
			pub, _ := u.PublicKey()
			nonce := authntest.Nonce()
			r, err := authntest.UserJWT(userJWT(t, is, pub, "app", tt.edit), signer, nonce)
			if err != nil {
				t.Fatal(err)
			}
			check(t, a, r, tt.want, r.ConnectOptions.SignedNonce)
		})
	}

	t.Run("tampered JWT", func(t *testing.T) {
		tok := userJWT(t, issuer, userPub, "app", nil)
		evil := userJWT(t, issuer, userPub, "admin", nil)
		parts, evilParts := strings.Split(tok, "."), strings.Split(evil, ".")
		forged := parts[0] + "." + evilParts[1] + "." + parts[2]
		r, err := authntest.UserJWT(forged, user, authntest.Nonce())
		if err != nil {
			t.Fatal(err)
		}
		check(t, a, r, want{err: authn.ErrMalformed})
	})
	t.Run("creds file", func(t *testing.T) {
		seed, _ := user.Seed()
		creds, err := jwt.FormatUserConfig(userJWT(t, issuer, userPub, "app", nil), seed)
		if err != nil {
			t.Fatal(err)
		}
		r, err := authntest.Creds(creds, authntest.Nonce())
		if err != nil {
			t.Fatal(err)
		}
		check(t, a, r, want{name: "app", via: auth.ViaCreds})
	})
	t.Run("server sent no nonce", func(t *testing.T) {
		r, err := authntest.UserJWT(userJWT(t, issuer, userPub, "app", nil), user, "")
		if err != nil {
			t.Fatal(err)
		}
		check(t, a, r, want{err: authn.ErrNoNonce})
	})
}

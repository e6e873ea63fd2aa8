package authn

import (
	"strings"
	"time"

	"github.com/nats-io/jwt/v2"

	"github.com/prism-data/prism/auth"
)

// maxJWTLen bounds a user JWT or bearer token before it is parsed.
const maxJWTLen = 64 << 10

// credsAuth accepts user JWTs signed by the configured user issuer.
type credsAuth struct {
	issuer  string
	revoked map[string]bool
	now     func() time.Time
}

func newCreds(cfg CredsConfig, now func() time.Time) *credsAuth {
	a := &credsAuth{issuer: cfg.IssuerPub, revoked: make(map[string]bool, len(cfg.Revoked)), now: now}
	for _, k := range cfg.Revoked {
		a.revoked[k] = true
	}
	return a
}

// authenticate verifies the user JWT ujwt (signed by the issuer, current,
// not revoked) and then sig, the signature over nonce by the JWT's subject
// key. The principal expires with the JWT (zero if it has no expiry).
func (a *credsAuth) authenticate(ujwt, sig, nonce string) (auth.Principal, time.Time, error) {
	if len(ujwt) > maxJWTLen {
		return refused(refuse(auth.ViaCreds, ErrMalformed, "the user JWT is longer than %d bytes", maxJWTLen))
	}
	uc, err := jwt.DecodeUserClaims(ujwt)
	if err != nil {
		// DecodeUserClaims checks the JWT's signature against its own iss.
		return refused(refuse(auth.ViaCreds, ErrMalformed, "the user JWT is not a validly signed NATS user JWT"))
	}
	if uc.Issuer != a.issuer || uc.IssuerAccount != "" {
		return refused(refuse(auth.ViaCreds, ErrWrongIssuer, "the user JWT is not signed by the configured user issuer (creds.issuer)"))
	}
	now := a.now()
	if uc.Expires != 0 && !now.Before(time.Unix(uc.Expires, 0)) {
		return refused(refuse(auth.ViaCreds, ErrExpired, "the user JWT expired at %s: issue a new creds file", time.Unix(uc.Expires, 0).UTC().Format(time.RFC3339)))
	}
	if uc.NotBefore != 0 && now.Before(time.Unix(uc.NotBefore, 0)) {
		return refused(refuse(auth.ViaCreds, ErrNotYetValid, "the user JWT is not valid before %s", time.Unix(uc.NotBefore, 0).UTC().Format(time.RFC3339)))
	}
	if a.revoked[uc.Subject] {
		return refused(refuse(auth.ViaCreds, ErrRevoked, "user %s is revoked (creds.revoked)", uc.Subject))
	}
	if err := verifyNonce(auth.ViaCreds, uc.Subject, sig, nonce); err != nil {
		return refused(err)
	}
	if err := checkName(uc.Name); err != nil {
		return refused(refuse(auth.ViaCreds, ErrBadIdentity, "the user JWT's name is unusable: %v", err))
	}
	var groups []string
	for _, t := range uc.Tags {
		if g, ok := strings.CutPrefix(t, groupPrefix); ok {
			if err := checkLabel(g); err != nil {
				return refused(refuse(auth.ViaCreds, ErrBadIdentity, "the user JWT's tag %q is not a usable group: %v", t, err))
			}
			groups = append(groups, g)
		}
	}
	var exp time.Time
	if uc.Expires != 0 {
		exp = time.Unix(uc.Expires, 0)
	}
	return auth.Principal{Name: uc.Name, Groups: groups, Via: auth.ViaCreds}, exp, nil
}

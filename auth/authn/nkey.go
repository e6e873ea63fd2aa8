package authn

import (
	"slices"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/prism-data/prism/auth"
)

// nkeyAuth accepts the nkey users of the configuration.
type nkeyAuth struct {
	byKey map[string]NKeyUser
}

func newNKeys(users []NKeyUser) *nkeyAuth {
	a := &nkeyAuth{byKey: make(map[string]NKeyUser, len(users))}
	for _, u := range users {
		u.Groups = slices.Clone(u.Groups)
		a.byKey[u.NKey] = u
	}
	return a
}

// authenticate checks that pub is a configured user and sig its signature
// over nonce. An nkey never expires.
func (a *nkeyAuth) authenticate(pub, sig, nonce string) (auth.Principal, time.Time, error) {
	if !nkeys.IsValidPublicUserKey(pub) {
		return refused(refuse(auth.ViaNKey, ErrMalformed, "the presented nkey is not a public user nkey (U...)"))
	}
	u, ok := a.byKey[pub]
	if !ok {
		return refused(refuse(auth.ViaNKey, ErrUnknownKey, "nkey %s is not one of the configured nkey users", pub))
	}
	if err := verifyNonce(auth.ViaNKey, pub, sig, nonce); err != nil {
		return refused(err)
	}
	return auth.Principal{Name: u.Name, Groups: slices.Clone(u.Groups), Via: auth.ViaNKey}, time.Time{}, nil
}

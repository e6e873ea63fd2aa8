package natsconn

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"

	"github.com/prism-data/prism/subjects"
)

// Principal returns the name the credentials of o present, the name a
// secured Prism knows the caller by, and which setting it came from: the
// first that applies of
//   - the token's unverified "sub" claim, when the token is a JWT (OIDC
//     maps sub to the principal by default);
//   - the name of the user JWT in the credentials file;
//   - the client certificate's first email SAN, else its first URI SAN,
//     else its subject CN.
//
// This is the order Prism's authentication tries them in. An nkey names no
// principal the client can know (the server's configuration does), so it
// and no credential at all give "". A file that cannot be read or parsed
// is an error naming it.
func (o Options) Principal() (name, from string, err error) {
	if o.Token != "" {
		if sub := TokenSubject(o.Token); sub != "" {
			return sub, o.source("token"), nil
		}
	}
	if o.Creds != "" {
		uc, err := o.userClaims()
		if err != nil {
			return "", "", err
		}
		return uc.Name, o.source("creds"), nil
	}
	if o.NKey != "" {
		return "", "", nil
	}
	if o.TLSCert != "" {
		leaf, err := o.clientCert()
		if err != nil {
			return "", "", err
		}
		return CertName(leaf), o.source("tls-cert"), nil
	}
	return "", "", nil
}

// ResolvedInboxPrefix is the reply prefix Connect uses: InboxPrefix when
// set, else subjects.InboxPrefix of the principal (Principal), else ""
// (nats.go's _INBOX).
func (o Options) ResolvedInboxPrefix() (string, error) {
	if o.InboxPrefix != "" {
		return o.InboxPrefix, nil
	}
	name, _, err := o.Principal()
	if err != nil || name == "" {
		return "", err
	}
	return subjects.InboxPrefix(name), nil
}

// TokenSubject returns the "sub" claim of token when it is a JWT (three
// base64url parts, the middle one a JSON object), without verifying it:
// the server does. Anything else gives "".
func TokenSubject(token string) string {
	parts := strings.Split(token, ".")
	if len(parts) != 3 || len(parts[1]) > 64<<10 {
		return ""
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return ""
	}
	var claims struct {
		Sub string `json:"sub"`
	}
	if json.Unmarshal(payload, &claims) != nil {
		return ""
	}
	return claims.Sub
}

// CertName is the principal name of a client certificate: its first email
// SAN, else its first URI SAN, else its subject CN.
func CertName(c *x509.Certificate) string {
	switch {
	case len(c.EmailAddresses) > 0:
		return c.EmailAddresses[0]
	case len(c.URIs) > 0:
		return c.URIs[0].String()
	}
	return c.Subject.CommonName
}

// userClaims reads and checks the credentials file: a user JWT and a seed
// whose public key is the JWT's subject.
func (o Options) userClaims() (*jwt.UserClaims, error) {
	flag := o.source("creds")
	data, err := os.ReadFile(o.Creds)
	if err != nil {
		return nil, fileError(flag, o.Creds, err)
	}
	defer clear(data)
	// ParseDecoratedJWT takes undecorated content for the JWT itself;
	// decoding it tells a credentials file from anything else.
	token, err := jwt.ParseDecoratedJWT(data)
	if err != nil {
		return nil, badCredential("%s %s: not a credentials file (no user JWT in it)", flag, o.Creds)
	}
	uc, err := jwt.DecodeUserClaims(token)
	if err != nil {
		return nil, badCredential("%s %s: not a credentials file (no user JWT in it)", flag, o.Creds)
	}
	kp, err := jwt.ParseDecoratedUserNKey(data)
	if err != nil {
		return nil, badCredential("%s %s: no user nkey seed after the JWT", flag, o.Creds)
	}
	defer kp.Wipe()
	if pub, err := kp.PublicKey(); err != nil || pub != uc.Subject {
		return nil, badCredential("%s %s: the seed is not the key of the JWT's user %s", flag, o.Creds, uc.Subject)
	}
	return uc, nil
}

// nkeyPublic reads the nkey seed file and returns its public key.
func (o Options) nkeyPublic() (string, error) {
	flag := o.source("nkey")
	data, err := os.ReadFile(o.NKey)
	if err != nil {
		return "", fileError(flag, o.NKey, err)
	}
	defer clear(data)
	kp, err := nkeys.ParseDecoratedNKey(data)
	if err != nil {
		return "", badCredential("%s %s: no nkey seed in the file", flag, o.NKey)
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return "", badCredential("%s %s: the seed is not a user nkey (SU...)", flag, o.NKey)
	}
	return pub, nil
}

// clientCert loads the client certificate and key and returns the leaf.
func (o Options) clientCert() (*x509.Certificate, error) {
	switch {
	case o.TLSCert == "":
		return nil, badCredential("%s %s: needs %s, the certificate it is the key of", o.source("tls-key"), o.TLSKey, "--tls-cert")
	case o.TLSKey == "":
		return nil, badCredential("%s %s: needs %s, its private key", o.source("tls-cert"), o.TLSCert, "--tls-key")
	}
	for _, f := range [][2]string{{"tls-cert", o.TLSCert}, {"tls-key", o.TLSKey}} {
		if _, err := os.Stat(f[1]); err != nil {
			return nil, fileError(o.source(f[0]), f[1], err)
		}
	}
	pair, err := tls.LoadX509KeyPair(o.TLSCert, o.TLSKey)
	if err != nil {
		return nil, badCredential("%s %s with %s %s: %v", o.source("tls-cert"), o.TLSCert, o.source("tls-key"), o.TLSKey, err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return nil, badCredential("%s %s: %v", o.source("tls-cert"), o.TLSCert, err)
	}
	return leaf, nil
}

// rootCAs checks that the CA file holds at least one certificate.
func (o Options) rootCAs() error {
	flag := o.source("tls-ca")
	data, err := os.ReadFile(o.TLSCA)
	if err != nil {
		return fileError(flag, o.TLSCA, err)
	}
	if !x509.NewCertPool().AppendCertsFromPEM(data) {
		return badCredential("%s %s: no PEM certificate in the file", flag, o.TLSCA)
	}
	return nil
}

// fileError says which setting names a file that cannot be read.
func fileError(flag, path string, err error) error {
	if errors.Is(err, os.ErrNotExist) {
		return &credError{fmt.Sprintf("%s %s: no such file", flag, path), os.ErrNotExist}
	}
	if errors.Is(err, os.ErrPermission) {
		return &credError{fmt.Sprintf("%s %s: not readable by this user", flag, path), os.ErrPermission}
	}
	return fmt.Errorf("%s %s: %w", flag, path, err)
}

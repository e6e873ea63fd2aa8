// Package authntest builds the authorization requests the NATS server sends
// the auth callout, as a client with a given credential would cause them:
// for tests of authenticators and of the callout, without a server. The
// signatures are real (nkeys); nothing here weakens a check.
package authntest

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"fmt"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// Nonce returns a fresh random nonce in the server's format (11 random
// bytes, raw URL base64).
func Nonce() string {
	var b [11]byte
	_, _ = rand.Read(b[:])
	return base64.RawURLEncoding.EncodeToString(b[:])
}

// Request returns a request from a fresh server key with no client fields
// filled in, as the server builds one before adding the client's.
func Request() *jwt.AuthorizationRequestClaims {
	kp, _ := nkeys.CreateServer()
	pub, _ := kp.PublicKey()
	r := jwt.NewAuthorizationRequestClaims(pub)
	r.Server = jwt.ServerID{Name: "test", ID: pub}
	return r
}

// SignNonce returns kp's signature over nonce as a client puts it in CONNECT
// (raw URL base64).
func SignNonce(kp nkeys.KeyPair, nonce string) (string, error) {
	sig, err := kp.Sign([]byte(nonce))
	if err != nil {
		return "", fmt.Errorf("sign nonce: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(sig), nil
}

// Token returns the request of a client that connects with token.
func Token(token string) *jwt.AuthorizationRequestClaims {
	r := Request()
	r.ConnectOptions.Token = token
	return r
}

// NKey returns the request of a client that connects with user nkey kp and
// signs nonce.
func NKey(kp nkeys.KeyPair, nonce string) (*jwt.AuthorizationRequestClaims, error) {
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	sig, err := SignNonce(kp, nonce)
	if err != nil {
		return nil, err
	}
	r := Request()
	r.ConnectOptions.Nkey = pub
	r.ConnectOptions.SignedNonce = sig
	r.ClientInformation.Nonce = nonce
	return r, nil
}

// Creds returns the request of a client that connects with the creds file
// content creds (a user JWT and its seed) and signs nonce.
func Creds(creds []byte, nonce string) (*jwt.AuthorizationRequestClaims, error) {
	ujwt, err := jwt.ParseDecoratedJWT(creds)
	if err != nil {
		return nil, fmt.Errorf("creds: %w", err)
	}
	kp, err := jwt.ParseDecoratedUserNKey(creds)
	if err != nil {
		return nil, fmt.Errorf("creds: %w", err)
	}
	return UserJWT(ujwt, kp, nonce)
}

// UserJWT returns the request of a client that connects with user JWT ujwt
// and signs nonce with kp.
func UserJWT(ujwt string, kp nkeys.KeyPair, nonce string) (*jwt.AuthorizationRequestClaims, error) {
	sig, err := SignNonce(kp, nonce)
	if err != nil {
		return nil, err
	}
	r := Request()
	r.ConnectOptions.JWT = ujwt
	r.ConnectOptions.SignedNonce = sig
	r.ClientInformation.Nonce = nonce
	return r, nil
}

// Cert returns the request of a client whose TLS certificate chain (leaf
// first) the server verified.
func Cert(chain ...*x509.Certificate) *jwt.AuthorizationRequestClaims {
	r := Request()
	r.TLS = &jwt.ClientTLS{Version: "1.3", VerifiedChains: []jwt.StringList{PEMs(chain...)}}
	return r
}

// PEMs encodes each certificate as the server does in ClientTLS.
func PEMs(certs ...*x509.Certificate) jwt.StringList {
	var out jwt.StringList
	for _, c := range certs {
		out = append(out, string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})))
	}
	return out
}

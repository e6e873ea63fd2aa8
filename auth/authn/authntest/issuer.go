package authntest

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/json"
	"encoding/pem"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// Key is a signing key of an Issuer.
type Key struct {
	ID  string
	Alg jose.SignatureAlgorithm
	key crypto.Signer
}

// NewKey returns a fresh key with id kid: ES256 for alg ES256, else a
// 2048-bit RSA key for RS256.
func NewKey(tb testing.TB, kid string, alg jose.SignatureAlgorithm) Key {
	tb.Helper()
	var (
		k   crypto.Signer
		err error
	)
	switch alg {
	case jose.ES256:
		k, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	case jose.RS256:
		k, err = rsa.GenerateKey(rand.Reader, 2048)
	default:
		tb.Fatalf("authntest: unsupported alg %s", alg)
	}
	if err != nil {
		tb.Fatal(err)
	}
	return Key{ID: kid, Alg: alg, key: k}
}

// Issuer is an OIDC issuer served over HTTPS by httptest: discovery at
// /.well-known/openid-configuration, its JWKS at /jwks. Keys can be
// published while it runs (rotation). Safe for concurrent use.
type Issuer struct {
	// URL is the issuer URL (the iss of its tokens).
	URL string
	// CAFile is a PEM file holding the server's certificate, for the
	// ca_file of an OIDC configuration.
	CAFile string

	srv       *httptest.Server
	mu        sync.Mutex
	published []Key
	fetches   atomic.Int64
}

// NewIssuer starts an issuer that publishes one ES256 key with id "k1"
// and stops it at the end of the test.
func NewIssuer(tb testing.TB) (*Issuer, Key) {
	tb.Helper()
	iss := &Issuer{}
	mux := http.NewServeMux()
	mux.HandleFunc("/.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(map[string]any{
			"issuer":                                iss.URL,
			"jwks_uri":                              iss.URL + "/jwks",
			"authorization_endpoint":                iss.URL + "/auth",
			"token_endpoint":                        iss.URL + "/token",
			"id_token_signing_alg_values_supported": []string{"RS256", "ES256"},
		})
	})
	mux.HandleFunc("/jwks", func(w http.ResponseWriter, r *http.Request) {
		iss.fetches.Add(1)
		iss.mu.Lock()
		var set jose.JSONWebKeySet
		for _, k := range iss.published {
			set.Keys = append(set.Keys, jose.JSONWebKey{Key: k.key.Public(), KeyID: k.ID, Algorithm: string(k.Alg), Use: "sig"})
		}
		iss.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(set)
	})
	iss.srv = httptest.NewUnstartedServer(mux)
	// Clients that do not trust the issuer (a test of that) would log.
	iss.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	iss.srv.StartTLS()
	tb.Cleanup(iss.srv.Close)
	iss.URL = iss.srv.URL
	iss.CAFile = filepath.Join(tb.TempDir(), "issuer-ca.pem")
	if err := os.WriteFile(iss.CAFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: iss.srv.Certificate().Raw}), 0o600); err != nil {
		tb.Fatal(err)
	}
	k := NewKey(tb, "k1", jose.ES256)
	iss.Publish(k)
	return iss, k
}

// JWKSURL is where the issuer serves its keys.
func (i *Issuer) JWKSURL() string { return i.URL + "/jwks" }

// Publish adds k to the issuer's JWKS.
func (i *Issuer) Publish(k Key) {
	i.mu.Lock()
	defer i.mu.Unlock()
	i.published = append(i.published, k)
}

// Fetches is how many times the JWKS has been served.
func (i *Issuer) Fetches() int { return int(i.fetches.Load()) }

// SignToken returns a compact JWS of claims signed with k (its kid in the
// header), whether or not k is published.
func SignToken(tb testing.TB, k Key, claims map[string]any) string {
	tb.Helper()
	opts := (&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), k.ID)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: k.Alg, Key: k.key}, opts)
	if err != nil {
		tb.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		tb.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		tb.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

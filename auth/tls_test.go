package auth_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/subjects"
)

// pki is a CA made for one test, and files it wrote (0600).
type pki struct {
	dir    string
	ca     *x509.Certificate
	caKey  *ecdsa.PrivateKey
	caFile string
	serial int64
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	p := &pki{dir: t.TempDir()}
	p.caKey = mustECKey(t)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "prism test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &p.caKey.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	if p.ca, err = x509.ParseCertificate(der); err != nil {
		t.Fatal(err)
	}
	p.caFile = p.write(t, "ca.pem", "CERTIFICATE", der)
	p.serial = 1
	return p
}

func mustECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func (p *pki) write(t *testing.T, name, typ string, der []byte) string {
	t.Helper()
	path := filepath.Join(p.dir, name)
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// issue writes a certificate and key signed by the CA; it returns their
// paths.
func (p *pki) issue(t *testing.T, name string, edit func(*x509.Certificate)) (string, string) {
	t.Helper()
	key := mustECKey(t)
	p.serial++
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(p.serial), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	edit(tmpl)
	der, err := x509.CreateCertificate(rand.Reader, tmpl, p.ca, &key.PublicKey, p.caKey)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return p.write(t, name+".pem", "CERTIFICATE", der), p.write(t, name+"-key.pem", "EC PRIVATE KEY", kder)
}

// TestServerConfigTLS: with TLS.Verify the server requires a client
// certificate and hands its verified chain to the callout, which names
// the principal from it.
func TestServerConfigTLS(t *testing.T) {
	ca := newPKI(t)
	srvCert, srvKey := ca.issue(t, "server", func(c *x509.Certificate) { c.IPAddresses = []net.IP{net.IPv4(127, 0, 0, 1)} })
	svcCert, svcKey := ca.issue(t, "prism-service", func(*x509.Certificate) {})
	aliceCert, aliceKey := ca.issue(t, "alice", func(c *x509.Certificate) { c.EmailAddresses = []string{alice.Name} })
	e := newEnv(t, envOptions{
		tls:     &auth.TLSFiles{Cert: srvCert, Key: srvKey, CA: ca.caFile, Verify: true},
		svcCert: svcCert, svcKey: svcKey,
	})
	e.respondInfo(subjects.AllAdmin())

	c := e.mustConnect("", alice.Name, nats.ClientCert(aliceCert, aliceKey), nats.RootCAs(ca.caFile))
	reply, err := c.Request(subjects.Admin("ns.list"), nil, waitFor)
	if err != nil {
		t.Fatalf("admin request with a certificate: %v", err)
	}
	var ri requestInfo
	if err := json.Unmarshal(reply.Data, &ri); err != nil {
		t.Fatal(err)
	}
	want := auth.Principal{Name: alice.Name, Via: auth.ViaTLS}
	if ri.Account != subjects.AppAccount || ri.User != auth.EncodePrincipal(want) {
		t.Fatalf("request info %+v, want %s", ri, auth.EncodePrincipal(want))
	}
	if _, err := nats.Connect(e.srv.ClientURL(), nats.RootCAs(ca.caFile), nats.NoReconnect()); err == nil {
		t.Fatal("connected without a client certificate")
	}
}

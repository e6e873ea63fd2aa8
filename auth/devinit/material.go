package devinit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"slices"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nkeys"
)

// material is the keys Init generates, held only while the files are made.
type material struct {
	caKey      *ecdsa.PrivateKey
	ca         *x509.Certificate
	issuer     nkeys.KeyPair
	userIssuer nkeys.KeyPair
	service    nkeys.KeyPair
}

// file is one file to write; data may hold a secret and is zeroed after.
type file struct {
	path string
	data []byte
}

func wipe(files []file) {
	for _, f := range files {
		clear(f.data)
	}
}

// wipe overwrites the nkey seeds; the ECDSA keys are dropped with m.
func (m *material) wipe() {
	for _, kp := range []nkeys.KeyPair{m.issuer, m.userIssuer, m.service} {
		if kp != nil {
			kp.Wipe()
		}
	}
}

func newMaterial(opts Options) (*material, error) {
	m := &material{}
	var err error
	if m.issuer, err = nkeys.CreateAccount(); err != nil {
		return nil, err
	}
	if m.userIssuer, err = nkeys.CreateAccount(); err != nil {
		return nil, err
	}
	if m.service, err = nkeys.CreateUser(); err != nil {
		return nil, err
	}
	if m.caKey, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader); err != nil {
		return nil, err
	}
	now := opts.Now()
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: "Prism development CA", Organization: []string{"Prism development"}},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(opts.Validity),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature,
		BasicConstraintsValid: true,
		IsCA:                  true,
		MaxPathLenZero:        true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &m.caKey.PublicKey, m.caKey)
	if err != nil {
		return nil, fmt.Errorf("create the CA: %w", err)
	}
	if m.ca, err = x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	return m, nil
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 126))
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return n
}

// files makes the content of every file of r. On error the files made so
// far are returned too, for wiping.
func (m *material) files(r *Result, opts Options) ([]file, error) {
	var out []file
	add := func(path string, data []byte) { out = append(out, file{path, data}) }
	add(r.CACert, certPEM(m.ca.Raw))
	caKey, err := keyPEM(m.caKey)
	if err != nil {
		return out, err
	}
	add(r.CAKey, caKey)

	hosts := append([]string{"localhost", "127.0.0.1", "::1"}, opts.Hosts...)
	cert, key, err := m.leaf(opts, pkix.Name{CommonName: "Prism development server"}, hosts, x509.ExtKeyUsageServerAuth)
	if err != nil {
		return out, fmt.Errorf("create the server certificate: %w", err)
	}
	add(r.ServerCert, cert)
	add(r.ServerKey, key)

	for _, s := range []struct {
		path string
		kp   nkeys.KeyPair
	}{{r.IssuerSeed, m.issuer}, {r.UserIssuerSeed, m.userIssuer}, {r.ServiceSeed, m.service}} {
		seed, err := s.kp.Seed()
		if err != nil {
			return out, err
		}
		add(s.path, append(seed, '\n'))
	}
	if r.IssuerPub, err = m.issuer.PublicKey(); err != nil {
		return out, err
	}
	if r.UserIssuerPub, err = m.userIssuer.PublicKey(); err != nil {
		return out, err
	}
	if r.ServicePub, err = m.service.PublicKey(); err != nil {
		return out, err
	}

	for i := range r.Users {
		u := &r.Users[i]
		nk, err := nkeys.CreateUser()
		if err != nil {
			return out, err
		}
		seed, err := nk.Seed()
		if err != nil {
			return out, err
		}
		add(u.NKey, append(slices.Clone(seed), '\n'))
		u.NKeyPub, err = nk.PublicKey()
		nk.Wipe()
		if err != nil {
			return out, err
		}
		creds, err := m.creds(*u, opts)
		if err != nil {
			return out, fmt.Errorf("creds of %s: %w", u.Name, err)
		}
		add(u.Creds, creds)
		cert, key, err := m.leaf(opts, pkix.Name{CommonName: u.Name}, nil, x509.ExtKeyUsageClientAuth)
		if err != nil {
			return out, fmt.Errorf("certificate of %s: %w", u.Name, err)
		}
		add(u.Cert, cert)
		add(u.Key, key)
	}

	yml, err := authYAML(r, opts)
	if err != nil {
		return out, err
	}
	add(r.AuthConfig, yml)
	return out, nil
}

// leaf issues a certificate signed by the CA for subject, with hosts as
// DNS or IP SANs, and returns it and its key as PEM.
func (m *material) leaf(opts Options, subject pkix.Name, hosts []string, usage x509.ExtKeyUsage) (certOut, keyOut []byte, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	now := opts.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial(),
		Subject:      subject,
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(opts.Validity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{usage},
	}
	for _, h := range hosts {
		if ip := net.ParseIP(h); ip != nil {
			tmpl.IPAddresses = append(tmpl.IPAddresses, ip)
		} else {
			tmpl.DNSNames = append(tmpl.DNSNames, h)
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, m.ca, &key.PublicKey, m.caKey)
	if err != nil {
		return nil, nil, err
	}
	keyOut, err = keyPEM(key)
	if err != nil {
		return nil, nil, err
	}
	return certPEM(der), keyOut, nil
}

// creds issues u's user JWT, signed by the user issuer, and formats it
// with a fresh user seed as a .creds file.
func (m *material) creds(u UserFiles, opts Options) ([]byte, error) {
	kp, err := nkeys.CreateUser()
	if err != nil {
		return nil, err
	}
	defer kp.Wipe()
	pub, err := kp.PublicKey()
	if err != nil {
		return nil, err
	}
	uc := jwt.NewUserClaims(pub)
	uc.Name = u.Name
	uc.Expires = opts.Now().Add(opts.Validity).Unix()
	for _, g := range u.Groups {
		uc.Tags.Add("group:" + g)
	}
	token, err := uc.Encode(m.userIssuer)
	if err != nil {
		return nil, err
	}
	seed, err := kp.Seed()
	if err != nil {
		return nil, err
	}
	defer clear(seed)
	return jwt.FormatUserConfig(token, seed)
}

func certPEM(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

func keyPEM(k *ecdsa.PrivateKey) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	defer clear(der)
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

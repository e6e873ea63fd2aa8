package authn

import (
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"github.com/nats-io/jwt/v2"

	"github.com/prism-data/prism/auth"
)

// maxChainCerts bounds how many certificates of a presented chain are
// parsed.
const maxChainCerts = 16

// certAuth accepts client certificates that chain to the configured CA.
type certAuth struct {
	roots  *x509.CertPool
	groups map[string][]string
	now    func() time.Time
}

func newCerts(cfg CertConfig, now func() time.Time) (*certAuth, error) {
	roots, err := loadPool(cfg.CAFile)
	if err != nil {
		return nil, invalidConfig("tls.ca_file", "%v", err)
	}
	a := &certAuth{roots: roots, groups: make(map[string][]string, len(cfg.Groups)), now: now}
	for name, g := range cfg.Groups {
		a.groups[name] = slices.Clone(g)
	}
	return a, nil
}

// loadPool reads a PEM bundle of CA certificates.
func loadPool(path string) (*x509.CertPool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(b) {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return pool, nil
}

// authenticate verifies the chain the server verified, again, against
// Prism's own CA pool (the server may trust more CAs than Prism does), and
// maps the leaf to a principal. It expires when the first certificate of
// the verified chain does.
func (a *certAuth) authenticate(t *jwt.ClientTLS) (auth.Principal, time.Time, error) {
	if len(t.VerifiedChains) == 0 {
		return refused(refuse(auth.ViaTLS, ErrUntrusted, "the NATS server did not verify the client certificate: enable verify in its tls block"))
	}
	var pems []string
	for _, c := range t.VerifiedChains {
		pems = append(pems, c...)
	}
	certs, err := parseChain(pems)
	if err != nil {
		return refused(refuse(auth.ViaTLS, ErrMalformed, "the client certificate chain cannot be parsed: %v", err))
	}
	// Every verified chain starts with the same leaf; the rest may
	// serve as intermediates.
	leaf := certs[0]
	inter := x509.NewCertPool()
	for _, c := range certs[1:] {
		if !c.Equal(leaf) {
			inter.AddCert(c)
		}
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots:         a.roots,
		Intermediates: inter,
		CurrentTime:   a.now(),
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	})
	if err != nil {
		var inv x509.CertificateInvalidError
		if errors.As(err, &inv) && inv.Reason == x509.Expired {
			return refused(refuse(auth.ViaTLS, ErrExpired, "the client certificate (or its chain) is expired or not yet valid"))
		}
		return refused(refuse(auth.ViaTLS, ErrUntrusted, "the client certificate does not chain to the configured CA (tls.ca_file) for client authentication"))
	}
	name, err := certName(leaf)
	if err != nil {
		return refused(refuse(auth.ViaTLS, ErrBadIdentity, "%v", err))
	}
	exp := leaf.NotAfter
	for _, c := range chains[0] {
		if c.NotAfter.Before(exp) {
			exp = c.NotAfter
		}
	}
	return auth.Principal{Name: name, Groups: slices.Clone(a.groups[name]), Via: auth.ViaTLS}, exp, nil
}

// parseChain decodes the CERTIFICATE blocks of pems, in order. It fails on
// no certificate, more than maxChainCerts, or a block that does not parse.
func parseChain(pems []string) ([]*x509.Certificate, error) {
	var certs []*x509.Certificate
	for _, p := range pems {
		rest := []byte(p)
		for {
			var b *pem.Block
			b, rest = pem.Decode(rest)
			if b == nil {
				break
			}
			if b.Type != "CERTIFICATE" {
				continue
			}
			if len(certs) == maxChainCerts {
				return nil, fmt.Errorf("more than %d certificates", maxChainCerts)
			}
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				return nil, fmt.Errorf("certificate %d: %v", len(certs), err)
			}
			certs = append(certs, c)
		}
	}
	if len(certs) == 0 {
		return nil, errors.New("no PEM certificate")
	}
	return certs, nil
}

// certName maps a certificate to a principal name: its first email SAN,
// else its first URI SAN, else its subject common name.
func certName(c *x509.Certificate) (string, error) {
	var name, from string
	switch {
	case len(c.EmailAddresses) > 0:
		name, from = c.EmailAddresses[0], "email SAN"
	case len(c.URIs) > 0:
		name, from = c.URIs[0].String(), "URI SAN"
	case c.Subject.CommonName != "":
		name, from = c.Subject.CommonName, "common name"
	default:
		return "", errors.New("the client certificate has no email SAN, URI SAN or common name to name the principal by")
	}
	if err := checkName(name); err != nil {
		return "", fmt.Errorf("the client certificate's %s is not a usable name: %v", from, err)
	}
	return name, nil
}

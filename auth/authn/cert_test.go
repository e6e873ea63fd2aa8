package authn_test

import (
	"crypto/x509"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/auth/authn"
	"github.com/prism-data/prism/auth/authn/authntest"
)

func TestCert(t *testing.T) {
	ca := authntest.NewCA(t, "Prism test CA")
	inter := ca.Intermediate(t, "Prism test intermediate")
	otherCA := authntest.NewCA(t, "Other CA")
	now := time.Now().Truncate(time.Second)
	notAfter := now.Add(2 * time.Hour)
	a := newChain(t, authn.Config{TLS: authn.CertConfig{
		CAFile: ca.WriteFile(t),
		Groups: map[string][]string{"alice@example.com": {"admins"}},
	}}, now)
	leaf := func(l authntest.Leaf) authntest.Leaf {
		if l.NotAfter.IsZero() {
			l.NotAfter = notAfter
		}
		return l
	}

	tests := []struct {
		name  string
		chain func() []*x509.Certificate
		want  want
	}{
		{name: "email SAN first, groups mapped", chain: func() []*x509.Certificate {
			return []*x509.Certificate{ca.Issue(t, leaf(authntest.Leaf{CN: "alice", Emails: []string{"alice@example.com", "a2@example.com"}, URIs: []string{"spiffe://prism/alice"}})), ca.Cert}
		}, want: want{name: "alice@example.com", groups: []string{"admins"}, via: auth.ViaTLS, exp: notAfter}},
		{name: "URI SAN when no email", chain: func() []*x509.Certificate {
			return []*x509.Certificate{ca.Issue(t, leaf(authntest.Leaf{CN: "svc", URIs: []string{"spiffe://prism/svc", "spiffe://prism/x"}}))}
		}, want: want{name: "spiffe://prism/svc", via: auth.ViaTLS, exp: notAfter}},
		{name: "CN last", chain: func() []*x509.Certificate {
			return []*x509.Certificate{ca.Issue(t, leaf(authntest.Leaf{CN: "app"})), ca.Cert}
		}, want: want{name: "app", via: auth.ViaTLS, exp: notAfter}},
		{name: "through an intermediate", chain: func() []*x509.Certificate {
			return []*x509.Certificate{inter.Issue(t, leaf(authntest.Leaf{CN: "app"})), inter.Cert, ca.Cert}
		}, want: want{name: "app", via: auth.ViaTLS, exp: notAfter}},
		{name: "expiry is the chain's earliest", chain: func() []*x509.Certificate {
			return []*x509.Certificate{inter.Issue(t, authntest.Leaf{CN: "app", NotAfter: now.Add(72 * time.Hour)}), inter.Cert}
		}, want: want{name: "app", via: auth.ViaTLS, exp: inter.Cert.NotAfter}},
		{name: "other CA", chain: func() []*x509.Certificate {
			return []*x509.Certificate{otherCA.Issue(t, leaf(authntest.Leaf{CN: "app"})), otherCA.Cert}
		}, want: want{err: authn.ErrUntrusted}},
		{name: "intermediate missing", chain: func() []*x509.Certificate {
			return []*x509.Certificate{inter.Issue(t, leaf(authntest.Leaf{CN: "app"}))}
		}, want: want{err: authn.ErrUntrusted}},
		{name: "expired", chain: func() []*x509.Certificate {
			return []*x509.Certificate{ca.Issue(t, authntest.Leaf{CN: "app", NotBefore: now.Add(-2 * time.Hour), NotAfter: now.Add(-time.Second)})}
		}, want: want{err: authn.ErrExpired}},
		{name: "server auth only", chain: func() []*x509.Certificate {
			return []*x509.Certificate{ca.Issue(t, leaf(authntest.Leaf{CN: "app", ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}))}
		}, want: want{err: authn.ErrUntrusted}},
		{name: "no name", chain: func() []*x509.Certificate {
			return []*x509.Certificate{ca.Issue(t, leaf(authntest.Leaf{}))}
		}, want: want{err: authn.ErrBadIdentity}},
		{name: "CN posing as a group", chain: func() []*x509.Certificate {
			return []*x509.Certificate{ca.Issue(t, leaf(authntest.Leaf{CN: "group:admins"}))}
		}, want: want{err: authn.ErrBadIdentity}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check(t, a, authntest.Cert(tt.chain()...), tt.want)
		})
	}

	t.Run("not verified by the server", func(t *testing.T) {
		r := authntest.Request()
		r.TLS = &jwt.ClientTLS{Certs: authntest.PEMs(ca.Issue(t, leaf(authntest.Leaf{CN: "app"})))}
		check(t, a, r, want{err: authn.ErrUntrusted})
	})
	t.Run("garbage PEM", func(t *testing.T) {
		r := authntest.Request()
		r.TLS = &jwt.ClientTLS{VerifiedChains: []jwt.StringList{{"-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"}}}
		check(t, a, r, want{err: authn.ErrMalformed})
	})
}

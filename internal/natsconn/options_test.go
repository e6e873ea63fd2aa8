package natsconn

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

func newFlagSet() *pflag.FlagSet { return pflag.NewFlagSet("test", pflag.ContinueOnError) }

// The flags default to the NATS_* variables; --help shows the URL's
// default once, with its password masked, and never a token.
func TestRegisterDefaultsAndHelp(t *testing.T) {
	t.Setenv(EnvURL, "nats://ops:pa55word@nats.example:4222")
	t.Setenv(EnvCreds, "/etc/prism/app.creds")
	t.Setenv(EnvToken, "tok-s3cret")
	t.Setenv(EnvTLSCA, "/etc/prism/ca.pem")
	var o Options
	fs := newFlagSet()
	o.Register(fs, "NATS URL of the running Prism")
	if err := fs.Parse([]string{"--tls-ca", "/tmp/ca.pem"}); err != nil {
		t.Fatal(err)
	}
	if o.URL != "nats://ops:pa55word@nats.example:4222" || o.Creds != "/etc/prism/app.creds" || o.Token != "tok-s3cret" || o.TLSCA != "/tmp/ca.pem" {
		t.Fatalf("options from the environment and flags: %v", o)
	}
	help := fs.FlagUsages()
	for _, bad := range []string{"tok-s3cret", "pa55word", "/etc/prism/app.creds"} {
		if strings.Contains(help, bad) {
			t.Errorf("--help shows %q:\n%s", bad, help)
		}
	}
	for _, want := range []string{`(default "nats://redacted@nats.example:4222")`, "(default $NATS_CREDS)", "(default $NATS_TOKEN; never printed)", "--tls-cert", "--tls-key", "--nkey", "--inbox-prefix"} {
		if !strings.Contains(help, want) {
			t.Errorf("--help lacks %q:\n%s", want, help)
		}
	}
	if n := strings.Count(help, "(default "); n != 8 {
		t.Errorf("--help names %d defaults, want one per flag (8):\n%s", n, help)
	}
	if got := o.explicitCredentials(); len(got) != 1 || got[0] != "--tls-ca" {
		t.Errorf("explicitCredentials = %v; want [--tls-ca]", got)
	}
	if got := o.source("creds"); got != "$NATS_CREDS" {
		t.Errorf("source of creds from the environment = %q", got)
	}
	if got := o.source("tls-ca"); got != "--tls-ca" {
		t.Errorf("source of a flag = %q", got)
	}
}

// Without NATS_URL, --nats-url defaults to nats.go's default URL.
func TestRegisterDefaultURL(t *testing.T) {
	t.Setenv(EnvURL, "")
	var o Options
	fs := newFlagSet()
	o.Register(fs, "NATS URL")
	if o.URL != "nats://127.0.0.1:4222" {
		t.Fatalf("URL = %q", o.URL)
	}
	o2 := Options{}
	fs2 := newFlagSet()
	o2.RegisterCredentials(fs2)
	if fs2.Lookup("nats-url") != nil || fs2.Lookup("creds") == nil {
		t.Fatal("RegisterCredentials: want the credential flags without --nats-url")
	}
}

// %v, %+v and %#v of Options show no token and no URL password.
func TestStringRedacts(t *testing.T) {
	o := Options{URL: "nats://u:pa55@h:4222,nats://tok3n@h2:4222", Token: "tok-s3cret", Creds: "/x.creds"}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		got := fmt.Sprintf(verb, o)
		for _, bad := range []string{"tok-s3cret", "pa55", "tok3n"} {
			if strings.Contains(got, bad) {
				t.Errorf("%s of Options = %s: shows %q", verb, got, bad)
			}
		}
		if !strings.Contains(got, "/x.creds") {
			t.Errorf("%s of Options = %s: want the creds path", verb, got)
		}
	}
}

func TestCertName(t *testing.T) {
	u, _ := url.Parse("spiffe://prism/app")
	tests := []struct {
		name string
		cert x509.Certificate
		want string
	}{
		{"email first", x509.Certificate{EmailAddresses: []string{"a@x", "b@x"}, URIs: []*url.URL{u}, Subject: pkix.Name{CommonName: "cn"}}, "a@x"},
		{"URI without email", x509.Certificate{URIs: []*url.URL{u}, Subject: pkix.Name{CommonName: "cn"}}, "spiffe://prism/app"},
		{"CN last", x509.Certificate{Subject: pkix.Name{CommonName: "cn"}}, "cn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CertName(&tt.cert); got != tt.want {
				t.Fatalf("CertName = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestTokenSubject(t *testing.T) {
	tests := []struct {
		name, token, want string
	}{
		{"JWT", unsignedJWT(`{"sub":"alice","iss":"https://idp"}`), "alice"},
		{"JWT without sub", unsignedJWT(`{"iss":"https://idp"}`), ""},
		{"plain token", "s3cret", ""},
		{"two parts", "a.b", ""},
		{"payload not base64", "a.!!!.c", ""},
		{"payload not JSON", "a." + strings.TrimSuffix(unsignedJWT(`x`)[strings.Index(unsignedJWT(`x`), ".")+1:], ".c2ln") + ".c", ""},
		{"sub not a string", unsignedJWT(`{"sub":1}`), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := TokenSubject(tt.token); got != tt.want {
				t.Fatalf("TokenSubject = %q, want %q", got, tt.want)
			}
		})
	}
}

// TokenSubject reads a token the user supplied: it never panics, and what
// it returns is the JWT's sub, which a JWT round trip gives back.
func FuzzTokenSubject(f *testing.F) {
	for _, s := range []string{"", "a.b.c", unsignedJWT(`{"sub":"alice"}`), unsignedJWT(`{"sub":""}`), "..", "a.e30.c", unsignedJWT(`[1,2]`)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, token string) {
		sub := TokenSubject(token)
		if sub != "" && strings.Count(token, ".") != 2 {
			t.Fatalf("TokenSubject(%q) = %q from a token that is not three parts", token, sub)
		}
	})
}

func TestRedact(t *testing.T) {
	tests := []struct{ in, want string }{
		{"nats://h:4222", "nats://h:4222"},
		{"nats://u:p@h:4222", "nats://redacted@h:4222"},
		{"nats://tok@h:4222,nats://h2:4222", "nats://redacted@h:4222,nats://h2:4222"},
		{"", ""},
	}
	for _, tt := range tests {
		if got := Redact(tt.in); got != tt.want {
			t.Errorf("Redact(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

package devinit_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"
	"go.yaml.in/yaml/v3"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/auth/authn"
	"github.com/prism-data/prism/auth/authn/authntest"
	"github.com/prism-data/prism/auth/devinit"
)

func loadFile(t *testing.T, path string) devinit.File {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var f devinit.File
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&f); err != nil {
		t.Fatalf("auth.yaml does not load: %v\n%s", err, b)
	}
	return f
}

func readCert(t *testing.T, path string) *x509.Certificate {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blk, _ := pem.Decode(b)
	if blk == nil || blk.Type != "CERTIFICATE" {
		t.Fatalf("%s holds no certificate", path)
	}
	c, err := x509.ParseCertificate(blk.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestInit(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "auth")
	r, err := devinit.Init(dir, devinit.Options{})
	if err != nil {
		t.Fatal(err)
	}

	f := loadFile(t, r.AuthConfig)
	if strings.Join(f.Admins, ",") != "group:admins" {
		t.Fatalf("admins = %q", f.Admins)
	}
	if f.Authn.Creds.IssuerPub != r.UserIssuerPub || f.Callout.Issuer != r.IssuerPub || f.Service.Public != r.ServicePub || f.UserIssuer.Public != r.UserIssuerPub {
		t.Fatalf("auth.yaml public keys do not match the result: %+v", f)
	}
	if f.Callout.IssuerSeedFile != r.IssuerSeed || f.Service.SeedFile != r.ServiceSeed || f.UserIssuer.SeedFile != r.UserIssuerSeed ||
		f.ServerTLS.CertFile != r.ServerCert || f.ServerTLS.KeyFile != r.ServerKey || f.ServerTLS.CAFile != r.CACert || f.Authn.TLS.CAFile != r.CACert {
		t.Fatalf("auth.yaml paths do not match the result: %+v", f)
	}

	// The seeds are of the right kind and match the public keys.
	for _, s := range []struct {
		path, pub string
		kind      func(string) bool
	}{{r.IssuerSeed, r.IssuerPub, nkeys.IsValidPublicAccountKey}, {r.UserIssuerSeed, r.UserIssuerPub, nkeys.IsValidPublicAccountKey}, {r.ServiceSeed, r.ServicePub, nkeys.IsValidPublicUserKey}} {
		b, err := os.ReadFile(s.path)
		if err != nil {
			t.Fatal(err)
		}
		kp, err := nkeys.FromSeed(bytes.TrimSpace(b))
		if err != nil {
			t.Fatalf("%s: %v", s.path, err)
		}
		pub, _ := kp.PublicKey()
		if pub != s.pub || !s.kind(pub) {
			t.Fatalf("%s: public key %s, want %s of the right kind", s.path, pub, s.pub)
		}
	}

	// The server certificate serves the loopback names and chains to the CA.
	if _, err := tls.LoadX509KeyPair(r.ServerCert, r.ServerKey); err != nil {
		t.Fatalf("server key pair: %v", err)
	}
	roots := x509.NewCertPool()
	roots.AddCert(readCert(t, r.CACert))
	srv := readCert(t, r.ServerCert)
	for _, host := range []string{"localhost", "127.0.0.1", "::1"} {
		if _, err := srv.Verify(x509.VerifyOptions{DNSName: host, Roots: roots, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}); err != nil {
			t.Fatalf("server certificate for %s: %v", host, err)
		}
	}

	// Every user authenticates with its creds and with its certificate.
	a, err := authn.New(context.Background(), f.Authn)
	if err != nil {
		t.Fatalf("authn.New(auth.yaml): %v", err)
	}
	wantGroups := map[string]string{"admin": "admins", "app": ""}
	if len(r.Users) != len(wantGroups) {
		t.Fatalf("users = %+v", r.Users)
	}
	for _, u := range r.Users {
		creds, err := os.ReadFile(u.Creds)
		if err != nil {
			t.Fatal(err)
		}
		req, err := authntest.Creds(creds, authntest.Nonce())
		if err != nil {
			t.Fatal(err)
		}
		p, exp, err := a.Authenticate(context.Background(), req)
		if err != nil {
			t.Fatalf("creds of %s: %v", u.Name, err)
		}
		if p.Name != u.Name || p.Via != auth.ViaCreds || strings.Join(p.Groups, ",") != wantGroups[u.Name] || exp.IsZero() {
			t.Fatalf("creds of %s: principal %+v exp %v", u.Name, p, exp)
		}

		seed, err := os.ReadFile(u.NKey)
		if err != nil {
			t.Fatal(err)
		}
		kp, err := nkeys.FromSeed(bytes.TrimSpace(seed))
		if err != nil {
			t.Fatalf("nkey of %s: %v", u.Name, err)
		}
		req, err = authntest.NKey(kp, authntest.Nonce())
		if err != nil {
			t.Fatal(err)
		}
		p, exp, err = a.Authenticate(context.Background(), req)
		if err != nil {
			t.Fatalf("nkey of %s: %v", u.Name, err)
		}
		if p.Name != u.Name || p.Via != auth.ViaNKey || strings.Join(p.Groups, ",") != wantGroups[u.Name] || !exp.IsZero() || req.ConnectOptions.Nkey != u.NKeyPub {
			t.Fatalf("nkey of %s: principal %+v exp %v", u.Name, p, exp)
		}

		if _, err := tls.LoadX509KeyPair(u.Cert, u.Key); err != nil {
			t.Fatalf("key pair of %s: %v", u.Name, err)
		}
		leaf := readCert(t, u.Cert)
		p, exp, err = a.Authenticate(context.Background(), authntest.Cert(leaf, readCert(t, r.CACert)))
		if err != nil {
			t.Fatalf("certificate of %s: %v", u.Name, err)
		}
		if p.Name != u.Name || p.Via != auth.ViaTLS || strings.Join(p.Groups, ",") != wantGroups[u.Name] || !exp.Equal(leaf.NotAfter) {
			t.Fatalf("certificate of %s: principal %+v exp %v", u.Name, p, exp)
		}
	}

	// Every file is 0600, every directory 0700, and the result lists them.
	var found []string
	err = filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700 | fs.ModeDir
		} else {
			found = append(found, path)
		}
		if info.Mode() != want {
			t.Errorf("%s: mode %v, want %v", path, info.Mode(), want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	listed := r.Files()
	if len(found) != len(listed) {
		t.Fatalf("wrote %d files %q, result lists %d %q", len(found), found, len(listed), listed)
	}
	for _, p := range listed {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("listed file: %v", err)
		}
	}
}

// snapshot reads every file under dir.
func snapshot(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		out[path] = string(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestInitRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	r, err := devinit.Init(dir, devinit.Options{})
	if err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)

	if _, err := devinit.Init(dir, devinit.Options{}); !errors.Is(err, devinit.ErrExists) {
		t.Fatalf("second Init error = %v, want ErrExists", err)
	}
	// Another user set still collides on the shared files.
	if _, err := devinit.Init(dir, devinit.Options{Users: []devinit.User{{Name: "bob"}}}); !errors.Is(err, devinit.ErrExists) {
		t.Fatalf("Init for another user error = %v, want ErrExists", err)
	}
	after := snapshot(t, dir)
	if len(after) != len(before) {
		t.Fatalf("refused Init changed the file set: %d files, want %d", len(after), len(before))
	}
	for p, b := range before {
		if after[p] != b {
			t.Fatalf("refused Init changed %s", p)
		}
	}

	r2, err := devinit.Init(dir, devinit.Options{Force: true})
	if err != nil {
		t.Fatalf("Init with Force: %v", err)
	}
	if r2.UserIssuerPub == r.UserIssuerPub {
		t.Fatal("Init with Force kept the old user issuer")
	}
	if got := loadFile(t, r2.AuthConfig); got.Authn.Creds.IssuerPub != r2.UserIssuerPub {
		t.Fatal("Init with Force did not rewrite auth.yaml")
	}
	if before[r.CAKey] == snapshot(t, dir)[r.CAKey] {
		t.Fatal("Init with Force kept the old CA key")
	}
}

func TestInitOptions(t *testing.T) {
	tests := []struct {
		name    string
		opts    devinit.Options
		wantErr error
	}{
		{name: "custom users and hosts", opts: devinit.Options{Users: []devinit.User{{Name: "ops.bot", Groups: []string{"ops", "readers"}}}, Hosts: []string{"prism.internal", "10.0.0.7"}, Validity: 48 * time.Hour}},
		{name: "path in a name", opts: devinit.Options{Users: []devinit.User{{Name: "../x"}}}, wantErr: devinit.ErrInvalidOptions},
		{name: "name posing as a group", opts: devinit.Options{Users: []devinit.User{{Name: "group:x"}}}, wantErr: devinit.ErrInvalidOptions},
		{name: "duplicate user", opts: devinit.Options{Users: []devinit.User{{Name: "a"}, {Name: "a"}}}, wantErr: devinit.ErrInvalidOptions},
		{name: "uppercase group", opts: devinit.Options{Users: []devinit.User{{Name: "a", Groups: []string{"Admins"}}}}, wantErr: devinit.ErrInvalidOptions},
		{name: "bad host", opts: devinit.Options{Hosts: []string{"a b\n#"}}, wantErr: devinit.ErrInvalidOptions},
		{name: "short validity", opts: devinit.Options{Validity: time.Minute}, wantErr: devinit.ErrInvalidOptions},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			r, err := devinit.Init(dir, tt.opts)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("Init error = %v, want %v", err, tt.wantErr)
				}
				if got := snapshot(t, dir); len(got) != 0 {
					t.Fatalf("refused Init wrote %d files", len(got))
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f := loadFile(t, r.AuthConfig)
			if g := f.Authn.TLS.Groups["ops.bot"]; strings.Join(g, ",") != "ops,readers" {
				t.Fatalf("tls.groups = %v", f.Authn.TLS.Groups)
			}
			srv := readCert(t, r.ServerCert)
			if err := srv.VerifyHostname("prism.internal"); err != nil {
				t.Fatal(err)
			}
			if err := srv.VerifyHostname("10.0.0.7"); err != nil {
				t.Fatal(err)
			}
			if len(r.Users) != 1 || r.Users[0].Name != "ops.bot" {
				t.Fatalf("users = %+v", r.Users)
			}
		})
	}
}

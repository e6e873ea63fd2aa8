// Package devinit writes the development credentials of `prism auth init`:
// a CA with a server certificate for the loopback listeners and a client
// certificate per user, the nkeys of the auth callout's issuer, of the user
// issuer and of Prism's own processes, a .creds file and an nkey per user,
// and the auth.yaml that ties them together. It is for development and tests: a
// production deployment brings its own CA, issuers and OIDC provider.
//
// Every file is written 0600 in a directory created 0700; existing material
// is never overwritten unless Options.Force is set. Nothing is printed:
// Init returns the paths.
package devinit

import (
	"errors"
	"fmt"
	"net"
	"path/filepath"
	"regexp"
	"slices"
	"time"
)

// ErrExists is returned (wrapped) by Init when material it would write is
// already there and Options.Force is not set; nothing was changed.
var ErrExists = errors.New("auth material already exists")

// ErrInvalidOptions is returned (wrapped) by Init for options it cannot
// honour; the message names the option.
var ErrInvalidOptions = errors.New("invalid auth init options")

// User is a development user to issue credentials for.
type User struct {
	// Name is the user's principal name: the CN of its certificate and
	// the name of its user JWT. Letters, digits, '.', '_' and '-'.
	Name string
	// Groups are the user's groups (lowercase letters, digits, '.', '_',
	// '-'; NATS lowercases JWT tags).
	Groups []string
}

// DefaultUsers are the users Init issues for when Options.Users is empty.
var DefaultUsers = []User{{Name: "admin", Groups: []string{"admins"}}, {Name: "app"}}

// DefaultValidity is how long the certificates and creds Init issues are
// valid when Options.Validity is zero.
const DefaultValidity = 365 * 24 * time.Hour

// Options configures Init.
type Options struct {
	// Users to issue a certificate and a creds file for (DefaultUsers
	// when empty).
	Users []User
	// Force overwrites existing material.
	Force bool
	// Validity of the issued certificates and creds (DefaultValidity when
	// zero); the CA is valid as long.
	Validity time.Duration
	// Hosts are extra DNS names or IP addresses for the server
	// certificate, besides localhost, 127.0.0.1 and ::1.
	Hosts []string
	// Now is the clock (time.Now when nil).
	Now func() time.Time
}

// Result lists what Init wrote. Paths are absolute; no field holds a
// secret.
type Result struct {
	Dir        string
	AuthConfig string // auth.yaml
	CACert     string // ca.pem
	CAKey      string // ca-key.pem
	ServerCert string // server.pem: localhost, 127.0.0.1, ::1 and Options.Hosts
	ServerKey  string // server-key.pem
	// IssuerSeed is the auth callout issuer's account seed (issuer.nk).
	IssuerSeed string
	// UserIssuerSeed is the user issuer's account seed (user-issuer.nk);
	// it signs the users' creds.
	UserIssuerSeed string
	// ServiceSeed is the user nkey of Prism's own processes (service.nk).
	ServiceSeed string
	// Public keys of the three nkeys.
	IssuerPub, UserIssuerPub, ServicePub string
	// Users are the per-user files, in the order of Options.Users.
	Users []UserFiles
}

// UserFiles are the files of one user.
type UserFiles struct {
	Name   string
	Groups []string
	// Creds is users/<name>.creds: a user JWT signed by the user issuer
	// and its seed. The NATS server passes user JWTs to the auth callout
	// only in operator mode; a server configured without an operator
	// discards them, so use NKey or Cert with it.
	Creds string
	// NKey is users/<name>.nk: the seed of a user nkey listed in the
	// authn.nkeys of auth.yaml (nats.NkeyOptionFromSeed).
	NKey string
	// NKeyPub is the public key of NKey.
	NKeyPub string
	Cert    string // users/<name>.pem: client certificate, CN = name
	Key     string // users/<name>-key.pem
}

// Files lists every file Init wrote.
func (r *Result) Files() []string {
	out := []string{r.AuthConfig, r.CACert, r.CAKey, r.ServerCert, r.ServerKey, r.IssuerSeed, r.UserIssuerSeed, r.ServiceSeed}
	for _, u := range r.Users {
		out = append(out, u.Creds, u.NKey, u.Cert, u.Key)
	}
	return out
}

var (
	userName  = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$`)
	groupName = regexp.MustCompile(`^[a-z0-9][a-z0-9._-]{0,63}$`)
	hostName  = regexp.MustCompile(`^(\*\.)?[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*$`)
)

// Init writes the development credentials into dir (created 0700 when
// missing) and returns their paths. Without opts.Force it returns an error
// wrapping ErrExists, before writing anything, when any file it would write
// exists; if a write fails, the files it had created are removed. Invalid
// options return an error wrapping ErrInvalidOptions.
func Init(dir string, opts Options) (*Result, error) {
	if err := opts.normalize(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("auth init: %w", err)
	}
	r := layout(abs, opts.Users)
	m, err := newMaterial(opts)
	if err != nil {
		return nil, fmt.Errorf("auth init: %w", err)
	}
	defer m.wipe()
	files, err := m.files(r, opts)
	defer wipe(files)
	if err != nil {
		return nil, fmt.Errorf("auth init: %w", err)
	}
	if err := writeAll(files, opts.Force); err != nil {
		return nil, err
	}
	return r, nil
}

func (o *Options) normalize() error {
	if len(o.Users) == 0 {
		o.Users = DefaultUsers
	}
	o.Users = slices.Clone(o.Users)
	seen := map[string]bool{}
	for i, u := range o.Users {
		if !userName.MatchString(u.Name) {
			return fmt.Errorf("%w: users[%d].name %q: use letters, digits, '.', '_' and '-' (at most 64, not starting with '.' or '-')", ErrInvalidOptions, i, u.Name)
		}
		if seen[u.Name] {
			return fmt.Errorf("%w: users[%d].name %q is listed twice", ErrInvalidOptions, i, u.Name)
		}
		seen[u.Name] = true
		for _, g := range u.Groups {
			if !groupName.MatchString(g) {
				return fmt.Errorf("%w: users[%d].groups: %q: use lowercase letters, digits, '.', '_' and '-' (NATS lowercases tags)", ErrInvalidOptions, i, g)
			}
		}
		o.Users[i].Groups = slices.Clone(u.Groups)
	}
	for i, h := range o.Hosts {
		if net.ParseIP(h) == nil && !hostName.MatchString(h) {
			return fmt.Errorf("%w: hosts[%d] %q is neither an IP address nor a DNS name", ErrInvalidOptions, i, h)
		}
	}
	o.Hosts = slices.Clone(o.Hosts)
	if o.Validity == 0 {
		o.Validity = DefaultValidity
	}
	if o.Validity < time.Hour {
		return fmt.Errorf("%w: validity %v: at least an hour", ErrInvalidOptions, o.Validity)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	// One instant for everything, so no certificate outlives the CA.
	now := o.Now()
	o.Now = func() time.Time { return now }
	return nil
}

// layout names the files of dir.
func layout(dir string, users []User) *Result {
	p := func(parts ...string) string { return filepath.Join(append([]string{dir}, parts...)...) }
	r := &Result{
		Dir: dir, AuthConfig: p("auth.yaml"),
		CACert: p("ca.pem"), CAKey: p("ca-key.pem"),
		ServerCert: p("server.pem"), ServerKey: p("server-key.pem"),
		IssuerSeed: p("issuer.nk"), UserIssuerSeed: p("user-issuer.nk"), ServiceSeed: p("service.nk"),
	}
	for _, u := range users {
		r.Users = append(r.Users, UserFiles{
			Name: u.Name, Groups: slices.Clone(u.Groups),
			Creds: p("users", u.Name+".creds"), NKey: p("users", u.Name+".nk"), Cert: p("users", u.Name+".pem"), Key: p("users", u.Name+"-key.pem"),
		})
	}
	return r
}

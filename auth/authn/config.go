package authn

import (
	"fmt"
	"net"
	"net/url"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/nats-io/nkeys"
)

// Config is the authn section of the operator's auth.yaml: which
// credentials Prism accepts and how each maps to a principal. It holds no
// secret (public keys and file paths only), so it may be logged. At least
// one method must be configured.
type Config struct {
	// OIDC lists the OAuth2/OIDC issuers whose bearer JWTs are accepted as
	// NATS tokens.
	OIDC []OIDCConfig `yaml:"oidc,omitempty"`
	// TLS accepts client certificates issued by a CA.
	TLS CertConfig `yaml:"tls,omitempty"`
	// NKeys lists the nkey users (services) accepted by public key.
	NKeys []NKeyUser `yaml:"nkeys,omitempty"`
	// Creds accepts user JWTs (.creds files) signed by Prism's user issuer.
	Creds CredsConfig `yaml:"creds,omitempty"`
}

// OIDCConfig is one trusted OIDC issuer.
type OIDCConfig struct {
	// Issuer is the issuer URL exactly as the tokens' iss claim holds it
	// (https; http only on a loopback host).
	Issuer string `yaml:"issuer"`
	// Audience is the client id a token's aud claim must contain.
	Audience string `yaml:"audience"`
	// JWKSURL, when set, is where the issuer's keys are fetched, and
	// discovery (Issuer + /.well-known/openid-configuration) is skipped.
	JWKSURL string `yaml:"jwks_url,omitempty"`
	// UsernameClaim names the claim that becomes the principal's name
	// ("sub" when empty). A dotted path (realm_access.name) reaches into
	// nested objects when no top-level claim has that exact name.
	UsernameClaim string `yaml:"username_claim,omitempty"`
	// GroupsClaim names the claim (a string or a list of strings) that
	// becomes the principal's groups ("groups" when empty); a dotted path
	// works as for UsernameClaim. A token without it has no groups.
	GroupsClaim string `yaml:"groups_claim,omitempty"`
	// CAFile is a PEM bundle of the CAs the issuer's TLS certificate must
	// chain to; empty means the system roots.
	CAFile string `yaml:"ca_file,omitempty"`
	// Revoked lists token ids (the jti claim) that are refused although
	// validly signed and unexpired: a leaked token, until it expires.
	Revoked []string `yaml:"revoked,omitempty"`
}

// CertConfig accepts TLS client certificates. A certificate's name is its
// first email SAN, else its first URI SAN, else its subject common name.
type CertConfig struct {
	// CAFile is a PEM bundle of the CAs client certificates must chain to.
	// Empty disables certificate authentication.
	CAFile string `yaml:"ca_file,omitempty"`
	// Groups gives the groups of a certificate name.
	Groups map[string][]string `yaml:"groups,omitempty"`
}

// NKeyUser is a principal that authenticates with an nkey.
type NKeyUser struct {
	// Name is the principal's name.
	Name string `yaml:"name"`
	// NKey is the user's public nkey (U...).
	NKey string `yaml:"nkey"`
	// Groups are the principal's groups.
	Groups []string `yaml:"groups,omitempty"`
}

// CredsConfig accepts user JWTs signed by Prism's user issuer: the name of
// the principal is the JWT's name, its groups the JWT's tags group:<g>
// (NATS lowercases tags).
type CredsConfig struct {
	// IssuerPub is the public account nkey (A...) of the user issuer.
	// Empty disables creds authentication.
	IssuerPub string `yaml:"issuer,omitempty"`
	// Revoked lists user public keys (U...) whose JWTs are refused.
	Revoked []string `yaml:"revoked,omitempty"`
}

// Default claim names.
const (
	DefaultUsernameClaim = "sub"
	DefaultGroupsClaim   = "groups"
)

// groupPrefix marks a group in policy lists (admins: [group:admins]); no
// principal name may start with it, so a name can never pose as a group.
const groupPrefix = "group:"

// maxNameLen bounds names and groups taken from credentials.
const maxNameLen = 256

func (o OIDCConfig) usernameClaim() string {
	if o.UsernameClaim == "" {
		return DefaultUsernameClaim
	}
	return o.UsernameClaim
}

func (o OIDCConfig) groupsClaim() string {
	if o.GroupsClaim == "" {
		return DefaultGroupsClaim
	}
	return o.GroupsClaim
}

// Validate checks c without touching files or the network. It returns an
// error wrapping ErrInvalidConfig (a *status.Error, INVALID_ARGUMENT) whose
// message names the offending field, e.g. "oidc[0].audience".
func (c Config) Validate() error {
	if len(c.OIDC) == 0 && c.TLS.CAFile == "" && len(c.NKeys) == 0 && c.Creds.IssuerPub == "" {
		return invalidConfig("authn", "no authentication method configured: set oidc, tls.ca_file, nkeys or creds.issuer")
	}
	issuers := map[string]bool{}
	for i, o := range c.OIDC {
		f := fmt.Sprintf("oidc[%d]", i)
		if err := checkURL(f+".issuer", o.Issuer, true); err != nil {
			return err
		}
		if issuers[o.Issuer] {
			return invalidConfig(f+".issuer", "issuer %q is listed twice", o.Issuer)
		}
		issuers[o.Issuer] = true
		if o.Audience == "" {
			return invalidConfig(f+".audience", "required: the client id Prism's tokens are issued for")
		}
		if o.JWKSURL != "" {
			if err := checkURL(f+".jwks_url", o.JWKSURL, false); err != nil {
				return err
			}
		}
		if strings.TrimSpace(o.usernameClaim()) != o.usernameClaim() {
			return invalidConfig(f+".username_claim", "must not have surrounding spaces")
		}
		if strings.TrimSpace(o.groupsClaim()) != o.groupsClaim() {
			return invalidConfig(f+".groups_claim", "must not have surrounding spaces")
		}
	}
	if c.TLS.CAFile == "" && len(c.TLS.Groups) > 0 {
		return invalidConfig("tls.groups", "set tls.ca_file: certificates are not accepted without it")
	}
	for name, groups := range c.TLS.Groups {
		if err := checkName(name); err != nil {
			return invalidConfig("tls.groups", "name %q: %v", name, err)
		}
		if err := checkGroups(groups); err != nil {
			return invalidConfig(fmt.Sprintf("tls.groups[%q]", name), "%v", err)
		}
	}
	names, keys := map[string]bool{}, map[string]bool{}
	for i, u := range c.NKeys {
		f := fmt.Sprintf("nkeys[%d]", i)
		if err := checkName(u.Name); err != nil {
			return invalidConfig(f+".name", "%v", err)
		}
		if names[u.Name] {
			return invalidConfig(f+".name", "name %q is listed twice", u.Name)
		}
		names[u.Name] = true
		if !nkeys.IsValidPublicUserKey(u.NKey) {
			return invalidConfig(f+".nkey", "not a public user nkey (U...)")
		}
		if keys[u.NKey] {
			return invalidConfig(f+".nkey", "nkey %s is listed twice", u.NKey)
		}
		keys[u.NKey] = true
		if err := checkGroups(u.Groups); err != nil {
			return invalidConfig(f+".groups", "%v", err)
		}
	}
	if c.Creds.IssuerPub == "" && len(c.Creds.Revoked) > 0 {
		return invalidConfig("creds.revoked", "set creds.issuer: creds are not accepted without it")
	}
	if c.Creds.IssuerPub != "" && !nkeys.IsValidPublicAccountKey(c.Creds.IssuerPub) {
		return invalidConfig("creds.issuer", "not a public account nkey (A...)")
	}
	for i, k := range c.Creds.Revoked {
		if !nkeys.IsValidPublicUserKey(k) {
			return invalidConfig(fmt.Sprintf("creds.revoked[%d]", i), "not a public user nkey (U...)")
		}
	}
	return nil
}

// checkURL checks an issuer or JWKS URL: absolute, https unless the host
// is loopback, and (for an issuer) without query or fragment.
func checkURL(field, raw string, issuer bool) error {
	if raw == "" {
		return invalidConfig(field, "required")
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return invalidConfig(field, "%q is not an absolute URL", raw)
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return invalidConfig(field, "%q: use https (http only for a loopback host)", raw)
		}
	default:
		return invalidConfig(field, "%q: the scheme must be https", raw)
	}
	if issuer && (u.RawQuery != "" || u.Fragment != "") {
		return invalidConfig(field, "%q: an issuer has no query or fragment", raw)
	}
	return nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// checkName reports why s cannot be a principal name.
func checkName(s string) error {
	if err := checkLabel(s); err != nil {
		return err
	}
	if strings.HasPrefix(strings.ToLower(s), groupPrefix) {
		return fmt.Errorf("a name must not start with %q (reserved for groups)", groupPrefix)
	}
	return nil
}

// checkLabel reports why s cannot be a name or a group.
func checkLabel(s string) error {
	switch {
	case s == "":
		return fmt.Errorf("empty")
	case len(s) > maxNameLen:
		return fmt.Errorf("longer than %d bytes", maxNameLen)
	case !utf8.ValidString(s):
		return fmt.Errorf("not valid UTF-8")
	case strings.TrimSpace(s) != s:
		return fmt.Errorf("surrounding spaces")
	}
	for _, r := range s {
		if unicode.IsControl(r) {
			return fmt.Errorf("control characters")
		}
	}
	return nil
}

func checkGroups(groups []string) error {
	for _, g := range groups {
		if err := checkLabel(g); err != nil {
			return fmt.Errorf("group %q: %v", g, err)
		}
	}
	return nil
}

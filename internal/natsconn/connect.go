package natsconn

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// ErrBadCredential is wrapped by the errors of a credential file that
// exists but does not hold what it should (no JWT in a creds file, a
// certificate without its key, no PEM in a CA file). A file that does not
// exist wraps os.ErrNotExist instead.
var ErrBadCredential = errors.New("bad credential")

// credError is an error about a credential setting: its message says
// what is wrong with which flag and file; it unwraps to ErrBadCredential
// or the os error.
type credError struct {
	msg string
	err error
}

func (e *credError) Error() string { return e.msg }
func (e *credError) Unwrap() error { return e.err }

// badCredential is a credError wrapping ErrBadCredential.
func badCredential(format string, args ...any) error {
	return &credError{fmt.Sprintf(format, args...), ErrBadCredential}
}

// ConnectError is a connection that failed: the server URL (passwords
// masked), what happened and what to do about it, and nats.go's error.
// It unwraps to nats.go's error (nats.ErrAuthorization, nats.ErrNoServers,
// a *tls.CertificateVerificationError, ...), so errors.Is works on it.
type ConnectError struct {
	URL  string
	Hint string
	Err  error
}

func (e *ConnectError) Error() string {
	cause := e.Err
	for u := errors.Unwrap(cause); u != nil; u = errors.Unwrap(cause) {
		cause = u // nats.go's error, without the wrapping of a caller (node)
	}
	return fmt.Sprintf("connect to %s: %s (%v)", e.URL, e.Hint, cause)
}

// Unwrap returns nats.go's error.
func (e *ConnectError) Unwrap() error { return e.Err }

// NATSOptions returns the nats.go options of o: Name, Timeout, the
// credentials and TLS files, the token and the reply prefix (see
// ResolvedInboxPrefix). It reads every file now, so that a missing or bad
// one is an error naming its flag (or variable) and path, wrapping
// os.ErrNotExist or ErrBadCredential. nats.go reads the files again on
// each reconnect, so rotated credentials are picked up.
func (o Options) NATSOptions() ([]nats.Option, error) {
	var opts []nats.Option
	if o.Name != "" {
		opts = append(opts, nats.Name(o.Name))
	}
	if o.Timeout > 0 {
		opts = append(opts, nats.Timeout(o.Timeout))
	}
	if o.Creds != "" && o.NKey != "" {
		return nil, badCredential("%s and %s exclude each other: a credentials file holds its own nkey", o.source("creds"), o.source("nkey"))
	}
	if o.Creds != "" {
		if _, err := o.userClaims(); err != nil {
			return nil, err
		}
		opts = append(opts, nats.UserCredentials(o.Creds))
	}
	if o.NKey != "" {
		if _, err := o.nkeyPublic(); err != nil {
			return nil, err
		}
		opt, err := nats.NkeyOptionFromSeed(o.NKey)
		if err != nil {
			return nil, badCredential("%s %s: not usable as an nkey seed", o.source("nkey"), o.NKey)
		}
		opts = append(opts, opt)
	}
	if o.TLSCert != "" || o.TLSKey != "" {
		if _, err := o.clientCert(); err != nil {
			return nil, err
		}
		opts = append(opts, nats.ClientCert(o.TLSCert, o.TLSKey))
	}
	if o.TLSCA != "" {
		if err := o.rootCAs(); err != nil {
			return nil, err
		}
		opts = append(opts, nats.RootCAs(o.TLSCA))
	}
	if o.Token != "" {
		opts = append(opts, nats.Token(o.Token))
	}
	prefix, err := o.ResolvedInboxPrefix()
	if err != nil {
		return nil, err
	}
	if prefix != "" {
		if strings.ContainsAny(prefix, "*> \t") || strings.HasSuffix(prefix, ".") || strings.HasPrefix(prefix, ".") {
			return nil, fmt.Errorf("%s %q: want a subject without wildcards, spaces or a trailing '.'", o.source("inbox-prefix"), prefix)
		}
		opts = append(opts, nats.CustomInboxPrefix(prefix))
	}
	return opts, nil
}

// Connect connects to o.URL with NATSOptions and then extra (e.g.
// nats.MaxReconnects(-1)). ctx's deadline, when sooner than o.Timeout,
// bounds the connect. A failure is the error of NATSOptions, a
// *ConnectError saying what to fix (see Explain), or nats.go's error
// when Explain knows no better.
func (o Options) Connect(ctx context.Context, extra ...nats.Option) (*nats.Conn, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	opts, err := o.NATSOptions()
	if err != nil {
		return nil, err
	}
	if dl, ok := ctx.Deadline(); ok {
		limit := o.Timeout
		if limit <= 0 {
			limit = nats.GetDefaultOptions().Timeout
		}
		if left := time.Until(dl); left < limit {
			opts = append(opts, nats.Timeout(max(left, time.Millisecond)))
		}
	}
	url := o.URL
	if url == "" {
		url = nats.DefaultURL
	}
	nc, err := nats.Connect(url, append(opts, extra...)...)
	if err != nil {
		o.URL = url
		return nil, o.Explain(err)
	}
	return nc, nil
}

// Explain turns a failed connect to o.URL into a *ConnectError that says
// what to fix: no server at the URL, a server that refused the
// credentials presented (naming each by its flag or variable and file,
// never the token), a TLS handshake that failed and which file is at
// fault. Other errors, and any error when o has no URL, are returned as
// they are. Explain is for callers that connect through nats.go
// themselves with NATSOptions (prism serve's node).
func (o Options) Explain(err error) error {
	if err == nil || o.URL == "" {
		return err
	}
	var ce *ConnectError
	if errors.As(err, &ce) {
		return err
	}
	url := Redact(o.URL)
	hint := o.hint(err)
	if hint == "" {
		return err
	}
	return &ConnectError{URL: url, Hint: hint, Err: err}
}

// hint is what to do about err, or "" when it is not a connect error
// this package knows. TLS cases need nats.go's ErrTLS in the chain (or
// the server's TLS alert), so that a PostgreSQL certificate error of
// prism serve is not taken for NATS's.
func (o Options) hint(err error) string {
	var unknownCA x509.UnknownAuthorityError
	var hostErr x509.HostnameError
	var verify *tls.CertificateVerificationError
	msg := err.Error()
	tlsErr := errors.Is(err, nats.ErrTLS)
	refused := strings.Contains(msg, "remote error: tls:") || (tlsErr && strings.Contains(msg, "closed by remote after TLS handshake"))
	switch {
	case errors.Is(err, nats.ErrAuthorization), errors.Is(err, nats.ErrAuthExpired),
		errors.Is(err, nats.ErrAuthRevoked), errors.Is(err, nats.ErrAccountAuthExpired):
		return "the server refused " + o.presented() + authAdvice(err)
	case errors.Is(err, nats.ErrNoServers):
		return "no NATS server answers there: set --nats-url (or NATS_URL) to where prism serve or the NATS cluster runs"
	case errors.Is(err, nats.ErrSecureConnWanted):
		return "the server does not offer TLS: use a nats:// URL and no --tls-* flags, or enable TLS on the server"
	case tlsErr && errors.As(err, &hostErr):
		return fmt.Sprintf("TLS handshake failed: the server's certificate is not valid for host %s; connect by a name the certificate holds", hostErr.Host)
	case tlsErr && (errors.As(err, &unknownCA) || errors.As(err, &verify)):
		if o.TLSCA == "" {
			return "TLS handshake failed: the server's certificate is not signed by a CA this system trusts; pass --tls-ca (or NATS_CA) with the CA that signs it"
		}
		return fmt.Sprintf("TLS handshake failed: the server's certificate is not signed by a CA in %s %s", o.source("tls-ca"), o.TLSCA)
	case refused && o.TLSCert == "":
		return "TLS handshake failed: the server requires a client certificate; pass --tls-cert and --tls-key (or NATS_CERT and NATS_KEY)"
	case refused:
		// The server ended the handshake over the client certificate, its
		// own having checked out. Go's client sends none when the one it
		// has is not signed by a CA the server asks for.
		return fmt.Sprintf("TLS handshake failed: the server refused the client certificate %s %s (%s): it is not signed by a CA the server trusts",
			o.source("tls-cert"), o.TLSCert, o.certLabel())
	case tlsErr, errors.Is(err, nats.ErrSecureConnRequired):
		return "TLS handshake failed: pass --tls-ca with the CA of the server's certificate, and --tls-cert and --tls-key if it verifies clients"
	}
	return ""
}

// authAdvice adds what an expired or revoked credential needs.
func authAdvice(err error) string {
	switch {
	case errors.Is(err, nats.ErrAuthExpired), errors.Is(err, nats.ErrAccountAuthExpired):
		return ": the credential has expired; get a new one"
	case errors.Is(err, nats.ErrAuthRevoked):
		return ": the credential is revoked"
	}
	return ""
}

// presented names the credentials o sends, for an authorization error:
// flag or variable, file, and the principal or public key (never the
// token itself).
func (o Options) presented() string {
	var what []string
	if o.Token != "" {
		t := "the token from " + o.source("token")
		if sub := TokenSubject(o.Token); sub != "" {
			t += " (sub " + sub + ")"
		}
		what = append(what, t)
	}
	if o.Creds != "" {
		c := fmt.Sprintf("the credentials file %s %s", o.source("creds"), o.Creds)
		if uc, err := o.userClaims(); err == nil {
			c += fmt.Sprintf(" (user %q, %s)", uc.Name, uc.Subject)
		}
		what = append(what, c)
	}
	if o.NKey != "" {
		n := fmt.Sprintf("the nkey seed %s %s", o.source("nkey"), o.NKey)
		if pub, err := o.nkeyPublic(); err == nil {
			n += " (" + pub + ")"
		}
		what = append(what, n)
	}
	if o.TLSCert != "" {
		what = append(what, fmt.Sprintf("the client certificate %s %s (%s)", o.source("tls-cert"), o.TLSCert, o.certLabel()))
	}
	if len(what) == 0 {
		return "an anonymous connection: no credentials were presented; pass --creds, --nkey, --token or --tls-cert and --tls-key (or NATS_CREDS, NATS_NKEY, NATS_TOKEN, NATS_CERT and NATS_KEY)"
	}
	return strings.Join(what, " and ")
}

// certLabel is the client certificate's principal name, for messages.
func (o Options) certLabel() string {
	if leaf, err := o.clientCert(); err == nil {
		return CertName(leaf)
	}
	return "unreadable"
}

// RefusedError is a message the NATS server did not let the credential
// of Options send (a permissions violation, Err): such a request gets no
// reply, so a caller that sees the violation can end it at once with this
// error, which names the principal and what Hint says is needed.
type RefusedError struct {
	Options Options
	Err     error
	Hint    string
}

func (e *RefusedError) Error() string {
	who := "this credential"
	if name, _, _ := e.Options.Principal(); name != "" {
		who = name
	}
	msg := fmt.Sprintf("the NATS server refused to let %s send the request (%v): its permissions do not allow it", who, e.Err)
	if e.Hint != "" {
		msg += "; " + e.Hint
	}
	return msg
}

func (e *RefusedError) Unwrap() error { return e.Err }

package sigv4test

import (
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
)

// NewCredentials returns fresh credentials, with a session token, that
// mean nothing outside the test; source names the stand-in.
func NewCredentials(t testing.TB, source string) aws.Credentials {
	t.Helper()
	return aws.Credentials{
		AccessKeyID:     "AKIA" + strings.ToUpper(randomHex(t, 8)),
		SecretAccessKey: randomHex(t, 20),
		SessionToken:    randomHex(t, 16),
		Source:          source,
	}
}

func randomHex(t testing.TB, n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b)
}

// Isolate keeps the SDK's default chain off the machine's own AWS setup
// for the test: no shared config or credentials file, no IMDS, no AWS_*
// credentials, region, CA bundle or endpoint from the environment.
func Isolate(t *testing.T) {
	t.Helper()
	none := filepath.Join(t.TempDir(), "none")
	for _, k := range []string{"AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KMS", "AWS_CA_BUNDLE", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE", "AWS_ROLE_ARN",
		"AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI"} {
		t.Setenv(k, "")
	}
	t.Setenv("AWS_CONFIG_FILE", none)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", none)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
}

// Env isolates the test (Isolate) and points the SDK's default chain at
// a stand-in: its region, its credentials in the AWS_ACCESS_KEY_ID
// family, and AWS_CA_BUNDLE holding its certificate; vars are set too
// (e.g. AWS_ENDPOINT_URL_KMS).
func Env(t *testing.T, region string, creds aws.Credentials, cert *x509.Certificate, vars map[string]string) {
	t.Helper()
	Isolate(t)
	env := map[string]string{
		"AWS_CA_BUNDLE":         CABundle(t, t.TempDir(), cert),
		"AWS_REGION":            region,
		"AWS_ACCESS_KEY_ID":     creds.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY": creds.SecretAccessKey,
		"AWS_SESSION_TOKEN":     creds.SessionToken,
	}
	for k, v := range vars {
		env[k] = v
	}
	for k, v := range env {
		t.Setenv(k, v)
	}
}

// CABundle writes cert as PEM into a file under dir and returns its path
// (for AWS_CA_BUNDLE).
func CABundle(t testing.TB, dir string, cert *x509.Certificate) string {
	t.Helper()
	path := filepath.Join(dir, "stand-in-ca.pem")
	b := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw})
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// Clock is a stand-in's clock: the real time plus a skew the test sets,
// to see a signature refused as expired. The zero value is the real
// time. It is safe for concurrent use.
type Clock struct {
	mu   sync.Mutex
	skew time.Duration
}

// Skew sets the clock to the real time plus d.
func (c *Clock) Skew(d time.Duration) { c.mu.Lock(); c.skew = d; c.mu.Unlock() }

// Now is the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return time.Now().Add(c.skew)
}

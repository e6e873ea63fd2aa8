package sigv4test_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strings"
	"testing"
	"time"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/prism-data/prism/internal/sigv4test"
)

func TestVerify(t *testing.T) {
	creds := sigv4test.NewCredentials(t, "test")
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	v := sigv4test.Verifier{Credentials: creds, Service: "svc", Region: "eu-west-1", Signed: []string{"content-type"}, Now: func() time.Time { return now }}
	body := "a=1"
	sign := func(service, region string, at time.Time, tamper func(*http.Request)) *sigv4test.Refusal {
		r, _ := http.NewRequest(http.MethodPost, "https://example.test:8182/x?y=1", strings.NewReader(body))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		sum := sha256.Sum256([]byte(body))
		if err := v4.NewSigner().SignHTTP(context.Background(), creds, r, hex.EncodeToString(sum[:]), service, region, at); err != nil {
			t.Fatal(err)
		}
		if tamper != nil {
			tamper(r)
		}
		return v.Verify(r, []byte(body))
	}
	if rf := sign("svc", "eu-west-1", now, nil); rf != nil {
		t.Fatalf("a good signature was refused: %v", rf)
	}
	for _, c := range []struct {
		name, service, region string
		at                    time.Time
		tamper                func(*http.Request)
		want                  string
	}{
		{"service", "other", "eu-west-1", now, nil, "InvalidSignatureException"},
		{"region", "svc", "us-east-1", now, nil, "InvalidSignatureException"},
		{"old", "svc", "eu-west-1", now.Add(-6 * time.Minute), nil, "InvalidSignatureException"},
		{"header changed", "svc", "eu-west-1", now, func(r *http.Request) { r.Header.Set("Content-Type", "text/plain") }, "InvalidSignatureException"},
		{"path changed", "svc", "eu-west-1", now, func(r *http.Request) { r.URL.Path = "/z" }, "InvalidSignatureException"},
		{"token dropped", "svc", "eu-west-1", now, func(r *http.Request) { r.Header.Del("X-Amz-Security-Token") }, "UnrecognizedClientException"},
		{"unsigned", "svc", "eu-west-1", now, func(r *http.Request) { r.Header.Del("Authorization") }, "MissingAuthenticationTokenException"},
	} {
		if rf := sign(c.service, c.region, c.at, c.tamper); rf == nil || rf.Type != c.want {
			t.Errorf("%s: %v, want %s", c.name, rf, c.want)
		}
	}
}

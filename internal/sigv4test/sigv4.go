// Package sigv4test verifies AWS Signature Version 4 signatures, for the
// stand-ins of AWS services that tests run against (pii/kmstest for KMS,
// backends/neptune/neptunetest for Neptune): a request is accepted only if
// its Authorization header was made with the expected credentials, for
// the expected service and region, recently, over the body the server
// received. The signature is recomputed with aws-sdk-go-v2's own signer
// from a copy of the request holding only the headers the client signed,
// so what is checked is the protocol, not this package's idea of it.
package sigv4test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Algorithm is the only signing algorithm accepted.
const Algorithm = "AWS4-HMAC-SHA256"

// MaxSkew is how far a request's X-Amz-Date may be from the server's
// clock, as AWS allows.
const MaxSkew = 5 * time.Minute

// Refusal is why a request's signature is not accepted: an AWS error type
// (MissingAuthenticationTokenException, IncompleteSignatureException,
// UnrecognizedClientException, InvalidSignatureException) and its message,
// as AWS words them. A stand-in answers it in its service's error format.
type Refusal struct {
	Type    string
	Message string
}

func (r *Refusal) Error() string { return r.Type + ": " + r.Message }

func refuse(typ, msg string) *Refusal { return &Refusal{Type: typ, Message: msg} }

// Verifier checks requests signed for one service and region with one set
// of credentials. Its fields must not change while it is in use.
type Verifier struct {
	// Credentials are the only ones accepted. A non-empty SessionToken
	// must be sent, and signed, as X-Amz-Security-Token; an empty one
	// must not be sent.
	Credentials aws.Credentials
	// Service and Region are those of the credential scope ("kms",
	// "neptune-db"; "us-east-1").
	Service, Region string
	// Signed are headers (lower case) that must be signed besides host
	// and x-amz-date, e.g. "content-type".
	Signed []string
	// Now is the server's clock; time.Now when nil.
	Now func() time.Time
}

// Verify checks r's SigV4 signature over body, the request body as
// received: it parses the Authorization header, checks the credential
// scope (access key, date, region, service), the date's freshness, the
// signed headers and the session token, then signs a copy of the request
// holding only the signed headers with the SDK's signer and the expected
// credentials and compares the results. It returns nil for a valid
// signature.
func (v *Verifier) Verify(r *http.Request, body []byte) *Refusal {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return refuse("MissingAuthenticationTokenException", "Request is missing Authentication Token")
	}
	alg, rest, _ := strings.Cut(auth, " ")
	if alg != Algorithm {
		return refuse("IncompleteSignatureException", "Unsupported signature algorithm")
	}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, val, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = val
	}
	cred, signed, sig := fields["Credential"], fields["SignedHeaders"], fields["Signature"]
	if cred == "" || signed == "" || sig == "" {
		return refuse("IncompleteSignatureException", "Authorization header requires Credential, SignedHeaders and Signature")
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return refuse("IncompleteSignatureException", "Credential is malformed")
	}
	akid, day, region, service := scope[0], scope[1], scope[2], scope[3]
	if akid != v.Credentials.AccessKeyID {
		return refuse("UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	if service != v.Service {
		return refuse("InvalidSignatureException", "Credential should be scoped to correct service: '"+v.Service+"'.")
	}
	if region != v.Region {
		return refuse("InvalidSignatureException", "Credential should be scoped to a valid region.")
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return refuse("IncompleteSignatureException", "X-Amz-Date is missing or malformed")
	}
	if at.Format("20060102") != day {
		return refuse("InvalidSignatureException", "Credential should be scoped to the date of X-Amz-Date.")
	}
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	if d := now().Sub(at); d > MaxSkew || d < -MaxSkew {
		return refuse("InvalidSignatureException", "Signature expired: "+at.Format("20060102T150405Z")+" is not within 5 minutes of the server's time.")
	}
	names := strings.Split(signed, ";")
	for _, must := range append([]string{"host", "x-amz-date"}, v.Signed...) {
		if !slices.Contains(names, must) {
			return refuse("InvalidSignatureException", "SignedHeaders must include "+must)
		}
	}
	tok := r.Header.Get("X-Amz-Security-Token")
	if tok != v.Credentials.SessionToken || tok != "" && !slices.Contains(names, "x-amz-security-token") {
		return refuse("UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payload {
		return refuse("InvalidSignatureException", "The provided x-amz-content-sha256 header does not match the request body.")
	}

	// A copy carrying only what the client signed, signed again here.
	cp, err := http.NewRequestWithContext(context.Background(), r.Method, "https://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return refuse("IncompleteSignatureException", "request URL")
	}
	cp.Host = r.Host
	cp.Header = http.Header{}
	cp.ContentLength = 0
	for _, n := range names {
		switch n {
		case "host":
		case "content-length":
			cp.ContentLength = r.ContentLength
		default:
			cp.Header[http.CanonicalHeaderKey(n)] = r.Header.Values(n)
		}
	}
	if err := v4.NewSigner().SignHTTP(context.Background(), v.Credentials, cp, payload, service, region, at); err != nil {
		return refuse("IncompleteSignatureException", "cannot sign: "+err.Error())
	}
	if subtle.ConstantTimeCompare([]byte(cp.Header.Get("Authorization")), []byte(auth)) != 1 {
		return refuse("InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
	}
	return nil
}

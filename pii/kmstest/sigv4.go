package kmstest

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

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// refusal is a request the server answers with a KMS error.
type refusal struct {
	status int
	typ    string
	msg    string
}

func (r *refusal) Error() string { return r.typ + ": " + r.msg }

func refuse(status int, typ, msg string) *refusal { return &refusal{status, typ, msg} }

const sigAlgorithm = "AWS4-HMAC-SHA256"

// maxSkew is how far a request's X-Amz-Date may be from the server's
// clock, as AWS allows.
const maxSkew = 5 * time.Minute

// verify checks r's SigV4 signature over body: it parses the
// Authorization header, checks the credential scope (access key, date,
// region, service "kms"), the date's freshness and the signed headers,
// then signs a copy of the request holding only the signed headers with
// the SDK's signer and the server's credentials and compares the results.
func (s *Server) verify(r *http.Request, body []byte) *refusal {
	auth := r.Header.Get("Authorization")
	if auth == "" {
		return refuse(400, "MissingAuthenticationTokenException", "Request is missing Authentication Token")
	}
	alg, rest, _ := strings.Cut(auth, " ")
	if alg != sigAlgorithm {
		return refuse(400, "IncompleteSignatureException", "Unsupported signature algorithm")
	}
	fields := map[string]string{}
	for _, f := range strings.Split(rest, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(f), "=")
		fields[k] = v
	}
	cred, signed, sig := fields["Credential"], fields["SignedHeaders"], fields["Signature"]
	if cred == "" || signed == "" || sig == "" {
		return refuse(400, "IncompleteSignatureException", "Authorization header requires Credential, SignedHeaders and Signature")
	}
	scope := strings.Split(cred, "/")
	if len(scope) != 5 || scope[4] != "aws4_request" {
		return refuse(400, "IncompleteSignatureException", "Credential is malformed")
	}
	akid, day, region, service := scope[0], scope[1], scope[2], scope[3]
	if akid != s.Credentials.AccessKeyID {
		return refuse(400, "UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	if service != "kms" {
		return refuse(400, "InvalidSignatureException", "Credential should be scoped to correct service: 'kms'.")
	}
	if region != s.Region {
		return refuse(400, "InvalidSignatureException", "Credential should be scoped to a valid region.")
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil {
		return refuse(400, "IncompleteSignatureException", "X-Amz-Date is missing or malformed")
	}
	if at.Format("20060102") != day {
		return refuse(400, "InvalidSignatureException", "Credential should be scoped to the date of X-Amz-Date.")
	}
	if d := s.now().Sub(at); d > maxSkew || d < -maxSkew {
		return refuse(400, "InvalidSignatureException", "Signature expired: "+at.Format("20060102T150405Z")+" is not within 5 minutes of the server's time.")
	}
	names := strings.Split(signed, ";")
	for _, must := range []string{"host", "x-amz-date", "x-amz-target", "content-type"} {
		if !slices.Contains(names, must) {
			return refuse(400, "InvalidSignatureException", "SignedHeaders must include "+must)
		}
	}
	if tok := r.Header.Get("X-Amz-Security-Token"); tok != s.Credentials.SessionToken || !slices.Contains(names, "x-amz-security-token") {
		return refuse(400, "UnrecognizedClientException", "The security token included in the request is invalid.")
	}
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payload {
		return refuse(400, "InvalidSignatureException", "The provided x-amz-content-sha256 header does not match the request body.")
	}

	// A copy carrying only what the client signed, signed again here.
	cp, err := http.NewRequestWithContext(context.Background(), r.Method, "https://"+r.Host+r.URL.RequestURI(), bytes.NewReader(body))
	if err != nil {
		return refuse(400, "IncompleteSignatureException", "request URL")
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
	if err := v4.NewSigner().SignHTTP(context.Background(), s.Credentials, cp, payload, service, region, at); err != nil {
		return refuse(400, "IncompleteSignatureException", "cannot sign: "+err.Error())
	}
	if subtle.ConstantTimeCompare([]byte(cp.Header.Get("Authorization")), []byte(auth)) != 1 {
		return refuse(400, "InvalidSignatureException", "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method.")
	}
	return nil
}

package kmstest_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/prism-data/prism/pii/kmstest"
)

// request is a hand-made KMS request; each field may be spoiled.
type request struct {
	target, contentType, service, region string
	creds                                aws.Credentials
	at                                   time.Time
	body                                 string
	tamper                               func(*http.Request) // after signing
}

func (s0 request) send(t *testing.T, s *kmstest.Server) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, s.URL+"/", strings.NewReader(s0.body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", s0.contentType)
	req.Header.Set("X-Amz-Target", s0.target)
	sum := sha256.Sum256([]byte(s0.body))
	if err := v4.NewSigner().SignHTTP(context.Background(), s0.creds, req, hex.EncodeToString(sum[:]), s0.service, s0.region, s0.at); err != nil {
		t.Fatal(err)
	}
	if s0.tamper != nil {
		s0.tamper(req)
	}
	resp, err := s.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, out
}

// TestServerChecksEveryRequest proves the stand-in refuses what KMS would:
// each case spoils one thing of a request that is otherwise accepted.
func TestServerChecksEveryRequest(t *testing.T) {
	s := kmstest.New(t, "eu-central-1")
	arn := s.CreateKey(t, "alias/test")
	good := func() request {
		return request{
			target: "TrentService.Encrypt", contentType: "application/x-amz-json-1.1",
			service: "kms", region: s.Region, creds: s.Credentials, at: time.Now(),
			body: `{"KeyId":"alias/test","Plaintext":"aGVsbG8=","EncryptionContext":{"a":"b"}}`,
		}
	}
	otherSecret := s.Credentials
	otherSecret.SecretAccessKey = strings.Repeat("x", 40)
	otherKey := s.Credentials
	otherKey.AccessKeyID = "AKIAOTHER"
	noToken := s.Credentials
	noToken.SessionToken = ""
	for _, tc := range []struct {
		name     string
		spoil    func(*request)
		status   int
		wantType string
	}{
		{"accepted", func(*request) {}, 200, ""},
		{"wrong secret", func(r *request) { r.creds = otherSecret }, 400, "InvalidSignatureException"},
		{"unknown access key", func(r *request) { r.creds = otherKey }, 400, "UnrecognizedClientException"},
		{"no session token", func(r *request) { r.creds = noToken }, 400, "UnrecognizedClientException"},
		{"wrong service", func(r *request) { r.service = "s3" }, 400, "InvalidSignatureException"},
		{"wrong region", func(r *request) { r.region = "us-west-2" }, 400, "InvalidSignatureException"},
		{"expired date", func(r *request) { r.at = time.Now().Add(-10 * time.Minute) }, 400, "InvalidSignatureException"},
		{"future date", func(r *request) { r.at = time.Now().Add(10 * time.Minute) }, 400, "InvalidSignatureException"},
		{"body changed after signing", func(r *request) {
			r.tamper = func(req *http.Request) {
				b := `{"KeyId":"alias/test","Plaintext":"aGVsbG9=","EncryptionContext":{"a":"b"}}`
				req.Body, req.ContentLength = io.NopCloser(strings.NewReader(b)), int64(len(b))
			}
		}, 400, "InvalidSignatureException"},
		{"target changed after signing", func(r *request) {
			r.tamper = func(req *http.Request) { req.Header.Set("X-Amz-Target", "TrentService.Decrypt") }
		}, 400, "InvalidSignatureException"},
		{"no signature", func(r *request) { r.tamper = func(req *http.Request) { req.Header.Del("Authorization") } }, 400, "MissingAuthenticationTokenException"},
		{"unknown target", func(r *request) { r.target = "TrentService.ScheduleKeyDeletion" }, 400, "UnknownOperationException"},
		{"wrong content type", func(r *request) { r.contentType = "application/json" }, 400, "SerializationException"},
		{"unknown body field", func(r *request) { r.body = `{"KeyId":"alias/test","Plaintext":"aGVsbG8=","Extra":1}` }, 400, "SerializationException"},
		{"plaintext not base64", func(r *request) { r.body = `{"KeyId":"alias/test","Plaintext":"not base64!"}` }, 400, "SerializationException"},
		{"unknown key", func(r *request) { r.body = `{"KeyId":"alias/none","Plaintext":"aGVsbG8="}` }, 400, "NotFoundException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := good()
			tc.spoil(&r)
			status, out := r.send(t, s)
			if status != tc.status || (tc.wantType != "" && out["__type"] != tc.wantType) {
				t.Fatalf("status %d, %v; want %d %s", status, out, tc.status, tc.wantType)
			}
			if tc.wantType == "" && (out["KeyId"] != arn || out["CiphertextBlob"] == nil) {
				t.Fatalf("accepted Encrypt answered %v", out)
			}
			if tc.wantType != "" && out["message"] == nil {
				t.Fatalf("error without a message: %v", out)
			}
		})
	}
	if calls := s.Calls(); len(calls) != 1 || calls[0].Op != "Encrypt" || calls[0].EncryptionContext["a"] != "b" {
		t.Fatalf("accepted calls %+v; want the one good Encrypt", calls)
	}
}

// TestServerDecryptNeedsKeyAndContext: a blob opens only under its key and
// its encryption context, as in KMS.
func TestServerDecryptNeedsKeyAndContext(t *testing.T) {
	s := kmstest.New(t, "")
	a := s.CreateKey(t, "alias/a")
	s.CreateKey(t, "alias/b")
	req := func(target, body string) (int, map[string]any) {
		return request{target: "TrentService." + target, contentType: "application/x-amz-json-1.1",
			service: "kms", region: s.Region, creds: s.Credentials, at: time.Now(), body: body}.send(t, s)
	}
	_, enc := req("Encrypt", `{"KeyId":"alias/a","Plaintext":"c2VjcmV0","EncryptionContext":{"p":"1"}}`)
	blob, _ := json.Marshal(enc["CiphertextBlob"])
	if bytes.Contains(blob, []byte("c2VjcmV0")) {
		t.Fatal("the blob holds the plaintext")
	}
	for _, tc := range []struct{ name, body, wantType string }{
		{"right key and context", `{"CiphertextBlob":` + string(blob) + `,"KeyId":"` + a + `","EncryptionContext":{"p":"1"}}`, ""},
		{"no key named", `{"CiphertextBlob":` + string(blob) + `,"EncryptionContext":{"p":"1"}}`, ""},
		{"another key", `{"CiphertextBlob":` + string(blob) + `,"KeyId":"alias/b","EncryptionContext":{"p":"1"}}`, "IncorrectKeyException"},
		{"another context", `{"CiphertextBlob":` + string(blob) + `,"KeyId":"alias/a","EncryptionContext":{"p":"2"}}`, "InvalidCiphertextException"},
		{"no context", `{"CiphertextBlob":` + string(blob) + `,"KeyId":"alias/a"}`, "InvalidCiphertextException"},
		{"garbage", `{"CiphertextBlob":"AAAA","KeyId":"alias/a"}`, "InvalidCiphertextException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, out := req("Decrypt", tc.body)
			if tc.wantType == "" && (out["Plaintext"] != "c2VjcmV0" || out["KeyId"] != a) {
				t.Fatalf("Decrypt = %v", out)
			}
			if tc.wantType != "" && out["__type"] != tc.wantType {
				t.Fatalf("Decrypt = %v; want %s", out, tc.wantType)
			}
		})
	}
}

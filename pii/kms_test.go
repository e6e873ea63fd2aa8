package pii_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"maps"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/kms"

	"github.com/prism-data/prism/pii"
	"github.com/prism-data/prism/pii/kmstest"
)

// kmsOptions point a KMSKEK at s with its credentials, and retry fast.
func kmsOptions(s *kmstest.Server, extra ...pii.KMSOption) []pii.KMSOption {
	c := s.Credentials
	return append([]pii.KMSOption{
		pii.WithKMSEndpoint(s.URL),
		pii.WithKMSHTTPClient(s.HTTPClient()),
		pii.WithKMSRegion(s.Region),
		pii.WithKMSCredentials(credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken)),
		pii.WithKMSRetry(4, time.Millisecond),
	}, extra...)
}

// newKMS starts a stand-in KMS with one key, alias/prism, and returns it,
// the key's ARN and a KMSKEK over it.
func newKMS(t *testing.T) (*kmstest.Server, string, *pii.KMSKEK) {
	t.Helper()
	kmstest.Isolate(t)
	s := kmstest.New(t, "")
	arn := s.CreateKey(t, "alias/prism")
	k, err := pii.NewKMSKEK(context.Background(), "alias/prism", kmsOptions(s)...)
	if err != nil {
		t.Fatal(err)
	}
	return s, arn, k
}

func randomDEK(t *testing.T) []byte {
	t.Helper()
	dek := make([]byte, 32)
	if _, err := rand.Read(dek); err != nil {
		t.Fatal(err)
	}
	return dek
}

// noKeyIn fails when err's text holds dek in any usual encoding.
func noKeyIn(t *testing.T, err error, dek []byte) {
	t.Helper()
	msg := err.Error()
	for _, enc := range []string{string(dek), hex.EncodeToString(dek), base64.StdEncoding.EncodeToString(dek)} {
		if strings.Contains(msg, enc) {
			t.Fatalf("the error carries the data key: %s", msg)
		}
	}
}

func TestKMSKEKWrapsAndUnwraps(t *testing.T) {
	s, arn, k := newKMS(t)
	if k.ID() != "awskms:"+arn {
		t.Fatalf("ID = %s, want awskms:%s", k.ID(), arn)
	}
	dek := randomDEK(t)
	w, err := k.Wrap(dek)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(w, dek) {
		t.Fatal("the wrapped key holds the key")
	}
	got, err := k.Unwrap(w)
	if err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("Unwrap = %x, %v; want the data key", got, err)
	}
	// Every form of the key's name is the same KEK.
	id := arn[strings.LastIndex(arn, "/")+1:]
	for _, name := range []string{id, arn, "arn:aws:kms:" + s.Region + ":" + kmstest.Account + ":alias/prism"} {
		other, err := pii.OpenKEK(context.Background(), "awskms:"+name, kmsOptions(s)...)
		if err != nil || other.ID() != k.ID() {
			t.Fatalf("awskms:%s = %v, %v; want %s", name, other, err, k.ID())
		}
		if back, err := other.Unwrap(w); err != nil || !bytes.Equal(back, dek) {
			t.Fatalf("awskms:%s does not unwrap: %v", name, err)
		}
	}
	// What went over the wire: the key by ARN, Prism's context on both.
	want := map[string]string{"prism": "pii-data-key"}
	var ops []string
	for _, c := range s.Calls() {
		ops = append(ops, c.Op)
		if c.Op != "DescribeKey" && (c.KeyID != arn || !maps.Equal(c.EncryptionContext, want)) {
			t.Fatalf("%s with key %s, context %v; want %s, %v", c.Op, c.KeyID, c.EncryptionContext, arn, want)
		}
	}
	if !slices.Equal(ops[:3], []string{"DescribeKey", "Encrypt", "Decrypt"}) {
		t.Fatalf("calls %v", ops)
	}
	if err := k.Check(context.Background()); err != nil {
		t.Fatalf("Check: %v", err)
	}
}

func TestKMSKEKRefusesAnotherKeyOrContext(t *testing.T) {
	s, _, k := newKMS(t)
	s.CreateKey(t, "alias/other")
	other, err := pii.NewKMSKEK(context.Background(), "alias/other", kmsOptions(s)...)
	if err != nil {
		t.Fatal(err)
	}
	dek := randomDEK(t)
	w, err := k.Wrap(dek)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.Unwrap(w); !errors.Is(err, pii.ErrDecrypt) {
		t.Fatalf("another key unwrapped: %v; want ErrDecrypt", err)
	}
	// The same key under another encryption context (another use of it).
	c := s.Credentials
	client := kms.New(kms.Options{
		Region: s.Region, BaseEndpoint: aws.String(s.URL), HTTPClient: s.HTTPClient(),
		Credentials: credentials.NewStaticCredentialsProvider(c.AccessKeyID, c.SecretAccessKey, c.SessionToken),
	})
	out, err := client.Encrypt(context.Background(), &kms.EncryptInput{
		KeyId: aws.String("alias/prism"), Plaintext: dek, EncryptionContext: map[string]string{"app": "other"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := k.Unwrap(out.CiphertextBlob); !errors.Is(err, pii.ErrDecrypt) {
		t.Fatalf("a blob of another context unwrapped: %v; want ErrDecrypt", err)
	}
	if _, err := k.Unwrap(append(w[:len(w)-1:len(w)-1], w[len(w)-1]^1)); !errors.Is(err, pii.ErrDecrypt) {
		t.Fatalf("a changed blob unwrapped: %v", err)
	}
	if got := s.Refused(); !slices.Equal(got, []string{"IncorrectKeyException", "InvalidCiphertextException", "InvalidCiphertextException"}) {
		t.Fatalf("refused %v", got)
	}
}

func TestKMSKEKSignatureAndCredentials(t *testing.T) {
	kmstest.Isolate(t)
	s := kmstest.New(t, "")
	s.CreateKey(t, "alias/prism")
	c := s.Credentials
	for _, tc := range []struct {
		name     string
		opts     []pii.KMSOption
		wantType string
	}{
		{"wrong secret", []pii.KMSOption{pii.WithKMSCredentials(credentials.NewStaticCredentialsProvider(c.AccessKeyID, "wrong"+c.SecretAccessKey, c.SessionToken))}, "InvalidSignatureException"},
		{"unknown access key", []pii.KMSOption{pii.WithKMSCredentials(credentials.NewStaticCredentialsProvider("AKIAUNKNOWN", c.SecretAccessKey, c.SessionToken))}, "UnrecognizedClientException"},
		{"signed for another region", []pii.KMSOption{pii.WithKMSRegion("eu-west-3")}, "InvalidSignatureException"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(s.Refused())
			_, err := pii.NewKMSKEK(context.Background(), "alias/prism", kmsOptions(s, tc.opts...)...)
			if !errors.Is(err, pii.ErrKEKRefused) || !strings.Contains(err.Error(), tc.wantType) {
				t.Fatalf("NewKMSKEK: %v; want ErrKEKRefused (%s)", err, tc.wantType)
			}
			if got := s.Refused()[before:]; len(got) != 1 || got[0] != tc.wantType {
				t.Fatalf("the stand-in refused %v; want one %s (no retries)", got, tc.wantType)
			}
		})
	}
	if calls := s.Calls(); len(calls) != 0 {
		t.Fatalf("the stand-in accepted %+v", calls)
	}
}

// TestKMSKEKClockSkew: a signature dated outside KMS's five minutes is
// refused; the SDK corrects its clock from the answer's Date and signs
// again, as against AWS.
func TestKMSKEKClockSkew(t *testing.T) {
	s, _, k := newKMS(t)
	s.Skew(20 * time.Minute)
	dek := randomDEK(t)
	w, err := k.Wrap(dek)
	if err != nil {
		t.Fatalf("Wrap with a skewed clock: %v", err)
	}
	if got := s.Refused(); !slices.Equal(got, []string{"InvalidSignatureException"}) {
		t.Fatalf("refused %v; want one expired signature, then the corrected one accepted", got)
	}
	if back, err := k.Unwrap(w); err != nil || !bytes.Equal(back, dek) {
		t.Fatalf("Unwrap after the correction: %v", err)
	}
}

func TestKMSKEKRetriesThrottlingAndFailures(t *testing.T) {
	s, _, k := newKMS(t)
	dek := randomDEK(t)
	s.Throttle(2)
	w, err := k.Wrap(dek)
	if err != nil {
		t.Fatalf("Wrap after 2 throttles: %v", err)
	}
	s.Fail(1)
	if got, err := k.Unwrap(w); err != nil || !bytes.Equal(got, dek) {
		t.Fatalf("Unwrap after a 500: %v", err)
	}
	if got := s.Refused(); !slices.Equal(got, []string{"ThrottlingException", "ThrottlingException", "KMSInternalException"}) {
		t.Fatalf("refused %v", got)
	}
	s.Throttle(10) // more than the 4 attempts
	_, err = k.Wrap(dek)
	if !errors.Is(err, pii.ErrKEKUnavailable) || errors.Is(err, pii.ErrKEKRefused) {
		t.Fatalf("Wrap throttled throughout: %v; want ErrKEKUnavailable", err)
	}
	noKeyIn(t, err, dek)
	if n := len(s.Refused()); n != 3+4 {
		t.Fatalf("%d refusals; want 4 attempts", n-3)
	}
}

func TestKMSKEKRefusedKeys(t *testing.T) {
	s, arn, k := newKMS(t)
	dek := randomDEK(t)
	w, err := k.Wrap(dek)
	if err != nil {
		t.Fatal(err)
	}
	s.Deny(arn)
	_, err = k.Unwrap(w)
	if !errors.Is(err, pii.ErrKEKRefused) || !strings.Contains(err.Error(), "AccessDeniedException") {
		t.Fatalf("Unwrap denied: %v; want ErrKEKRefused naming AccessDeniedException", err)
	}
	noKeyIn(t, err, dek)
	if _, err := k.Wrap(dek); !errors.Is(err, pii.ErrKEKRefused) {
		t.Fatalf("Wrap denied: %v", err)
	}
	if err := k.Check(context.Background()); !errors.Is(err, pii.ErrKEKRefused) {
		t.Fatalf("Check denied: %v", err)
	}

	disabled := s.CreateKey(t, "alias/disabled")
	s.SetEnabled(disabled, false)
	for _, tc := range []struct{ key, want string }{
		{"alias/disabled", "Disabled"},
		{"alias/missing", "NotFoundException"},
	} {
		_, err := pii.NewKMSKEK(context.Background(), tc.key, kmsOptions(s)...)
		if !errors.Is(err, pii.ErrKEKRefused) || !strings.Contains(err.Error(), tc.want) {
			t.Fatalf("NewKMSKEK(%s): %v; want ErrKEKRefused (%s)", tc.key, err, tc.want)
		}
	}
}

func TestKMSKEKTimeout(t *testing.T) {
	s, _, _ := newKMS(t)
	k, err := pii.NewKMSKEK(context.Background(), "alias/prism", kmsOptions(s, pii.WithKMSTimeout(200*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	s.Stall(true)
	defer s.Stall(false)
	_, err = k.Wrap(randomDEK(t))
	if !errors.Is(err, pii.ErrKEKUnavailable) || !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Wrap on a stalled KMS: %v; want ErrKEKUnavailable, deadline exceeded", err)
	}
}

func TestOpenKEKSpecs(t *testing.T) {
	kmstest.Isolate(t)
	file := writeKey(t)
	hexKey := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name, spec string
		wantErr    error
	}{
		{"file", "file:" + file, nil},
		{"no scheme", file, pii.ErrKEKSpec},
		{"a key pasted as the spec", hexKey, pii.ErrKEKSpec},
		{"unknown scheme", "vault:secret/prism", pii.ErrKEKSpec},
		{"empty", "", pii.ErrKEKSpec},
		{"empty file", "file:", pii.ErrKEKSpec},
		{"empty kms key", "awskms:", pii.ErrKEKSpec},
		{"kms key with a space", "awskms:alias/my key", pii.ErrKEKSpec},
		{"not a kms arn", "awskms:arn:aws:s3:::bucket", pii.ErrKEKSpec},
		{"arn without account", "awskms:arn:aws:kms:us-east-1::key/1234", pii.ErrKEKSpec},
		{"aws managed alias", "awskms:alias/aws/ebs", pii.ErrKEKSpec},
		{"no region", "awskms:alias/prism", pii.ErrKEKSpec},
	} {
		t.Run(tc.name, func(t *testing.T) {
			k, err := pii.OpenKEK(context.Background(), tc.spec)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("OpenKEK(%q) = %v, %v; want %v", tc.spec, k, err, tc.wantErr)
			}
			if err != nil && strings.Contains(err.Error(), hexKey) {
				t.Fatalf("the error repeats a key: %v", err)
			}
			if err == nil && !strings.HasPrefix(k.ID(), "file:") {
				t.Fatalf("ID %s", k.ID())
			}
		})
	}
}

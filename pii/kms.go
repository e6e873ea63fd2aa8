package pii

import (
	"bytes"
	"cmp"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/smithy-go"
)

// ErrKEKUnavailable is returned when KMS could not be reached or did not
// answer in time: network, throttling after retries, a 5xx, the per-call
// timeout. Retrying later may succeed.
var ErrKEKUnavailable = errors.New("pii: key encryption key unavailable (KMS unreachable, throttled or failing)")

// ErrKEKRefused is returned when KMS refused the key: access denied,
// unknown or invalid credentials, the key disabled, pending deletion, not
// found or not a symmetric encryption key. Retrying does not help; the
// key or its permissions must be fixed.
var ErrKEKRefused = errors.New("pii: key encryption key refused (access denied, key disabled or not found)")

// kmsContext is the encryption context of every data key Prism wraps in
// KMS: it binds the ciphertext to this use, so a blob wrapped for another
// purpose under the same key does not unwrap here, and it shows in
// CloudTrail.
var kmsContext = map[string]string{"prism": "pii-data-key"}

// DefaultKMSTimeout bounds each KMS call (all its retries included) when
// WithKMSTimeout is not given.
const DefaultKMSTimeout = 10 * time.Second

// KMSKEK is a KEK held in AWS KMS: data keys are wrapped with KMS Encrypt
// and unwrapped with Decrypt, under one symmetric key and the encryption
// context {"prism":"pii-data-key"}. The key never leaves KMS. Its ID is
// "awskms:" and the key's ARN, whichever form (key id, ARN, alias) named
// it, so every wrapped data key records which key wraps it.
type KMSKEK struct {
	client  *kms.Client
	arn     string
	timeout time.Duration
}

// KMSOption configures NewKMSKEK (and OpenKEK for awskms: specs).
type KMSOption func(*kmsOptions) error

type kmsOptions struct {
	region      string
	endpoint    string
	httpClient  *http.Client
	creds       aws.CredentialsProvider
	timeout     time.Duration
	maxAttempts int
	maxBackoff  time.Duration
}

// WithKMSRegion sets the region, overriding the key ARN's and the
// default chain's (AWS_REGION, the profile).
func WithKMSRegion(region string) KMSOption {
	return func(o *kmsOptions) error {
		if region == "" {
			return fmt.Errorf("%w: empty region", ErrKEKSpec)
		}
		o.region = region
		return nil
	}
}

// WithKMSEndpoint sends requests to url instead of the region's KMS
// endpoint (AWS_ENDPOINT_URL_KMS does the same from the environment).
func WithKMSEndpoint(url string) KMSOption {
	return func(o *kmsOptions) error {
		if url == "" {
			return fmt.Errorf("%w: empty endpoint", ErrKEKSpec)
		}
		o.endpoint = url
		return nil
	}
}

// WithKMSHTTPClient sets the HTTP client (for instance one trusting a
// private CA; AWS_CA_BUNDLE does that from the environment).
func WithKMSHTTPClient(c *http.Client) KMSOption {
	return func(o *kmsOptions) error {
		if c == nil {
			return fmt.Errorf("%w: nil HTTP client", ErrKEKSpec)
		}
		o.httpClient = c
		return nil
	}
}

// WithKMSCredentials sets the credentials instead of the default chain
// (environment, shared profile, web identity, IMDS).
func WithKMSCredentials(p aws.CredentialsProvider) KMSOption {
	return func(o *kmsOptions) error {
		if p == nil {
			return fmt.Errorf("%w: nil credentials provider", ErrKEKSpec)
		}
		o.creds = p
		return nil
	}
}

// WithKMSTimeout bounds each call, its retries included (default
// DefaultKMSTimeout).
func WithKMSTimeout(d time.Duration) KMSOption {
	return func(o *kmsOptions) error {
		if d <= 0 {
			return fmt.Errorf("%w: KMS timeout %v is not positive", ErrKEKSpec, d)
		}
		o.timeout = d
		return nil
	}
}

// WithKMSRetry sets the SDK's standard retryer's attempts per call and
// longest backoff between them (defaults: the SDK's, 3 and 20s).
// Throttling, 5xx and network errors are retried with jittered backoff.
func WithKMSRetry(maxAttempts int, maxBackoff time.Duration) KMSOption {
	return func(o *kmsOptions) error {
		if maxAttempts < 1 || maxBackoff <= 0 {
			return fmt.Errorf("%w: KMS retry wants at least one attempt and a positive backoff", ErrKEKSpec)
		}
		o.maxAttempts, o.maxBackoff = maxAttempts, maxBackoff
		return nil
	}
}

// NewKMSKEK opens the KMS key named by key (a key id, key ARN, alias/NAME
// or alias ARN). Credentials and region come from the SDK's default chain
// (config.LoadDefaultConfig: environment, shared config and credentials
// files, web identity, IMDS) unless options say otherwise; a key ARN's
// region is used when no region option is given. It asks DescribeKey
// for the key's ARN and state.
// Errors: ErrKEKSpec (a malformed key or option, no region),
// ErrKEKRefused (unknown key, access denied, disabled, not a symmetric
// encryption key), ErrKEKUnavailable.
func NewKMSKEK(ctx context.Context, key string, opts ...KMSOption) (*KMSKEK, error) {
	arnRegion, err := parseKMSKey(key)
	if err != nil {
		return nil, err
	}
	o := kmsOptions{timeout: DefaultKMSTimeout}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	var load []func(*config.LoadOptions) error
	if region := cmp.Or(o.region, arnRegion); region != "" {
		load = append(load, config.WithRegion(region))
	}
	if o.httpClient != nil {
		load = append(load, config.WithHTTPClient(o.httpClient))
	}
	if o.creds != nil {
		load = append(load, config.WithCredentialsProvider(o.creds))
	}
	if o.maxAttempts > 0 {
		load = append(load, config.WithRetryer(func() aws.Retryer {
			return retry.NewStandard(func(s *retry.StandardOptions) {
				s.MaxAttempts, s.MaxBackoff = o.maxAttempts, o.maxBackoff
			})
		}))
	}
	cfg, err := config.LoadDefaultConfig(ctx, load...)
	if err != nil {
		return nil, fmt.Errorf("pii: kms %s: load AWS configuration: %w: %w", key, ErrKEKUnavailable, err)
	}
	if cfg.Region == "" {
		return nil, fmt.Errorf("%w: kms %s: no AWS region (set AWS_REGION, or name the key by its ARN)", ErrKEKSpec, key)
	}
	client := kms.NewFromConfig(cfg, func(ko *kms.Options) {
		if o.endpoint != "" {
			ko.BaseEndpoint = aws.String(o.endpoint)
		}
	})
	k := &KMSKEK{client: client, timeout: o.timeout}
	cctx, cancel := k.callContext(ctx)
	defer cancel()
	out, err := client.DescribeKey(cctx, &kms.DescribeKeyInput{KeyId: aws.String(key)})
	if err != nil {
		return nil, kmsError("describe", key, err)
	}
	md := out.KeyMetadata
	switch {
	case md == nil || md.Arn == nil:
		return nil, fmt.Errorf("pii: kms describe %s: %w: no key ARN in the answer", key, ErrKEKUnavailable)
	case md.KeyState != "" && md.KeyState != types.KeyStateEnabled, !md.Enabled:
		return nil, fmt.Errorf("pii: kms %s: %w: key state %s", *md.Arn, ErrKEKRefused, md.KeyState)
	case md.KeyUsage != "" && md.KeyUsage != types.KeyUsageTypeEncryptDecrypt,
		md.KeySpec != "" && md.KeySpec != types.KeySpecSymmetricDefault:
		return nil, fmt.Errorf("pii: kms %s: %w: not a symmetric encryption key (%s, %s)", *md.Arn, ErrKEKRefused, md.KeySpec, md.KeyUsage)
	}
	k.arn = *md.Arn
	return k, nil
}

// ID is "awskms:" and the key's ARN.
func (k *KMSKEK) ID() string { return "awskms:" + k.arn }

// ARN is the key's ARN.
func (k *KMSKEK) ARN() string { return k.arn }

// Wrap encrypts dek with KMS Encrypt under the key and Prism's encryption
// context. Errors: ErrKEKRefused, ErrKEKUnavailable.
func (k *KMSKEK) Wrap(dek []byte) ([]byte, error) {
	ctx, cancel := k.callContext(context.Background())
	defer cancel()
	return k.wrap(ctx, dek)
}

// Unwrap decrypts what Wrap returned with KMS Decrypt, naming the key, so
// a blob wrapped by another key or under another context is refused.
// Errors: ErrDecrypt (another key, another context, changed),
// ErrKEKRefused, ErrKEKUnavailable.
func (k *KMSKEK) Unwrap(wrapped []byte) ([]byte, error) {
	ctx, cancel := k.callContext(context.Background())
	defer cancel()
	return k.unwrap(ctx, wrapped)
}

// Check proves the key can wrap and unwrap: it wraps a random probe and
// unwraps it. Prism calls it at start, so that a wrong key, region or
// permission fails there and not on the first write.
func (k *KMSKEK) Check(ctx context.Context) error {
	ctx, cancel := k.callContext(ctx)
	defer cancel()
	probe := make([]byte, 32)
	if _, err := rand.Read(probe); err != nil {
		return err
	}
	defer clear(probe)
	w, err := k.wrap(ctx, probe)
	if err != nil {
		return err
	}
	back, err := k.unwrap(ctx, w)
	if err != nil {
		return err
	}
	defer clear(back)
	if !bytes.Equal(back, probe) {
		return fmt.Errorf("pii: kms %s: %w: a wrapped probe did not unwrap to itself", k.arn, ErrKEKRefused)
	}
	return nil
}

// String names the key.
func (k *KMSKEK) String() string { return "pii.KMSKEK(" + k.ID() + ")" }

// GoString is String.
func (k *KMSKEK) GoString() string { return k.String() }

func (k *KMSKEK) wrap(ctx context.Context, dek []byte) ([]byte, error) {
	out, err := k.client.Encrypt(ctx, &kms.EncryptInput{KeyId: aws.String(k.arn), Plaintext: dek, EncryptionContext: kmsContext})
	if err != nil {
		return nil, kmsError("encrypt", k.arn, err)
	}
	if got := aws.ToString(out.KeyId); got != k.arn {
		return nil, fmt.Errorf("pii: kms encrypt %s: %w: KMS answered for key %s", k.arn, ErrKEKRefused, got)
	}
	return out.CiphertextBlob, nil
}

func (k *KMSKEK) unwrap(ctx context.Context, wrapped []byte) ([]byte, error) {
	out, err := k.client.Decrypt(ctx, &kms.DecryptInput{KeyId: aws.String(k.arn), CiphertextBlob: wrapped, EncryptionContext: kmsContext})
	if err != nil {
		return nil, kmsError("decrypt", k.arn, err)
	}
	if got := aws.ToString(out.KeyId); got != k.arn {
		clear(out.Plaintext)
		return nil, fmt.Errorf("pii: kms decrypt %s: %w: KMS answered for key %s", k.arn, ErrDecrypt, got)
	}
	return out.Plaintext, nil
}

// callContext bounds a call by the KEK's timeout unless ctx has an
// earlier deadline.
func (k *KMSKEK) callContext(ctx context.Context) (context.Context, context.CancelFunc) {
	if d, ok := ctx.Deadline(); ok && time.Until(d) < k.timeout {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, k.timeout)
}

// refusedCodes are the KMS error codes a retry does not cure.
var refusedCodes = map[string]bool{
	"AccessDeniedException": true, "DisabledException": true, "NotFoundException": true,
	"KMSInvalidStateException": true, "InvalidKeyUsageException": true, "InvalidArnException": true,
	"UnrecognizedClientException": true, "InvalidSignatureException": true, "IncompleteSignatureException": true,
	"MissingAuthenticationTokenException": true, "ExpiredTokenException": true, "InvalidGrantTokenException": true,
	"ValidationException": true, "InvalidClientTokenId": true, "SignatureDoesNotMatch": true,
}

// kmsError classifies err from a KMS call op on key under a stable
// sentinel. It carries KMS's error code and message (which name keys and
// principals, never plaintext); a transport error is wrapped as well.
func kmsError(op, key string, err error) error {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code := ae.ErrorCode()
		sentinel := ErrKEKUnavailable
		switch {
		case code == "IncorrectKeyException" || code == "InvalidCiphertextException":
			sentinel = ErrDecrypt
		case refusedCodes[code]:
			sentinel = ErrKEKRefused
		}
		return fmt.Errorf("pii: kms %s %s: %w: %s: %s", op, key, sentinel, code, ae.ErrorMessage())
	}
	return fmt.Errorf("pii: kms %s %s: %w: %w", op, key, ErrKEKUnavailable, err)
}

package neptune

import (
	"errors"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/prism-data/prism/backends/internal/kit"
)

type options struct {
	http     aws.HTTPClient
	creds    aws.CredentialsProvider
	region   string
	attempts int
	base     time.Duration
	maxDelay time.Duration
	timeout  time.Duration
	now      func() time.Time
}

func defaultOptions() options {
	return options{attempts: 6, base: 50 * time.Millisecond, maxDelay: 2 * time.Second, timeout: 30 * time.Second, now: time.Now}
}

// Option configures New. Each option validates its argument and makes New
// fail with a descriptive error when it is invalid.
type Option func(*options) error

// WithHTTPClient sets the HTTP client of the requests. The default is the
// AWS config's (which honours AWS_CA_BUNDLE and the SDK's proxy and TLS
// settings).
func WithHTTPClient(c aws.HTTPClient) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("WithHTTPClient: nil client")
		}
		o.http = c
		return nil
	}
}

// WithCredentials sets the credentials requests are signed with, and the
// region of their scope (empty: the region of the default AWS config).
// Without it New loads the SDK's default chain (environment, shared
// profile, web identity, IMDS) with config.LoadDefaultConfig.
func WithCredentials(p aws.CredentialsProvider, region string) Option {
	return func(o *options) error {
		if p == nil {
			return errors.New("WithCredentials: nil provider")
		}
		o.creds, o.region = p, region
		return nil
	}
}

// WithRegion sets the region requests are signed for, over the default
// AWS config's.
func WithRegion(region string) Option {
	return func(o *options) error {
		if region == "" {
			return errors.New("WithRegion: empty region")
		}
		o.region = region
		return nil
	}
}

// WithRetry sets how a request refused for a reason that may pass
// (throttling, concurrent modification, 5xx, network) is retried: at most
// attempts tries in all, waiting a random time up to base*2^n (at most
// maxDelay) before try n+1. The default is 6 tries from 50ms to 2s.
func WithRetry(attempts int, base, maxDelay time.Duration) Option {
	return func(o *options) error {
		if base <= 0 || maxDelay < base {
			return errors.New("WithRetry: need 0 < base <= maxDelay")
		}
		o.attempts, o.base, o.maxDelay = attempts, base, maxDelay
		return kit.CheckRange("WithRetry", attempts, 1, 100, "attempts")
	}
}

// WithTimeout bounds each request whose context has no deadline. The
// default is 30s.
func WithTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return errors.New("WithTimeout: need a positive duration")
		}
		o.timeout = d
		return nil
	}
}

// WithClock sets the clock of the signatures' dates. The default is
// time.Now.
func WithClock(now func() time.Time) Option {
	return func(o *options) error {
		o.now = now
		return kit.CheckClock(now)
	}
}

package neptune

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// SigningService is the service name of Neptune's SigV4 credential scope.
const SigningService = "neptune-db"

// maxResponse bounds the body of one answer read into memory.
const maxResponse = 256 << 20

// client sends openCypher requests to one Neptune endpoint: POST
// /openCypher, form-encoded query and parameters, SigV4-signed, retried
// with backoff and jitter on what may pass.
type client struct {
	url    string
	http   aws.HTTPClient
	creds  aws.CredentialsProvider
	region string
	signer *v4.Signer
	o      options
}

// endpointURL returns the openCypher URL of endpoint: "host:port",
// "https://host:port" or that with the /openCypher path.
func endpointURL(endpoint string) (string, error) {
	if endpoint == "" {
		return "", errors.New("empty Neptune endpoint")
	}
	if !strings.Contains(endpoint, "://") {
		endpoint = "https://" + endpoint
	}
	u, err := url.Parse(endpoint)
	if err != nil {
		return "", fmt.Errorf("neptune endpoint %q: %w", endpoint, err)
	}
	if u.Scheme != "https" || u.Host == "" || u.User != nil || u.RawQuery != "" || (u.Path != "" && u.Path != "/" && u.Path != "/openCypher") {
		return "", fmt.Errorf("neptune endpoint %q: want https://host:port (Neptune serves openCypher over HTTPS only)", endpoint)
	}
	u.Path = "/openCypher"
	return u.String(), nil
}

// errorBody is Neptune's error answer.
type errorBody struct {
	RequestID       string `json:"requestId"`
	Code            string `json:"code"`
	DetailedMessage string `json:"detailedMessage"`
}

// query runs q with params and decodes the "results" rows into out (a
// pointer to a slice of row structs). write marks a batch's request: a
// refusal of its data is then permanent. Errors: a *QueryError (the last
// one when retries ran out), a network error wrapped to match
// ErrUnavailable, or ctx's error.
func (c *client) query(ctx context.Context, write bool, q string, params map[string]any, out any) error {
	ps, err := json.Marshal(params)
	if err != nil {
		return fmt.Errorf("encode parameters: %w", err)
	}
	body := []byte(url.Values{"query": {q}, "parameters": {string(ps)}}.Encode())
	for attempt := 1; ; attempt++ {
		err := c.try(ctx, body, write, out)
		if err == nil {
			return nil
		}
		var qe *QueryError
		if errors.As(err, &qe) && !qe.retryable() || ctx.Err() != nil || attempt >= c.o.attempts {
			return err
		}
		if err := sleep(ctx, c.backoff(attempt)); err != nil {
			return err
		}
	}
}

// try sends the request once and decodes its answer, bounded by the
// store's timeout when ctx has no deadline.
func (c *client) try(parent context.Context, body []byte, write bool, out any) error {
	ctx := parent
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.o.timeout)
		defer cancel()
	}
	resp, err := c.send(ctx, body)
	if err == nil {
		err = decodeAnswer(resp, write, out)
	}
	if err != nil && parent.Err() == nil && ctx.Err() != nil {
		return fmt.Errorf("%w: no answer within %v", ErrUnavailable, c.o.timeout)
	}
	return err
}

// backoff is the wait before try attempt+1: full jitter over an
// exponential bound.
func (c *client) backoff(attempt int) time.Duration {
	d := c.o.maxDelay
	if attempt < 30 {
		d = min(c.o.maxDelay, c.o.base<<(attempt-1))
	}
	return time.Duration(rand.Int64N(int64(d)) + 1)
}

func sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// send signs and sends one request. A transport error matches
// ErrUnavailable.
func (c *client) send(ctx context.Context, body []byte) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	creds, err := c.creds.Retrieve(ctx)
	if err != nil {
		return nil, fmt.Errorf("%w: AWS credentials: %w", ErrUnavailable, err)
	}
	sum := sha256.Sum256(body)
	if err := c.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), SigningService, c.region, c.o.now()); err != nil {
		return nil, fmt.Errorf("sign request: %w", err)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return resp, nil
}

// decodeAnswer reads resp: the rows of a 200 into out, a *QueryError
// otherwise.
func decodeAnswer(resp *http.Response, write bool, out any) error {
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse))
	if err != nil {
		return fmt.Errorf("%w: read answer: %w", ErrUnavailable, err)
	}
	if resp.StatusCode != http.StatusOK {
		var eb errorBody
		if json.Unmarshal(b, &eb) != nil || eb.Code == "" {
			eb.Code, eb.DetailedMessage = http.StatusText(resp.StatusCode), truncate(string(b), 200)
		}
		return &QueryError{Status: resp.StatusCode, Code: eb.Code, Message: eb.DetailedMessage, RequestID: eb.RequestID, write: write}
	}
	var ans struct {
		Results json.RawMessage `json:"results"`
	}
	if err := json.Unmarshal(b, &ans); err != nil || len(ans.Results) == 0 {
		return fmt.Errorf("%w: answer without results: %s", ErrUnavailable, truncate(string(b), 200))
	}
	if err := json.Unmarshal(ans.Results, out); err != nil {
		return fmt.Errorf("%w: unexpected results: %w", ErrUnavailable, err)
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

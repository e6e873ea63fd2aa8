// Package client is the Go client of Prism. It speaks the gateway's
// request-reply protocol over NATS with binary protobuf bodies, and gives
// typed calls per data abstraction:
//
//	nc, _ := nats.Connect(nats.DefaultURL)
//	c, _ := client.New(nc)
//	kv := c.KeyValue("demo")
//	seq, err := kv.Put(ctx, []byte("user-1"), []client.Item{{Key: []byte("name"), Value: []byte("Ada")}})
//	rec, err := kv.Get(ctx, []byte("user-1"), client.MinSeq(seq))
//
//	ts := c.TimeSeries("metrics", client.ReadYourWrites())
//	seq, err = ts.Append(ctx, []byte("host-1"), []client.Event{{Time: time.Now(), ID: []byte("e1"), Tags: map[string]string{"region": "eu"}}})
//	last10, err := ts.Latest(ctx, []byte("host-1"), 10)
//
// Every request carries the W3C trace context of its ctx's OpenTelemetry
// span, if any, in the traceparent and tracestate headers, so the gateway's
// spans and the projection of a write join the caller's trace. The client
// starts no spans of its own.
//
// It imports no server code, and of OpenTelemetry only the API.
package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
	"google.golang.org/protobuf/proto"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// DefaultTimeout bounds a call whose context has no deadline.
const DefaultTimeout = 10 * time.Second

// Client is a connection to Prism's gateways. It is safe for concurrent use.
type Client struct {
	nc      *nats.Conn
	timeout time.Duration
	retries int
	backoff time.Duration
	// shedRetries bounds the retries of a call shed with
	// RESOURCE_EXHAUSTED (WithShedRetries).
	shedRetries int
	// via is how Subscribe reaches streams (a SubscribeVia), resolved on
	// the first Subscribe when SubscribeAuto.
	via atomic.Int32
	// viaChosen is set when WithSubscribeVia chose a way: Subscribe then
	// never picks another for a namespace with PII fields.
	viaChosen bool
}

// Option configures a Client.
type Option func(*Client) error

// WithTimeout sets the bound of a call whose context has no deadline
// (default DefaultTimeout).
func WithTimeout(d time.Duration) Option {
	return func(c *Client) error {
		if d <= 0 {
			return fmt.Errorf("client: timeout must be positive, got %v", d)
		}
		c.timeout = d
		return nil
	}
}

// WithRetries sets how many times a write that failed with UNAVAILABLE or a
// timeout is retried with the same idempotency token (default 2), waiting
// backoff, doubled each time, in between (default 100ms).
func WithRetries(n int, backoff time.Duration) Option {
	return func(c *Client) error {
		if n < 0 || backoff < 0 {
			return fmt.Errorf("client: retries and backoff must not be negative")
		}
		c.retries, c.backoff = n, backoff
		return nil
	}
}

// DefaultShedRetries is how many times a call shed with RESOURCE_EXHAUSTED
// is retried (WithShedRetries).
const DefaultShedRetries = 4

// maxShedWait caps one wait before retrying a shed call, whatever the hint.
const maxShedWait = 2 * time.Second

// WithShedRetries sets how many times a call that Prism shed with
// RESOURCE_EXHAUSTED (a namespace, caller or gateway at its limit;
// nothing was done) is retried, each after the gateway's retry-after hint
// plus up to as much again of random jitter, at most 2 s, and never past
// the call's context (default DefaultShedRetries; 0 returns the error at
// once). The error then returned has RetryAfter set.
func WithShedRetries(n int) Option {
	return func(c *Client) error {
		if n < 0 {
			return fmt.Errorf("client: shed retries must not be negative, got %d", n)
		}
		c.shedRetries = n
		return nil
	}
}

// New returns a client over nc. The caller keeps ownership of nc.
func New(nc *nats.Conn, opts ...Option) (*Client, error) {
	if nc == nil {
		return nil, errors.New("client: nil NATS connection")
	}
	c := &Client{nc: nc, timeout: DefaultTimeout, retries: 2, backoff: 100 * time.Millisecond, shedRetries: DefaultShedRetries}
	for _, o := range opts {
		if err := o(c); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// call sends req to subject and decodes the reply into resp, or returns an
// *Error built from an error reply. A request Prism shed
// (RESOURCE_EXHAUSTED) is sent again after the hint, up to shedRetries
// times: nothing of it was done, so a retry is safe for every operation.
func (c *Client) call(ctx context.Context, op, subject string, req, resp proto.Message) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	for attempt := 0; ; attempt++ {
		err := c.callOnce(ctx, op, subject, req, resp)
		var e *Error
		if attempt >= c.shedRetries || !errors.As(err, &e) || e.Code != prismv1.Code_RESOURCE_EXHAUSTED {
			return err
		}
		if !sleepShed(ctx, e.RetryAfter) {
			return err
		}
	}
}

// sleepShed waits hint plus jitter (at most maxShedWait) and reports
// whether ctx still allows another attempt.
func sleepShed(ctx context.Context, hint time.Duration) bool {
	hint = max(hint, time.Millisecond)
	d := min(hint+rand.N(hint+1), maxShedWait)
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
		return false // the retry could not finish in time
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

// callOnce is one attempt of call.
func (c *Client) callOnce(ctx context.Context, op, subject string, req, resp proto.Message) error {
	data, err := proto.Marshal(req)
	if err != nil {
		return fmt.Errorf("prism %s: marshal request: %w", op, err)
	}
	msg := nats.NewMsg(subject)
	msg.Data = data
	msg.Header.Set(subjects.HeaderContentTypeReq, subjects.ContentTypeProto)
	injectTraceContext(ctx, msg.Header)
	reply, err := c.nc.RequestMsgWithContext(ctx, msg)
	if err != nil {
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			return &Error{Op: op, Code: prismv1.Code_UNAVAILABLE, Message: "no Prism gateway is listening on " + subject}
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
			if denied := c.refused(op, subject); denied != nil {
				return denied
			}
			return &Error{Op: op, Code: prismv1.Code_DEADLINE_EXCEEDED, Message: "no reply before the deadline: " + err.Error()}
		}
		if what := connectionDown(err); what != "" {
			return unavailable(op, what, err)
		}
		return fmt.Errorf("prism %s: %w", op, err)
	}
	if code := reply.Header.Get(subjects.HeaderErrorCode); code != "" {
		var er prismv1.ErrorReply
		if err := proto.Unmarshal(reply.Data, &er); err != nil || er.GetError() == nil {
			c := prismv1.Code(prismv1.Code_value[code])
			return &Error{Op: op, Code: c, Message: "undecodable error reply"}
		}
		return &Error{Op: op, Code: er.GetError().GetCode(), Message: er.GetError().GetMessage(), Seq: er.GetError().GetSeq(), RetryAfter: retryAfter(reply.Header, er.GetError())}
	}
	if err := proto.Unmarshal(reply.Data, resp); err != nil {
		return fmt.Errorf("prism %s: decode reply: %w", op, err)
	}
	return nil
}

// write calls a write operation, retrying retryable failures with the same
// request (and so the same idempotency token).
func (c *Client) write(ctx context.Context, op, subject string, req proto.Message) (*prismv1.WriteResponse, error) {
	var resp prismv1.WriteResponse
	if err := c.callRetry(ctx, op, subject, req, &resp); err != nil {
		return nil, err
	}
	return &resp, nil
}

// callRetry is call, retried with backoff on retryable errors (the
// request must be safe to repeat, as a write with an idempotency token is).
func (c *Client) callRetry(ctx context.Context, op, subject string, req, resp proto.Message) error {
	backoff := c.backoff
	for attempt := 0; ; attempt++ {
		err := c.call(ctx, op, subject, req, resp)
		if err == nil {
			return nil
		}
		if attempt >= c.retries || !retryable(err) || ctx.Err() != nil {
			return err
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
		backoff *= 2
	}
}

// injectTraceContext sets the traceparent and tracestate headers of the
// span of ctx, if any, in W3C trace context format whatever the global
// propagator: it is part of Prism's protocol, not of the process's setup.
// The headers are collected in a carrier of their own because handing h
// itself to the propagator would move every request's headers to the heap.
func injectTraceContext(ctx context.Context, h nats.Header) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return
	}
	c := make(propagation.MapCarrier, 2)
	propagation.TraceContext{}.Inject(ctx, c)
	for k, v := range c {
		h.Set(k, v)
	}
}

// storeMax sets v to x unless v already holds as much, for the highest
// sequence seen by concurrent callers.
func storeMax(v *atomic.Uint64, x uint64) {
	for {
		cur := v.Load()
		if x <= cur || v.CompareAndSwap(cur, x) {
			return
		}
	}
}

// retryAfter is the hint of an error reply: the body's retry_after_ms, else
// the Prism-Retry-After header, else 0.
func retryAfter(h nats.Header, e *prismv1.Error) time.Duration {
	if ms := e.GetRetryAfterMs(); ms > 0 {
		return time.Duration(ms) * time.Millisecond
	}
	if ms, err := strconv.ParseUint(h.Get(subjects.HeaderRetryAfter), 10, 32); err == nil {
		return time.Duration(ms) * time.Millisecond
	}
	return 0
}

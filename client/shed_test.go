package client_test

import (
	"context"
	"errors"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/client"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// shedding is a gateway stand-in that sheds the first n requests on
// subject with RESOURCE_EXHAUSTED and a hint of hintMS, in the body when
// inBody and else in the header only, then answers.
func shedding(t *testing.T, nc *nats.Conn, subject string, n int64, hintMS uint32, inBody bool) *atomic.Int64 {
	t.Helper()
	var calls atomic.Int64
	_, err := nc.Subscribe(subject, func(m *nats.Msg) {
		if calls.Add(1) <= n {
			e := &prismv1.Error{Code: prismv1.Code_RESOURCE_EXHAUSTED, Message: "namespace demo is above its write_rate limit"}
			if inBody {
				e.RetryAfterMs = hintMS
			}
			data, _ := proto.Marshal(&prismv1.ErrorReply{Error: e})
			r := nats.NewMsg(m.Reply)
			r.Data = data
			r.Header.Set(subjects.HeaderErrorCode, prismv1.Code_RESOURCE_EXHAUSTED.String())
			r.Header.Set(subjects.HeaderRetryAfter, strconv.Itoa(int(hintMS)))
			_ = m.RespondMsg(r)
			return
		}
		data, _ := proto.Marshal(&prismv1.WriteResponse{Seq: 7})
		_ = m.Respond(data)
	})
	if err != nil {
		t.Fatal(err)
	}
	return &calls
}

func put(ctx context.Context, c *client.Client) (uint64, error) {
	return c.KeyValue("demo").Put(ctx, []byte("a"), []client.Item{{Key: []byte("k"), Value: []byte("v")}})
}

// A shed put is sent again after the hint, by itself, and succeeds once
// the gateway admits it; a hint in the header alone is honoured too.
func TestShedCallsBackOffAndSucceed(t *testing.T) {
	for _, inBody := range []bool{true, false} {
		nc := connect(t)
		calls := shedding(t, nc, subjects.Write("demo", "put"), 2, 5, inBody)
		c, err := client.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		seq, err := put(context.Background(), c)
		if err != nil || seq != 7 {
			t.Fatalf("in body %v: Put = %d, %v; want 7 after two sheds", inBody, seq, err)
		}
		if n := calls.Load(); n != 3 {
			t.Errorf("in body %v: %d attempts, want 3", inBody, n)
		}
	}
}

// Retries are bounded: with WithShedRetries(2) a gateway that always sheds
// sees 3 attempts, and the error keeps the code and the hint.
func TestShedRetriesAreBounded(t *testing.T) {
	nc := connect(t)
	calls := shedding(t, nc, subjects.Write("demo", "put"), 1<<30, 3, true)
	c, err := client.New(nc, client.WithShedRetries(2))
	if err != nil {
		t.Fatal(err)
	}
	_, err = put(context.Background(), c)
	var e *client.Error
	if !errors.Is(err, client.ErrResourceExhausted) || !errors.As(err, &e) || e.RetryAfter != 3*time.Millisecond {
		t.Fatalf("Put = %v, want RESOURCE_EXHAUSTED with RetryAfter 3ms", err)
	}
	if n := calls.Load(); n != 3 {
		t.Errorf("%d attempts, want 3", n)
	}

	// WithShedRetries(0): the first shed is returned.
	c0, _ := client.New(nc, client.WithShedRetries(0))
	calls.Store(0)
	if _, err := put(context.Background(), c0); !errors.Is(err, client.ErrResourceExhausted) || calls.Load() != 1 {
		t.Errorf("without shed retries: %v after %d attempts, want RESOURCE_EXHAUSTED after 1", err, calls.Load())
	}
}

// A hint longer than the call's context leaves is not waited for: the
// call returns the shed error instead of a retry that could not finish.
func TestShedRetryRespectsTheContext(t *testing.T) {
	nc := connect(t)
	calls := shedding(t, nc, subjects.Write("demo", "put"), 1<<30, 60_000, true)
	c, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err = put(ctx, c)
	if !errors.Is(err, client.ErrResourceExhausted) {
		t.Fatalf("Put = %v, want RESOURCE_EXHAUSTED", err)
	}
	if ctx.Err() != nil || calls.Load() != 1 {
		t.Errorf("context %v after %d attempts: want the call to return before its deadline after 1", ctx.Err(), calls.Load())
	}
}

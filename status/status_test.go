package status_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
)

// errors.Is matches on the code, through wrapping, whatever the message.
func TestIsMatchesTheCode(t *testing.T) {
	err := fmt.Errorf("apply: %w", status.Newf(prismv1.Code_CONFLICT, "namespace %s changed", "orders"))
	if !errors.Is(err, status.ErrConflict) {
		t.Errorf("errors.Is(%v, ErrConflict) = false", err)
	}
	if errors.Is(err, status.ErrNotFound) {
		t.Errorf("errors.Is(%v, ErrNotFound) = true", err)
	}
	if e := status.Invalidf("x %d", 1); e.Code != prismv1.Code_INVALID_ARGUMENT || e.Message != "x 1" {
		t.Errorf("Invalidf = %+v", e)
	}
}

func TestConvert(t *testing.T) {
	coded := &status.Error{Code: prismv1.Code_NOT_FOUND, Message: "gone", Seq: 7}
	for _, tt := range []struct {
		name string
		err  error
		want prismv1.Code
	}{
		{"coded, wrapped", fmt.Errorf("read: %w", coded), prismv1.Code_NOT_FOUND},
		{"deadline", fmt.Errorf("wait: %w", context.DeadlineExceeded), prismv1.Code_DEADLINE_EXCEEDED},
		{"canceled", context.Canceled, prismv1.Code_UNAVAILABLE},
		{"anything else", errors.New("disk on fire"), prismv1.Code_INTERNAL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := status.Convert(tt.err)
			if e.Code != tt.want {
				t.Fatalf("Convert(%v).Code = %v, want %v", tt.err, e.Code, tt.want)
			}
			if p := e.Proto().GetError(); p.GetCode() != tt.want || p.GetMessage() != e.Message || p.GetSeq() != e.Seq {
				t.Fatalf("Proto() = %v, want the code, message and seq of %+v", p, e)
			}
		})
	}
	if status.Convert(coded) != coded {
		t.Error("Convert of an *Error is not that error")
	}
}

func TestJetStreamClassification(t *testing.T) {
	wrong := &jetstream.APIError{Code: 400, ErrorCode: status.JSErrWrongLastSequence, Description: "wrong last sequence: 42"}
	if !status.IsWrongLastSequence(fmt.Errorf("publish: %w", wrong)) {
		t.Error("IsWrongLastSequence(wrong last sequence) = false")
	}
	if n, ok := status.CurrentSequence(wrong); !ok || n != 42 {
		t.Errorf("CurrentSequence = %d, %v; want 42, true", n, ok)
	}
	if _, ok := status.CurrentSequence(errors.New("wrong last sequence: 42")); ok {
		t.Error("CurrentSequence parsed an error that is not JetStream's")
	}
	for _, tt := range []struct {
		name string
		err  error
		want prismv1.Code
	}{
		{"timeout", nats.ErrTimeout, prismv1.Code_UNAVAILABLE},
		{"no responders", nats.ErrNoResponders, prismv1.Code_UNAVAILABLE},
		{"too large", &jetstream.APIError{Code: 400, ErrorCode: 10054, Description: "message size exceeds maximum allowed"}, prismv1.Code_INVALID_ARGUMENT},
		{"server error", &jetstream.APIError{Code: 503, ErrorCode: 10008, Description: "jetstream temporarily unavailable"}, prismv1.Code_UNAVAILABLE},
		{"refused", &jetstream.APIError{Code: 400, ErrorCode: 10999, Description: "no"}, prismv1.Code_INTERNAL},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if e := status.FromJetStream(tt.err, "orders", "storing the write"); e.Code != tt.want || !errors.Is(e, tt.err) {
				t.Fatalf("FromJetStream(%v) = %v, want code %v wrapping the cause", tt.err, e, tt.want)
			}
		})
	}
}

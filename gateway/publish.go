package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Retries of a publish that found no stream, as jetstream.PublishMsg does
// by default.
const (
	pubRetryWait     = jetstream.DefaultPubRetryWait
	pubRetryAttempts = jetstream.DefaultPubRetryAttempts
)

// publish stores m on its stream and returns JetStream's ack. It is
// jetstream.PublishMsg without options, with the same retries and errors,
// except that it reads the acks the server writes with a small parser
// instead of encoding/json: decoding the ack was the largest single cost of
// a write in the gateway. ctx must have a deadline.
//
// Errors: jetstream.ErrNoStreamResponse when no stream takes m's subject,
// an error wrapping *jetstream.APIError when JetStream refuses m,
// jetstream.ErrInvalidJSAck for an ack it cannot read, and the errors of
// nats.Conn.RequestMsgWithContext.
func (g *Gateway) publish(ctx context.Context, m *nats.Msg) (*jetstream.PubAck, error) {
	resp, err := g.nc.RequestMsgWithContext(ctx, m)
	if err != nil {
		for r := 0; errors.Is(err, nats.ErrNoResponders) && r < pubRetryAttempts; r++ {
			// A stream may be between leaders; retry a little.
			select {
			case <-ctx.Done():
			case <-time.After(pubRetryWait):
			}
			resp, err = g.nc.RequestMsgWithContext(ctx, m)
		}
		if err != nil {
			if errors.Is(err, nats.ErrNoResponders) {
				return nil, jetstream.ErrNoStreamResponse
			}
			return nil, err
		}
	}
	return parsePubAck(resp.Data)
}

// pubAckResponse is the JSON of a JetStream publish ack.
type pubAckResponse struct {
	Error *jetstream.APIError `json:"error,omitempty"`
	*jetstream.PubAck
}

// parsePubAck decodes an ack. The success acks of nats-server have a fixed
// shape (see stream.go, the pubAck template):
//
//	{"stream":"S","seq":N}
//	{"stream":"S","domain":"D","seq":N}
//	{"stream":"S","seq":N,"duplicate": true}
//
// Those are read by hand; anything else (errors, batches, escapes, another
// server's formatting) goes to encoding/json, so the result is the same as
// jetstream.PublishMsg's.
func parsePubAck(data []byte) (*jetstream.PubAck, error) {
	if ack, ok := parseFastPubAck(data); ok {
		return ack, nil
	}
	var resp pubAckResponse
	if err := json.Unmarshal(data, &resp); err != nil {
		return nil, jetstream.ErrInvalidJSAck
	}
	if resp.Error != nil {
		return nil, fmt.Errorf("nats: %w", resp.Error)
	}
	if resp.PubAck == nil || resp.Stream == "" {
		return nil, jetstream.ErrInvalidJSAck
	}
	return resp.PubAck, nil
}

func parseFastPubAck(data []byte) (*jetstream.PubAck, bool) {
	rest, ok := bytes.CutPrefix(data, []byte(`{"stream":`))
	if !ok {
		return nil, false
	}
	stream, rest, ok := cutPlainString(rest)
	if !ok || stream == "" {
		return nil, false
	}
	ack := &jetstream.PubAck{Stream: stream}
	if r, ok := bytes.CutPrefix(rest, []byte(`,"domain":`)); ok {
		if ack.Domain, rest, ok = cutPlainString(r); !ok {
			return nil, false
		}
	}
	if rest, ok = bytes.CutPrefix(rest, []byte(`,"seq":`)); !ok {
		return nil, false
	}
	i := 0
	for i < len(rest) && rest[i] >= '0' && rest[i] <= '9' {
		i++
	}
	if i > 1 && rest[0] == '0' { // not JSON
		return nil, false
	}
	seq, err := strconv.ParseUint(string(rest[:i]), 10, 64)
	if err != nil {
		return nil, false
	}
	ack.Sequence = seq
	switch string(rest[i:]) {
	case `}`:
	case `,"duplicate": true}`, `,"duplicate":true}`:
		ack.Duplicate = true
	default:
		return nil, false
	}
	return ack, true
}

// cutPlainString reads a JSON string of printable ASCII without escapes at
// the start of b and returns it and the bytes after it.
func cutPlainString(b []byte) (string, []byte, bool) {
	if len(b) == 0 || b[0] != '"' {
		return "", nil, false
	}
	for i := 1; i < len(b); i++ {
		switch c := b[i]; {
		case c == '"':
			return string(b[1:i]), b[i+1:], true
		case c == '\\' || c < 0x20 || c >= 0x80:
			return "", nil, false
		}
	}
	return "", nil, false
}

package gateway

import (
	"errors"
	"testing"

	"github.com/nats-io/nats.go/jetstream"
)

// TestParseFastPubAck: the hand parser reads exactly the ack shapes
// nats-server writes, and declines anything else (which parsePubAck then
// hands to encoding/json), so the fast path never changes a result.
func TestParseFastPubAck(t *testing.T) {
	tests := []struct {
		name   string
		data   string
		want   jetstream.PubAck
		wantOK bool
	}{
		{"plain", `{"stream":"PRISM_DEMO","seq":42}`, jetstream.PubAck{Stream: "PRISM_DEMO", Sequence: 42}, true},
		{"domain", `{"stream":"S","domain":"hub","seq":7}`, jetstream.PubAck{Stream: "S", Domain: "hub", Sequence: 7}, true},
		{"duplicate", `{"stream":"S","seq":9,"duplicate": true}`, jetstream.PubAck{Stream: "S", Sequence: 9, Duplicate: true}, true},
		{"duplicate without space", `{"stream":"S","seq":9,"duplicate":true}`, jetstream.PubAck{Stream: "S", Sequence: 9, Duplicate: true}, true},
		{"seq zero", `{"stream":"S","seq":0}`, jetstream.PubAck{Stream: "S"}, true},
		{"max seq", `{"stream":"S","seq":18446744073709551615}`, jetstream.PubAck{Stream: "S", Sequence: 1<<64 - 1}, true},
		{"leading zero", `{"stream":"S","seq":07}`, jetstream.PubAck{}, false},
		{"seq overflow", `{"stream":"S","seq":18446744073709551616}`, jetstream.PubAck{}, false},
		{"no seq digits", `{"stream":"S","seq":}`, jetstream.PubAck{}, false},
		{"empty stream", `{"stream":"","seq":1}`, jetstream.PubAck{}, false},
		{"escaped stream", `{"stream":"S\"x","seq":1}`, jetstream.PubAck{}, false},
		{"non-ASCII stream", "{\"stream\":\"S\u00e9\",\"seq\":1}", jetstream.PubAck{}, false},
		{"control byte", "{\"stream\":\"S\x01\",\"seq\":1}", jetstream.PubAck{}, false},
		{"unterminated stream", `{"stream":"S`, jetstream.PubAck{}, false},
		{"stream not a string", `{"stream":1,"seq":1}`, jetstream.PubAck{}, false},
		{"bad domain", `{"stream":"S","domain":1,"seq":1}`, jetstream.PubAck{}, false},
		{"other field order", `{"seq":1,"stream":"S"}`, jetstream.PubAck{}, false},
		{"error", `{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"}}`, jetstream.PubAck{}, false},
		{"truncated after seq", `{"stream":"S","seq":12`, jetstream.PubAck{}, false},
		{"trailing field", `{"stream":"S","seq":1,"batch":"b"}`, jetstream.PubAck{}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, ok := parseFastPubAck([]byte(tt.data))
			if ok != tt.wantOK {
				t.Fatalf("parseFastPubAck(%s) ok = %v, want %v", tt.data, ok, tt.wantOK)
			}
			if ok && *got != tt.want {
				t.Fatalf("parseFastPubAck(%s) = %+v, want %+v", tt.data, *got, tt.want)
			}
		})
	}
}

// TestParsePubAckSlowPath: what the fast path declines is read by
// encoding/json like jetstream.PublishMsg does.
func TestParsePubAckSlowPath(t *testing.T) {
	ack, err := parsePubAck([]byte(`{"seq":5,"stream":"S","duplicate":false}`))
	if err != nil || ack.Stream != "S" || ack.Sequence != 5 {
		t.Fatalf("reordered ack: %+v, %v", ack, err)
	}
	_, err = parsePubAck([]byte(`{"error":{"code":400,"err_code":10071,"description":"wrong last sequence: 3"}}`))
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || apiErr.ErrorCode != 10071 {
		t.Fatalf("error ack: %v, want the APIError", err)
	}
	for _, bad := range []string{`not json`, `{}`, `{"stream":""}`} {
		if _, err := parsePubAck([]byte(bad)); !errors.Is(err, jetstream.ErrInvalidJSAck) {
			t.Errorf("parsePubAck(%s) = %v, want ErrInvalidJSAck", bad, err)
		}
	}
}

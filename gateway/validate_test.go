package gateway_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"

	"google.golang.org/protobuf/types/known/durationpb"
	"google.golang.org/protobuf/types/known/timestamppb"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

func TestBadRequests(t *testing.T) {
	e := newEnv(t, envConfig{})
	// One record, so that the stream is not empty and conflicts are possible.
	var seed prismv1.WriteResponse
	mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("seed", "k", "v"), &seed)
	before := streamMsgs(t, e.js)

	put := subjects.Write(testNS, "put")
	bigValue := putReq("r", "k", "")
	bigValue.Items[0].Value = bytes.Repeat([]byte("x"), 512<<10+1)
	twoItemsBig := &prismv1.PutRequest{Id: []byte("r"), Items: []*prismv1.Item{
		{Key: []byte("a"), Value: bytes.Repeat([]byte("x"), 500<<10)},
		{Key: []byte("b"), Value: bytes.Repeat([]byte("x"), 500<<10)},
	}}
	tooManyItems := &prismv1.PutRequest{Id: []byte("r")}
	for range 1001 {
		tooManyItems.Items = append(tooManyItems.Items, &prismv1.Item{Key: []byte("k"), Value: []byte("v")})
	}

	tests := []struct {
		name     string
		subject  string
		body     []byte // raw body; if nil, req is encoded
		req      proto.Message
		enc      enc
		ctype    string // Content-Type header to send instead of enc's
		wantCode prismv1.Code
		wantMsg  string
	}{
		{name: "malformed JSON", subject: put, body: []byte(`{"id":`), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "prism.v1.PutRequest"},
		{name: "malformed proto", subject: put, body: []byte{0xff, 0xff}, enc: encProto, wantCode: prismv1.Code_INVALID_ARGUMENT},
		{name: "unknown JSON field", subject: put, body: []byte(`{"id":"cg==","items":[{"key":"aw==","value":"dg=="}],"colour":"red"}`), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "colour"},
		{name: "unknown namespace", subject: subjects.Write("nope", "put"), req: putReq("r", "k", "v"), wantCode: prismv1.Code_NAMESPACE_NOT_FOUND, wantMsg: "nope"},
		{name: "invalid namespace name", subject: "prism.NOPE.write.put", req: putReq("r", "k", "v"), wantCode: prismv1.Code_INVALID_ARGUMENT},
		{name: "unknown write op", subject: subjects.Write(testNS, "upsert"), req: putReq("r", "k", "v"), wantCode: prismv1.Code_UNIMPLEMENTED, wantMsg: "write.upsert"},
		{name: "unknown read op", subject: subjects.Read(testNS, "query"), body: []byte(`{}`), wantCode: prismv1.Code_UNIMPLEMENTED},
		{name: "oversized value", subject: put, req: bigValue, enc: encProto, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "value of item 1 is 524289 bytes; the limit is 524288"},
		{name: "oversized event", subject: put, req: twoItemsBig, enc: encProto, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "the limit is 921600"},
		{name: "too many items", subject: put, req: tooManyItems, enc: encProto, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "1001 items"},
		{name: "no items", subject: put, req: &prismv1.PutRequest{Id: []byte("r")}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "no items"},
		{name: "empty id", subject: put, req: putReq("", "k", "v"), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "id is empty"},
		{name: "empty body", subject: put, body: []byte{}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "id is empty"},
		{name: "1025-byte id", subject: put, req: putReq(strings.Repeat("i", 1025), "k", "v"), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "1025 bytes; the limit is 1024"},
		{name: "1025-byte key", subject: put, req: putReq("r", strings.Repeat("k", 1025), "v"), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "key of item 1"},
		{name: "zero ttl", subject: put, req: &prismv1.PutRequest{Id: []byte("r"), Items: []*prismv1.Item{{Key: []byte("k"), Ttl: durationpb.New(0)}}}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "positive"},
		{name: "client expire_time", subject: put, req: &prismv1.PutRequest{Id: []byte("r"), Items: []*prismv1.Item{{Key: []byte("k"), ExpireTime: timestamppb.Now()}}}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "expire_time"},
		{name: "duplicate keys", subject: put, req: &prismv1.PutRequest{Id: []byte("r"), Items: []*prismv1.Item{{Key: []byte("k")}, {Key: []byte("k")}}}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "item 2 repeats"},
		{name: "token with space", subject: put, req: &prismv1.PutRequest{Id: []byte("r"), Items: []*prismv1.Item{{Key: []byte("k")}}, IdempotencyToken: "a b"}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "idempotency_token"},
		{name: "long token", subject: put, req: &prismv1.PutRequest{Id: []byte("r"), Items: []*prismv1.Item{{Key: []byte("k")}}, IdempotencyToken: strings.Repeat("t", 129)}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "129 bytes"},
		{name: "absurd revision", subject: put, req: &prismv1.PutRequest{Id: []byte("r"), Items: []*prismv1.Item{{Key: []byte("k")}}, ExpectedRevision: ptr(^uint64(0))}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "not a stream sequence"},
		{name: "bad content type", subject: put, req: putReq("r", "k", "v"), ctype: "text/plain", wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "Content-Type"},
		{name: "stale revision", subject: put, req: &prismv1.PutRequest{Id: []byte("seed"), Items: []*prismv1.Item{{Key: []byte("k")}}, ExpectedRevision: ptr[uint64](5)}, wantCode: prismv1.Code_CONFLICT, wantMsg: `"seed" is at revision 1, not the expected 5`},
		{name: "delete of no id", subject: subjects.Write(testNS, "delete"), req: &prismv1.DeleteRequest{}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "id is empty"},
		{name: "mutate with no mutations", subject: subjects.Write(testNS, "mutate"), req: &prismv1.MutateRequest{}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "no mutations"},
		{name: "mutate inner token", subject: subjects.Write(testNS, "mutate"), req: mutateReq("", &prismv1.Mutation{Op: &prismv1.Mutation_Put{Put: &prismv1.PutRequest{Id: []byte("r"), Items: []*prismv1.Item{{Key: []byte("k")}}, IdempotencyToken: "inner"}}}), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "mutation 1: put carries its own idempotency_token"},
		{name: "mutate empty mutation", subject: subjects.Write(testNS, "mutate"), req: mutateReq("", &prismv1.Mutation{}), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "neither put nor delete"},
		{name: "mutate condition on a record written earlier", subject: subjects.Write(testNS, "mutate"), req: mutateReq("", mPut("a", "k", "1", nil), mDel("a", ptr[uint64](1))), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "mutation 2"},
		{name: "get keys and range", subject: subjects.Read(testNS, "get"), req: &prismv1.GetRequest{Id: []byte("r"), Keys: [][]byte{[]byte("a")}, Range: &prismv1.KeyRange{Start: []byte("a")}}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "both keys and range"},
		{name: "get inverted range", subject: subjects.Read(testNS, "get"), req: &prismv1.GetRequest{Id: []byte("r"), Range: &prismv1.KeyRange{Start: []byte("b"), End: []byte("a")}}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "not before end"},
		{name: "get bad page token", subject: subjects.Read(testNS, "get"), req: &prismv1.GetRequest{Id: []byte("r"), PageToken: "not base64!"}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "page_token"},
		{name: "get non-canonical page token", subject: subjects.Read(testNS, "get"), req: &prismv1.GetRequest{Id: []byte("r"), PageToken: "YR"}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "page_token"},
		{name: "scan bad page token", subject: subjects.Read(testNS, "scan"), req: &prismv1.ScanRequest{PageToken: "a=b"}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "page_token"},
		{name: "scan page too large", subject: subjects.Read(testNS, "scan"), req: &prismv1.ScanRequest{PageSize: 1001}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "page_size 1001"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := tt.body
			if body == nil {
				body = encode(t, tt.req, tt.enc)
			}
			var msg *nats.Msg
			if tt.ctype != "" {
				m := nats.NewMsg(tt.subject)
				m.Data = body
				m.Header.Set(subjects.HeaderContentTypeReq, tt.ctype)
				var err error
				if msg, err = e.nc.RequestMsg(m, 10*time.Second); err != nil {
					t.Fatal(err)
				}
			} else {
				msg = request(t, e.nc, tt.subject, body, tt.enc)
			}
			er := decodeReply(t, msg, &prismv1.WriteResponse{}, tt.enc)
			if er == nil {
				t.Fatalf("no error, want %s", tt.wantCode)
			}
			if er.GetCode() != tt.wantCode || msg.Header.Get(subjects.HeaderErrorCode) != tt.wantCode.String() {
				t.Fatalf("code %s (header %s), want %s: %s", er.GetCode(), msg.Header.Get(subjects.HeaderErrorCode), tt.wantCode, er.GetMessage())
			}
			if !strings.Contains(er.GetMessage(), tt.wantMsg) {
				t.Errorf("message %q does not contain %q", er.GetMessage(), tt.wantMsg)
			}
			if n := streamMsgs(t, e.js); n != before {
				t.Fatalf("stream has %d messages, want %d", n, before)
			}
		})
	}
}

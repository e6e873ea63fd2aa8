package gateway_test

import (
	"crypto/sha256"
	"strings"
	"testing"

	"google.golang.org/protobuf/proto"

	"github.com/prism-data/prism/gateway"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// TestBadLargeValueRequests: malformed uploads, parts and chunked puts are
// INVALID_ARGUMENT with a message naming the fault, and store no event.
func TestBadLargeValueRequests(t *testing.T) {
	e := newEnv(t, envConfig{opts: []gateway.Option{gateway.WithMaxChunkedValueBytes(4 << 20)}})
	var up prismv1.UploadResponse
	mustCall(t, e.nc, subjects.Write(testNS, "upload"), &prismv1.UploadRequest{Id: []byte("r"), Key: []byte("k"), Size: 1 << 20}, &up)
	if up.GetUploadId() == "" || up.GetMaxPartBytes() != gateway.MaxPartBytes || up.GetExpireTime() == nil {
		t.Fatalf("upload = %v", &up)
	}
	data := make([]byte, gateway.MaxPartBytes)
	var pr prismv1.UploadPartResponse
	mustCall(t, e.nc, subjects.Write(testNS, "part"), &prismv1.UploadPartRequest{UploadId: up.GetUploadId(), Id: []byte("r"), Key: []byte("k"), Index: 0, Data: data}, &pr)
	sum := sha256.Sum256(append(append([]byte(nil), data...), data...))
	chunked := func(id, key string, c *prismv1.ChunkedValue, value []byte) *prismv1.PutRequest {
		return &prismv1.PutRequest{Id: []byte(id), Items: []*prismv1.Item{{Key: []byte(key), Value: value, Chunked: c}}}
	}
	ref := func(upload string, size uint64, sha []byte) *prismv1.ChunkedValue {
		return &prismv1.ChunkedValue{UploadId: upload, Size: size, Sha256: sha}
	}
	cases := []struct {
		name    string
		op      string
		req     proto.Message
		wantMsg string
	}{
		{"upload too large", "upload", &prismv1.UploadRequest{Id: []byte("r"), Key: []byte("k"), Size: 5 << 20}, "the limit is 4194304"},
		{"upload of nothing", "upload", &prismv1.UploadRequest{Id: []byte("r"), Key: []byte("k")}, "size is 0"},
		{"part too large", "part", &prismv1.UploadPartRequest{UploadId: up.GetUploadId(), Id: []byte("r"), Key: []byte("k"), Data: make([]byte, gateway.MaxPartBytes+1)}, "a part has 1 to"},
		{"part past the last", "part", &prismv1.UploadPartRequest{UploadId: up.GetUploadId(), Id: []byte("r"), Key: []byte("k"), Index: 8, Data: data}, "past the last part"},
		{"part with a bad upload id", "part", &prismv1.UploadPartRequest{UploadId: "a.b", Id: []byte("r"), Key: []byte("k"), Data: data}, "upload_id"},
		{"value and chunked", "put", chunked("r", "k", ref(up.GetUploadId(), 1<<20, sum[:]), []byte("x")), "sets both value and chunked"},
		{"short sha256", "put", chunked("r", "k", ref(up.GetUploadId(), 1<<20, sum[:4]), nil), "chunked.sha256 is 4 bytes"},
		{"parts set by the caller", "put", chunked("r", "k", &prismv1.ChunkedValue{UploadId: up.GetUploadId(), Size: 1 << 20, Sha256: sum[:], Parts: 2}, nil), "set by Prism"},
		{"missing part", "put", chunked("r", "k", ref(up.GetUploadId(), 1<<20, sum[:]), nil), "holds 524288 bytes in 1 parts, not the 1048576 declared"},
		{"wrong digest", "put", chunked("r", "k", ref(up.GetUploadId(), 1<<19, sum[:]), nil), "do not have the declared sha256"},
		{"another record's upload", "put", chunked("other", "k", ref(up.GetUploadId(), 1<<19, sum[:]), nil), "another record or item key"},
		{"unknown upload", "put", chunked("r", "k", ref("nosuchupload", 1<<19, sum[:]), nil), "has no parts"},
		{"inline value too large", "put", chunked("r", "k", nil, make([]byte, gateway.MaxValueBytes+1)), "upload a larger value in parts"},
		{"short sha256 in mutate", "mutate", &prismv1.MutateRequest{Mutations: []*prismv1.Mutation{{Op: &prismv1.Mutation_Put{Put: chunked("r", "k", ref(up.GetUploadId(), 1<<20, sum[:4]), nil)}}}}, "mutation 1: item 1: chunked.sha256 is 4 bytes"},
		{"wrong digest in mutate", "mutate", &prismv1.MutateRequest{Mutations: []*prismv1.Mutation{{Op: &prismv1.Mutation_Put{Put: chunked("r", "k", ref(up.GetUploadId(), 1<<19, sum[:]), nil)}}}}, "mutation 1: the parts of upload"},
		{"value slice too long", "value", &prismv1.GetValueRequest{Id: []byte("r"), Key: []byte("k"), Length: gateway.MaxPartBytes + 1}, "largest slice"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			subj := subjects.Write(testNS, tc.op)
			if tc.op == "value" {
				subj = subjects.Read(testNS, tc.op)
			}
			var resp prismv1.WriteResponse
			er := call(t, e.nc, subj, tc.req, &resp, encProto)
			if !isCode(er, prismv1.Code_INVALID_ARGUMENT) || !strings.Contains(er.GetMessage(), tc.wantMsg) {
				t.Fatalf("%v; want INVALID_ARGUMENT containing %q", er, tc.wantMsg)
			}
		})
	}
	if n := streamMsgs(t, e.js); n != 0 {
		t.Fatalf("namespace stream has %d events after refused requests, want 0", n)
	}
}

package gateway_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/pii"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// randomBytes returns n pseudo-random bytes: incompressible, so that no
// shortcut can pass by accident.
func randomBytes(n int, seed byte) []byte {
	b := make([]byte, n)
	_, _ = rand.NewChaCha8([32]byte{seed}).Read(b)
	return b
}

// uploadValue uploads value for item key of record id in parts of
// gateway.MaxPartBytes, leaving out the parts whose index is in skip, and
// returns the reference a put names it by.
func uploadValue(t testing.TB, e *env, id, key string, value []byte, skip ...uint32) *prismv1.ChunkedValue {
	t.Helper()
	var up prismv1.UploadResponse
	mustCall(t, e.nc, subjects.Write(testNS, "upload"), &prismv1.UploadRequest{Id: []byte(id), Key: []byte(key), Size: uint64(len(value))}, &up)
	for i := uint32(0); int(i)*gateway.MaxPartBytes < len(value); i++ {
		data := value[int(i)*gateway.MaxPartBytes : min(int(i+1)*gateway.MaxPartBytes, len(value))]
		if slices.Contains(skip, i) {
			continue
		}
		var pr prismv1.UploadPartResponse
		mustCall(t, e.nc, subjects.Write(testNS, "part"), &prismv1.UploadPartRequest{UploadId: up.GetUploadId(), Id: []byte(id), Key: []byte(key), Index: i, Data: data}, &pr)
	}
	sum := sha256.Sum256(value)
	return &prismv1.ChunkedValue{UploadId: up.GetUploadId(), Size: uint64(len(value)), Sha256: sum[:]}
}

func mChunked(id, key string, ref *prismv1.ChunkedValue, more ...*prismv1.Item) *prismv1.Mutation {
	items := append([]*prismv1.Item{{Key: []byte(key), Chunked: ref}}, more...)
	return &prismv1.Mutation{Op: &prismv1.Mutation_Put{Put: &prismv1.PutRequest{Id: []byte(id), Items: items}}}
}

// storedItems reads record id straight from the env's SQLite store once
// the projection applied seq, as key → value.
func storedItems(t testing.TB, e *env, id string, seq uint64) map[string][]byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.proj.WaitApplied(ctx, seq); err != nil {
		t.Fatalf("projection did not apply seq %d: %v", seq, err)
	}
	resp, err := e.store.GetItems(ctx, &prismv1.GetRequest{Id: []byte(id)})
	if err != nil {
		t.Fatalf("sqlite get %s: %v", id, err)
	}
	out := map[string][]byte{}
	for _, it := range resp.GetItems() {
		out[string(it.GetKey())] = it.GetValue()
	}
	return out
}

// readLargeValue reads item key of record id, a large value, through the
// gateway: a get that announces it, then value slices at its revision.
func readLargeValue(t testing.TB, e *env, id, key string, minSeq uint64) []byte {
	t.Helper()
	var got prismv1.GetResponse
	mustCall(t, e.nc, subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte(id), Keys: [][]byte{[]byte(key)}, MinSeq: minSeq}, &got)
	if len(got.GetItems()) != 1 || got.GetItems()[0].GetChunked() == nil {
		t.Fatalf("get %s/%s = %v; want one item announced as chunked", id, key, &got)
	}
	size := got.GetItems()[0].GetChunked().GetSize()
	var v []byte
	for uint64(len(v)) < size {
		var slice prismv1.GetValueResponse
		mustCall(t, e.nc, subjects.Read(testNS, "value"), &prismv1.GetValueRequest{Id: []byte(id), Key: []byte(key), Revision: got.GetRevision(), Offset: uint64(len(v))}, &slice)
		if len(slice.GetData()) == 0 {
			t.Fatalf("value slice at %d of %d is empty", len(v), size)
		}
		v = append(v, slice.GetData()...)
	}
	return v
}

// TestMutateLargeValue: a mutate with a 2 MiB uploaded value, a small put
// and a delete stores them in one batch; the projection holds the large
// value whole in SQLite, byte for byte, also when it is a PII field
// (sealed there, opened on read).
func TestMutateLargeValue(t *testing.T) {
	cases := []struct {
		name string
		cfg  func(testing.TB) envConfig
	}{
		{"plain", func(testing.TB) envConfig { return envConfig{} }},
		{"pii field", func(t testing.TB) envConfig {
			return envConfig{kek: testKEK(t), namespace: func(n *namespaces.Namespace) {
				n.Fields = namespaces.NewNames("body", "name", "k")
				n.PII = namespaces.NewPIIFields(namespaces.PIIField{Name: "body", Kind: pii.KindGeneric})
			}}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, tc.cfg(t))
			var seed prismv1.WriteResponse
			mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("gone", "k", "old"), &seed)
			big := randomBytes(2<<20+1234, 1) // 5 parts, the last one short
			ref := uploadValue(t, e, "doc", "body", big)

			req := mutateReq("batch-large",
				mChunked("doc", "body", ref, &prismv1.Item{Key: []byte("name"), Value: []byte("report.pdf")}),
				mPut("small", "k", "v", nil),
				mDel("gone", ptr(seed.GetSeq())))
			var resp prismv1.WriteResponse
			mustCall(t, e.nc, subjects.Write(testNS, "mutate"), req, &resp)
			if len(resp.GetSeqs()) != 3 {
				t.Fatalf("mutate reply %v; want 3 seqs", &resp)
			}

			// The event carries the reference, not the value.
			m := storedMsg(t, e.js, resp.GetSeqs()[0])
			ev, err := subjects.DecodeKeyValueEvent(m.Subject, m.Header, m.Data)
			if err != nil {
				t.Fatal(err)
			}
			c := ev.GetPut().GetItems()[0].GetChunked()
			if c.GetSize() != uint64(len(big)) || c.GetParts() != 5 || len(ev.GetPut().GetItems()[0].GetValue()) != 0 {
				t.Fatalf("stored item %v; want a reference to 5 parts of %d bytes", ev.GetPut().GetItems()[0], len(big))
			}

			doc := storedItems(t, e, "doc", resp.GetSeq())
			sealed := e.keyring != nil
			if sealed == bytes.Equal(doc["body"], big) {
				t.Fatalf("sqlite holds %d bytes for body (equal to the value: %v); want the value whole, sealed only in a PII field", len(doc["body"]), !sealed)
			}
			if string(doc["name"]) != "report.pdf" {
				t.Fatalf("sqlite name = %q", doc["name"])
			}
			if got := readLargeValue(t, e, "doc", "body", resp.GetSeq()); !bytes.Equal(got, big) {
				t.Fatalf("read back %d bytes, not the %d written", len(got), len(big))
			}
			if small := storedItems(t, e, "small", resp.GetSeq()); string(small["k"]) != "v" {
				t.Fatalf("sqlite small = %q", small)
			}
			if gone := storedItems(t, e, "gone", resp.GetSeq()); len(gone) != 0 {
				t.Fatalf("sqlite still holds the deleted record: %q", gone)
			}

			// A retry with the same token is the original, not a second write.
			var again prismv1.WriteResponse
			mustCall(t, e.nc, subjects.Write(testNS, "mutate"), req, &again)
			if !again.GetDuplicate() || again.GetSeq() != resp.GetSeq() {
				t.Fatalf("retry = %v; want a duplicate of seq %d", &again, resp.GetSeq())
			}
		})
	}
}

// TestMutateBadUpload: a mutate naming an upload that is incomplete,
// digests to another sha256 or was made for another record is
// INVALID_ARGUMENT naming the mutation, and none of its mutations is
// stored or projected, not even those before it.
func TestMutateBadUpload(t *testing.T) {
	e := newEnv(t, envConfig{})
	var seed prismv1.WriteResponse
	mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("kept", "k", "old"), &seed)
	value := randomBytes(3*gateway.MaxPartBytes, 2)
	gap := uploadValue(t, e, "doc", "body", value, 1) // parts 0 and 2 only
	wrongSum := uploadValue(t, e, "doc", "body", value)
	wrongSum.Sha256 = bytes.Repeat([]byte{7}, sha256.Size)
	foreign := uploadValue(t, e, "other", "body", value)
	cases := []struct {
		name    string
		ref     *prismv1.ChunkedValue
		wantMsg string
	}{
		{"missing part", gap, "missing part 1 of 3"},
		{"wrong sha256", wrongSum, "do not have the declared sha256"},
		{"another record's upload", foreign, "another record or item key"},
	}
	before := streamMsgs(t, e.js)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req := mutateReq("", mPut("fresh", "k", "1", nil), mChunked("doc", "body", tc.ref), mDel("kept", nil))
			var resp prismv1.WriteResponse
			er := call(t, e.nc, subjects.Write(testNS, "mutate"), req, &resp, encProto)
			if !isCode(er, prismv1.Code_INVALID_ARGUMENT) || !strings.Contains(er.GetMessage(), tc.wantMsg) || !strings.Contains(er.GetMessage(), "mutation 2: ") {
				t.Fatalf("mutate = %v; want INVALID_ARGUMENT naming mutation 2 and containing %q", er, tc.wantMsg)
			}
		})
	}
	if n := streamMsgs(t, e.js); n != before {
		t.Fatalf("stream has %d messages after refused mutates, want %d", n, before)
	}
	// A put after them is projected: had any of them stored an event, the
	// projection would have applied it first.
	var probe prismv1.WriteResponse
	mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("probe", "k", "1"), &probe)
	for id, want := range map[string]map[string][]byte{"fresh": {}, "doc": {}, "kept": {"k": []byte("old")}, "probe": {"k": []byte("1")}} {
		got := storedItems(t, e, id, probe.GetSeq())
		if len(got) != len(want) || (len(want) > 0 && !bytes.Equal(got["k"], want["k"])) {
			t.Errorf("sqlite %s = %q, want %q", id, got, want)
		}
	}
}

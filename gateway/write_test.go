package gateway_test

import (
	"bytes"
	"context"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/durationpb"

	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

func TestPutStoresEvent(t *testing.T) {
	e := newEnv(t, envConfig{})
	for i, encoding := range []enc{encJSON, encProto} {
		t.Run(encoding.String(), func(t *testing.T) {
			id := []byte("user.1/" + encoding.String())
			req := &prismv1.PutRequest{
				Id: id,
				Items: []*prismv1.Item{
					{Key: []byte("name"), Value: []byte("Ada")},
					{Key: []byte("session"), Value: []byte{0, 1, 2}, Ttl: durationpb.New(90 * time.Second)},
				},
				IdempotencyToken: "tok-put-" + encoding.String(),
			}
			msg := request(t, e.nc, subjects.Write(testNS, "put"), encode(t, req, encoding), encoding)
			var resp prismv1.WriteResponse
			if er := decodeReply(t, msg, &resp, encoding); er != nil {
				t.Fatalf("put: %v", er)
			}
			if want := uint64(i + 1); resp.GetSeq() != want || resp.GetDuplicate() {
				t.Fatalf("reply %v, want seq %d, not duplicate", &resp, want)
			}
			if encoding == encJSON && !bytes.Contains(msg.Data, []byte(`"seq"`)) {
				t.Errorf("JSON reply %s lacks seq", msg.Data)
			}

			stored := storedMsg(t, e.js, resp.GetSeq())
			if want := subjects.KeyValueEvent(testNS, id); stored.Subject != want {
				t.Errorf("subject %q, want %q", stored.Subject, want)
			}
			hash, err := subjects.HashRequest(req)
			if err != nil {
				t.Fatal(err)
			}
			for h, want := range map[string]string{
				subjects.HeaderSpecVersion: "1.0",
				subjects.HeaderType:        subjects.TypeKeyValuePut,
				subjects.HeaderSource:      "/prism/" + testNS,
				subjects.HeaderSubject:     subjects.EncodeID(id),
				subjects.HeaderTime:        fixedNow.Format(time.RFC3339Nano),
				subjects.HeaderContentType: subjects.ContentTypeProto,
				subjects.HeaderNamespace:   testNS,
				subjects.HeaderIdempotency: req.GetIdempotencyToken(),
				subjects.HeaderMsgID:       req.GetIdempotencyToken(),
				subjects.HeaderRequestHash: hash,
			} {
				if got := stored.Header.Get(h); got != want {
					t.Errorf("header %s = %q, want %q", h, got, want)
				}
			}
			if stored.Header.Get(subjects.HeaderID) == "" {
				t.Error("no ce-id")
			}
			ev, err := subjects.DecodeKeyValueEvent(stored.Subject, stored.Header, stored.Data)
			if err != nil {
				t.Fatalf("decode event: %v", err)
			}
			items := ev.GetPut().GetItems()
			if !bytes.Equal(ev.GetId(), id) || len(items) != 2 {
				t.Fatalf("event %v", ev)
			}
			if items[0].GetExpireTime() != nil || items[0].GetTtl() != nil || string(items[0].GetValue()) != "Ada" {
				t.Errorf("item 0 = %v, want no expiry", items[0])
			}
			if got, want := items[1].GetExpireTime().AsTime(), fixedNow.Add(90*time.Second); !got.Equal(want) || items[1].GetTtl() != nil {
				t.Errorf("item 1 expires %v (ttl %v), want %v and no ttl", got, items[1].GetTtl(), want)
			}
		})
	}
}

func TestDeleteStoresEvent(t *testing.T) {
	e := newEnv(t, envConfig{})
	var put, del prismv1.WriteResponse
	mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("r", "a", "1"), &put)
	mustCall(t, e.nc, subjects.Write(testNS, "delete"), &prismv1.DeleteRequest{Id: []byte("r"), Keys: [][]byte{[]byte("a")}, ExpectedRevision: ptr(put.GetSeq())}, &del)
	stored := storedMsg(t, e.js, del.GetSeq())
	if stored.Header.Get(subjects.HeaderType) != subjects.TypeKeyValueDelete {
		t.Errorf("type %q", stored.Header.Get(subjects.HeaderType))
	}
	if stored.Header.Get(subjects.HeaderExpectedSubjectSeq) != "1" {
		t.Errorf("expected-seq header %q, want 1", stored.Header.Get(subjects.HeaderExpectedSubjectSeq))
	}
	ev, err := subjects.DecodeKeyValueEvent(stored.Subject, stored.Header, stored.Data)
	if err != nil || len(ev.GetDelete().GetKeys()) != 1 || string(ev.GetDelete().GetKeys()[0]) != "a" {
		t.Fatalf("event %v, err %v", ev, err)
	}
}

func TestIdempotentPut(t *testing.T) {
	e := newEnv(t, envConfig{})
	subj := subjects.Write(testNS, "put")
	req := putReq("r1", "k", "v")
	req.IdempotencyToken = "retry-me"

	var first, again prismv1.WriteResponse
	mustCall(t, e.nc, subj, req, &first)
	mustCall(t, e.nc, subj, req, &again)
	if first.GetDuplicate() || !again.GetDuplicate() || again.GetSeq() != first.GetSeq() {
		t.Fatalf("first %v, retry %v: want the same seq, the retry marked duplicate", &first, &again)
	}
	// The same retry in JSON is the same request.
	var jsonAgain prismv1.WriteResponse
	if er := call(t, e.nc, subj, req, &jsonAgain, encJSON); er != nil || jsonAgain.GetSeq() != first.GetSeq() || !jsonAgain.GetDuplicate() {
		t.Fatalf("JSON retry: %v %v", &jsonAgain, er)
	}
	if n := streamMsgs(t, e.js); n != 1 {
		t.Fatalf("stream has %d messages, want 1", n)
	}

	other := putReq("r1", "k", "other value")
	other.IdempotencyToken = "retry-me"
	var resp prismv1.WriteResponse
	er := call(t, e.nc, subj, other, &resp, encProto)
	if !isCode(er, prismv1.Code_IDEMPOTENCY_MISMATCH) {
		t.Fatalf("same token, other body: %v, want IDEMPOTENCY_MISMATCH", er)
	}
	if n := streamMsgs(t, e.js); n != 1 {
		t.Fatalf("stream has %d messages after mismatch, want 1", n)
	}
}

func TestIdempotentConditionalRetry(t *testing.T) {
	// JetStream checks the expected revision before the duplicate window, so
	// a retried conditional write must be recognised from the record's last
	// event.
	e := newEnv(t, envConfig{})
	subj := subjects.Write(testNS, "put")
	req := putReq("r1", "k", "v")
	req.ExpectedRevision = ptr[uint64](0)
	req.IdempotencyToken = "cas-1"
	var first, again prismv1.WriteResponse
	mustCall(t, e.nc, subj, req, &first)
	mustCall(t, e.nc, subj, req, &again)
	if !again.GetDuplicate() || again.GetSeq() != first.GetSeq() {
		t.Fatalf("retry %v, want duplicate of %v", &again, &first)
	}
	other := proto.Clone(req).(*prismv1.PutRequest)
	other.Items[0].Value = []byte("changed")
	if er := call(t, e.nc, subj, other, &again, encProto); !isCode(er, prismv1.Code_IDEMPOTENCY_MISMATCH) {
		t.Fatalf("changed body: %v, want IDEMPOTENCY_MISMATCH", er)
	}
	if n := streamMsgs(t, e.js); n != 1 {
		t.Fatalf("stream has %d messages, want 1", n)
	}
}

func TestConditionalPut(t *testing.T) {
	e := newEnv(t, envConfig{})
	subj := subjects.Write(testNS, "put")

	create := putReq("acct", "balance", "0")
	create.ExpectedRevision = ptr[uint64](0)
	var created prismv1.WriteResponse
	mustCall(t, e.nc, subj, create, &created)
	er := call(t, e.nc, subj, create, &prismv1.WriteResponse{}, encProto)
	if !isCode(er, prismv1.Code_CONFLICT) || !strings.Contains(er.GetMessage(), "already exists") {
		t.Fatalf("second create: %v, want CONFLICT saying it exists", er)
	}

	// Two writers race with the same expected revision: exactly one wins.
	var (
		wg        sync.WaitGroup
		mu        sync.Mutex
		wins      int
		conflicts []*prismv1.Error
	)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req := putReq("acct", "balance", strings.Repeat("1", i+1))
			req.ExpectedRevision = ptr(created.GetSeq())
			var resp prismv1.WriteResponse
			er := call(t, e.nc, subj, req, &resp, encProto)
			mu.Lock()
			defer mu.Unlock()
			if er == nil {
				wins++
			} else {
				conflicts = append(conflicts, er)
			}
		}()
	}
	wg.Wait()
	if wins != 1 || len(conflicts) != 1 || conflicts[0].GetCode() != prismv1.Code_CONFLICT {
		t.Fatalf("wins %d, errors %v: want one win and one CONFLICT", wins, conflicts)
	}
	if !strings.Contains(conflicts[0].GetMessage(), "revision") {
		t.Errorf("conflict message %q does not name the revision", conflicts[0].GetMessage())
	}
	if n := streamMsgs(t, e.js); n != 2 {
		t.Fatalf("stream has %d messages, want 2", n)
	}
}

func mutateReq(token string, muts ...*prismv1.Mutation) *prismv1.MutateRequest {
	return &prismv1.MutateRequest{Mutations: muts, IdempotencyToken: token}
}

func mPut(id, key, value string, rev *uint64) *prismv1.Mutation {
	p := putReq(id, key, value)
	p.ExpectedRevision = rev
	return &prismv1.Mutation{Op: &prismv1.Mutation_Put{Put: p}}
}

func mDel(id string, rev *uint64) *prismv1.Mutation {
	return &prismv1.Mutation{Op: &prismv1.Mutation_Delete{Delete: &prismv1.DeleteRequest{Id: []byte(id), ExpectedRevision: rev}}}
}

func TestMutate(t *testing.T) {
	e := newEnv(t, envConfig{})
	subj := subjects.Write(testNS, "mutate")
	var seed prismv1.WriteResponse
	mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("c", "x", "1"), &seed) // seq 1

	req := mutateReq("", mPut("a", "k", "1", ptr[uint64](0)), mPut("b", "k", "2", nil), mDel("c", ptr(seed.GetSeq())))
	var resp prismv1.WriteResponse
	mustCall(t, e.nc, subj, req, &resp)
	if want := []uint64{2, 3, 4}; resp.GetSeq() != 4 || !slices.Equal(resp.GetSeqs(), want) {
		t.Fatalf("reply %v, want seqs %v", &resp, want)
	}
	for i, id := range []string{"a", "b", "c"} {
		m := storedMsg(t, e.js, resp.GetSeqs()[i])
		if want := subjects.KeyValueEvent(testNS, []byte(id)); m.Subject != want {
			t.Errorf("seq %d subject %q, want %q", resp.GetSeqs()[i], m.Subject, want)
		}
	}

	// A stale revision in the third mutation stores nothing at all.
	before := streamMsgs(t, e.js)
	stale := mutateReq("", mPut("d", "k", "1", nil), mPut("e", "k", "1", ptr[uint64](0)), mPut("a", "k", "again", ptr[uint64](1)))
	er := call(t, e.nc, subj, stale, &resp, encProto)
	if !isCode(er, prismv1.Code_CONFLICT) || !strings.Contains(er.GetMessage(), "mutation 3") {
		t.Fatalf("stale mutate: %v, want CONFLICT naming mutation 3", er)
	}
	if n := streamMsgs(t, e.js); n != before {
		t.Fatalf("stream has %d messages after a refused mutate, want %d", n, before)
	}
}

func TestIdempotentMutate(t *testing.T) {
	e := newEnv(t, envConfig{})
	subj := subjects.Write(testNS, "mutate")
	req := mutateReq("batch-1", mPut("a", "k", "1", nil), mDel("b", nil))

	var first, again prismv1.WriteResponse
	mustCall(t, e.nc, subj, req, &first)
	// The marker takes seq 1, the mutations 2 and 3.
	if !slices.Equal(first.GetSeqs(), []uint64{2, 3}) || first.GetSeq() != 3 || first.GetDuplicate() {
		t.Fatalf("first %v", &first)
	}
	marker := storedMsg(t, e.js, 1)
	if marker.Subject != subjects.Marker(testNS, "batch-1") || marker.Header.Get(subjects.HeaderType) != subjects.TypeMarker {
		t.Fatalf("seq 1 is %q (%s), want the marker", marker.Subject, marker.Header.Get(subjects.HeaderType))
	}
	mustCall(t, e.nc, subj, req, &again)
	if !again.GetDuplicate() || again.GetSeq() != first.GetSeq() || !slices.Equal(again.GetSeqs(), first.GetSeqs()) {
		t.Fatalf("retry %v, want duplicate of %v", &again, &first)
	}
	if n := streamMsgs(t, e.js); n != 3 {
		t.Fatalf("stream has %d messages, want 3", n)
	}

	other := mutateReq("batch-1", mPut("a", "k", "2", nil), mDel("b", nil))
	if er := call(t, e.nc, subj, other, &again, encJSON); !isCode(er, prismv1.Code_IDEMPOTENCY_MISMATCH) {
		t.Fatalf("same token, other body: %v, want IDEMPOTENCY_MISMATCH", er)
	}
	if n := streamMsgs(t, e.js); n != 3 {
		t.Fatalf("stream has %d messages after mismatch, want 3", n)
	}

	// Without a marker match, a stale revision is a plain conflict.
	stale := mutateReq("batch-2", mPut("a", "k", "3", ptr[uint64](99)))
	if er := call(t, e.nc, subj, stale, &again, encProto); !isCode(er, prismv1.Code_CONFLICT) {
		t.Fatalf("stale mutate with a fresh token: %v, want CONFLICT", er)
	}
	if n := streamMsgs(t, e.js); n != 3 {
		t.Fatalf("stream has %d messages after conflict, want 3", n)
	}
}

func TestStrongWriteRepliesAfterApply(t *testing.T) {
	e := newEnv(t, envConfig{consistency: "strong"})
	for i := range 5 {
		var resp prismv1.WriteResponse
		mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("s", "k", strings.Repeat("v", i+1)), &resp)
		if got := e.proj.Applied(); got < resp.GetSeq() {
			t.Fatalf("strong put replied seq %d with the projection at %d", resp.GetSeq(), got)
		}
		got, err := e.store.GetItems(t.Context(), &prismv1.GetRequest{Id: []byte("s")})
		if err != nil || got.GetRevision() != resp.GetSeq() || string(got.GetItems()[0].GetValue()) != strings.Repeat("v", i+1) {
			t.Fatalf("store after strong put %d: %v, %v", resp.GetSeq(), got, err)
		}
	}
}

func TestStrongWriteNotConsistentYet(t *testing.T) {
	e := newEnv(t, envConfig{consistency: "strong", waiter: stuckWaiter{}, opts: []gateway.Option{gateway.WithConsistencyWait(200 * time.Millisecond)}})
	var resp prismv1.WriteResponse
	er := call(t, e.nc, subjects.Write(testNS, "put"), putReq("s", "k", "v"), &resp, encJSON)
	if !isCode(er, prismv1.Code_NOT_CONSISTENT_YET) || er.GetSeq() != 1 || !strings.Contains(er.GetMessage(), "IS stored at seq 1") {
		t.Fatalf("strong put with a stuck projection: %v, want NOT_CONSISTENT_YET with seq 1", er)
	}
	if n := streamMsgs(t, e.js); n != 1 {
		t.Fatalf("stream has %d messages, want the write stored", n)
	}
}

// A stream without atomic batch publish (a NATS server older than 2.12,
// which ignores the batch headers) must refuse mutate before storing
// anything: the server would store a batch's first events even when a
// later one fails.
func TestMutateRefusedWithoutAtomicPublish(t *testing.T) {
	e := newEnv(t, envConfig{})
	ctx := context.Background()
	s, err := e.js.Stream(ctx, subjects.Stream(testNS))
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.AllowAtomicPublish = false
	if _, err := e.js.UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	var resp prismv1.WriteResponse
	perr := call(t, e.nc, subjects.Write(testNS, "mutate"), mutateReq("", mPut("a", "k", "1", nil), mPut("b", "k", "2", nil)), &resp, encJSON)
	if !isCode(perr, prismv1.Code_FAILED_PRECONDITION) || !strings.Contains(perr.GetMessage(), "2.12") {
		t.Fatalf("mutate = %v, want FAILED_PRECONDITION naming nats-server 2.12", perr)
	}
	if n := streamMsgs(t, e.js); n != 0 {
		t.Fatalf("stream has %d messages after the refused mutate, want 0", n)
	}
	mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("c", "k", "v"), &resp)
}

// TestStaleDeletesAreRefused: a delete whose expected revision is stale
// is refused with CONFLICT and stores nothing, alone or inside a mutate
// (where it refuses the whole batch); the record keeps its items.
func TestStaleDeletesAreRefused(t *testing.T) {
	e := newEnv(t, envConfig{})
	var first, second prismv1.WriteResponse
	mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("r", "a", "1"), &first)
	mustCall(t, e.nc, subjects.Write(testNS, "put"), putReq("r", "b", "2"), &second)
	stale := ptr(first.GetSeq()) // the record is at second.GetSeq() now
	before := streamMsgs(t, e.js)

	var resp prismv1.WriteResponse
	for _, del := range []*prismv1.DeleteRequest{
		{Id: []byte("r"), ExpectedRevision: stale},
		{Id: []byte("r"), Keys: [][]byte{[]byte("a")}, ExpectedRevision: stale},
	} {
		if er := call(t, e.nc, subjects.Write(testNS, "delete"), del, &resp, encProto); !isCode(er, prismv1.Code_CONFLICT) {
			t.Fatalf("stale delete %v: %v, want CONFLICT", del, er)
		}
	}
	mut := mutateReq("", mPut("x", "k", "1", nil), mDel("r", stale))
	if er := call(t, e.nc, subjects.Write(testNS, "mutate"), mut, &resp, encProto); !isCode(er, prismv1.Code_CONFLICT) || !strings.Contains(er.GetMessage(), "mutation 2") {
		t.Fatalf("mutate with a stale delete: %v, want CONFLICT naming mutation 2", er)
	}
	if n := streamMsgs(t, e.js); n != before {
		t.Fatalf("stream has %d messages after refused deletes, want %d", n, before)
	}

	var g prismv1.GetResponse
	mustCall(t, e.nc, subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte("r"), MinSeq: second.GetSeq()}, &g)
	if len(g.GetItems()) != 2 || g.GetRevision() != second.GetSeq() {
		t.Fatalf("record r after refused deletes: %v, want items a and b at revision %d", &g, second.GetSeq())
	}
	if er := call(t, e.nc, subjects.Read(testNS, "get"), &prismv1.GetRequest{Id: []byte("x")}, &g, encProto); !isCode(er, prismv1.Code_NOT_FOUND) {
		t.Fatalf("record x of the refused mutate: %v, want NOT_FOUND", er)
	}

	// The same deletes at the current revision go through.
	mustCall(t, e.nc, subjects.Write(testNS, "delete"), &prismv1.DeleteRequest{Id: []byte("r"), ExpectedRevision: ptr(second.GetSeq())}, &resp)
}

// bigPut puts v in two items, each under the item value limit.
func bigPut(v []byte) *prismv1.PutRequest {
	half := len(v) / 2
	return &prismv1.PutRequest{Id: []byte("big"), Items: []*prismv1.Item{{Key: []byte("a"), Value: v[:half]}, {Key: []byte("b"), Value: v[half:]}}}
}

// TestEventSizeLimitIsInclusive: a put and a mutate whose event is exactly
// namespaces.MaxEventBytes are stored; one byte more is INVALID_ARGUMENT,
// naming the size. The exact value length is found from the size the
// refusal reports (the value is split over two items, each under the item
// limit).
func TestEventSizeLimitIsInclusive(t *testing.T) {
	e := newEnv(t, envConfig{})
	sizeRe := regexp.MustCompile(`is (\d+) bytes; the limit is (\d+)`)
	for _, c := range []struct {
		name    string
		subject string
		req     func(value []byte) proto.Message
	}{
		{"put", subjects.Write(testNS, "put"), func(v []byte) proto.Message { return bigPut(v) }},
		{"mutate", subjects.Write(testNS, "mutate"), func(v []byte) proto.Message {
			return mutateReq("", &prismv1.Mutation{Op: &prismv1.Mutation_Put{Put: bigPut(v)}})
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			var resp prismv1.WriteResponse
			probe := namespaces.MaxEventBytes
			er := call(t, e.nc, c.subject, c.req(make([]byte, probe)), &resp, encProto)
			m := sizeRe.FindStringSubmatch(er.GetMessage())
			if !isCode(er, prismv1.Code_INVALID_ARGUMENT) || m == nil {
				t.Fatalf("a %d-byte value: %v, want INVALID_ARGUMENT naming the event's size", probe, er)
			}
			size, _ := strconv.Atoi(m[1])
			exact := probe - (size - namespaces.MaxEventBytes) // the value that makes the event exactly the limit
			if er := call(t, e.nc, c.subject, c.req(make([]byte, exact+1)), &resp, encProto); !isCode(er, prismv1.Code_INVALID_ARGUMENT) ||
				!strings.Contains(er.GetMessage(), fmt.Sprintf("is %d bytes", namespaces.MaxEventBytes+1)) {
				t.Fatalf("an event one byte over the limit: %v", er)
			}
			if er := call(t, e.nc, c.subject, c.req(make([]byte, exact)), &resp, encProto); er != nil || resp.GetSeq() == 0 {
				t.Fatalf("an event of exactly %d bytes: %v, want it stored", namespaces.MaxEventBytes, er)
			}
		})
	}
}

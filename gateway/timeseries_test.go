package gateway_test

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/itest/natstest"
	"github.com/prism-data/prism/namespaces"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

func TestAppendStoresEvent(t *testing.T) {
	e := newTSEnv(t, tsEnvConfig{})
	for i, encoding := range []enc{encJSON, encProto} {
		t.Run(encoding.String(), func(t *testing.T) {
			series := []byte("host.1/cpu " + encoding.String())
			req := appendReq(string(series),
				tsEvent(t0, "e1", map[string]string{"region": "eu", "kind": "cpu"}, "0.5"),
				tsEvent(t0.Add(time.Nanosecond), "e2", nil, ""),
				tsEvent(t0, "e0", map[string]string{"region": "us"}, string([]byte{0, 1, 2})),
			)
			req.IdempotencyToken = "tok-append-" + encoding.String()
			msg := request(t, e.nc, subjects.Write(tsNS, "append"), encode(t, req, encoding), encoding)
			var resp prismv1.WriteResponse
			if er := decodeReply(t, msg, &resp, encoding); er != nil {
				t.Fatalf("append: %v", er)
			}
			if want := uint64(i + 1); resp.GetSeq() != want || resp.GetDuplicate() {
				t.Fatalf("reply %v, want seq %d, not duplicate", &resp, want)
			}

			stored := natstest.Msg(t, e.js, subjects.Stream(tsNS), resp.GetSeq())
			if want := subjects.TimeSeriesEvent(tsNS, series); stored.Subject != want {
				t.Errorf("subject %q, want %q", stored.Subject, want)
			}
			hash, err := subjects.HashRequest(req)
			if err != nil {
				t.Fatal(err)
			}
			for h, want := range map[string]string{
				subjects.HeaderSpecVersion: "1.0",
				subjects.HeaderType:        subjects.TypeTimeSeriesAppend,
				subjects.HeaderSource:      "/prism/" + tsNS,
				subjects.HeaderSubject:     subjects.EncodeID(series),
				subjects.HeaderTime:        fixedNow.Format(time.RFC3339Nano),
				subjects.HeaderContentType: subjects.ContentTypeProto,
				subjects.HeaderNamespace:   tsNS,
				subjects.HeaderIdempotency: req.GetIdempotencyToken(),
				subjects.HeaderMsgID:       req.GetIdempotencyToken(),
				subjects.HeaderRequestHash: hash,
			} {
				if got := stored.Header.Get(h); got != want {
					t.Errorf("header %s = %q, want %q", h, got, want)
				}
			}
			got, err := subjects.DecodeTimeSeriesEvent(stored.Subject, stored.Header, stored.Data)
			if err != nil {
				t.Fatalf("decode event: %v", err)
			}
			want := &prismv1.TimeSeriesAppend{SeriesId: series, Events: req.GetEvents()}
			if !proto.Equal(got, want) {
				t.Fatalf("stored append\n%v\nwant\n%v", got, want)
			}
		})
	}
}

func TestIdempotentAppend(t *testing.T) {
	e := newTSEnv(t, tsEnvConfig{})
	subj := subjects.Write(tsNS, "append")
	req := appendReq("s", tsEvent(t0, "e1", nil, "p"))
	req.IdempotencyToken = "retry-append"

	var first, again prismv1.WriteResponse
	mustCall(t, e.nc, subj, req, &first)
	mustCall(t, e.nc, subj, req, &again)
	if first.GetDuplicate() || !again.GetDuplicate() || again.GetSeq() != first.GetSeq() {
		t.Fatalf("first %v, retry %v: want the same seq, the retry marked duplicate", &first, &again)
	}
	var jsonAgain prismv1.WriteResponse
	if er := call(t, e.nc, subj, req, &jsonAgain, encJSON); er != nil || !jsonAgain.GetDuplicate() || jsonAgain.GetSeq() != first.GetSeq() {
		t.Fatalf("JSON retry: %v %v", &jsonAgain, er)
	}
	if n := tsStreamMsgs(t, e.js); n != 1 {
		t.Fatalf("stream has %d messages, want 1", n)
	}

	other := appendReq("s", tsEvent(t0, "e1", nil, "other payload"))
	other.IdempotencyToken = "retry-append"
	er := call(t, e.nc, subj, other, &prismv1.WriteResponse{}, encProto)
	if !isCode(er, prismv1.Code_IDEMPOTENCY_MISMATCH) || !strings.Contains(er.GetMessage(), "seq 1") {
		t.Fatalf("same token, other body: %v, want IDEMPOTENCY_MISMATCH naming seq 1", er)
	}
	if n := tsStreamMsgs(t, e.js); n != 1 {
		t.Fatalf("stream has %d messages after mismatch, want 1", n)
	}

	// Without a token every append is stored; the projection deduplicates
	// events by (series, time, id).
	plain := appendReq("s", tsEvent(t0, "e1", nil, "p"))
	var a, b prismv1.WriteResponse
	mustCall(t, e.nc, subj, plain, &a)
	mustCall(t, e.nc, subj, plain, &b)
	if a.GetDuplicate() || b.GetDuplicate() || b.GetSeq() != a.GetSeq()+1 {
		t.Fatalf("appends without a token: %v, %v; want two stored events", &a, &b)
	}
}

func TestStrongAppendWaitsForProjection(t *testing.T) {
	e := newTSEnv(t, tsEnvConfig{consistency: namespaces.Strong})
	done := make(chan *prismv1.Error, 1)
	var resp prismv1.WriteResponse
	go func() {
		done <- call(t, e.nc, subjects.Write(tsNS, "append"), appendReq("s", tsEvent(t0, "e", nil, "")), &resp, encProto)
	}()
	select {
	case er := <-done:
		t.Fatalf("strong append replied (%v, %v) before the projection applied it", &resp, er)
	case <-time.After(200 * time.Millisecond):
	}
	e.waiter.Set(1)
	if er := <-done; er != nil || resp.GetSeq() != 1 {
		t.Fatalf("strong append: %v, %v; want seq 1", &resp, er)
	}

	stuck := newTSEnv(t, tsEnvConfig{consistency: namespaces.Strong, waiter: stuckWaiter{}, opts: []gateway.Option{gateway.WithConsistencyWait(100 * time.Millisecond)}})
	er := call(t, stuck.nc, subjects.Write(tsNS, "append"), appendReq("s", tsEvent(t0, "e", nil, "")), &resp, encJSON)
	if !isCode(er, prismv1.Code_NOT_CONSISTENT_YET) || er.GetSeq() != 1 {
		t.Fatalf("strong append, stuck projection: %v, want NOT_CONSISTENT_YET with seq 1", er)
	}
}

func TestBadTimeSeriesRequests(t *testing.T) {
	e := newTSEnv(t, tsEnvConfig{})
	var seed prismv1.WriteResponse
	mustCall(t, e.nc, subjects.Write(tsNS, "append"), appendReq("seed", tsEvent(t0, "e", nil, "")), &seed)
	before := tsStreamMsgs(t, e.js)

	app := subjects.Write(tsNS, "append")
	rng := subjects.Read(tsNS, "range")
	srch := subjects.Read(tsNS, "search")
	ev := func(mod func(*prismv1.TimeSeriesEvent)) *prismv1.AppendRequest {
		x := tsEvent(t0, "e", map[string]string{"k": "v"}, "p")
		mod(x)
		return appendReq("s", tsEvent(t0, "first", nil, ""), x)
	}
	manyTags := map[string]string{}
	for i := range 65 {
		manyTags[strings.Repeat("k", i+1)] = "v"
	}
	tooMany := appendReq("s")
	for range 1001 {
		tooMany.Events = append(tooMany.Events, tsEvent(t0, "e", nil, ""))
	}
	big := strings.Repeat("x", 500<<10)
	tooBig := appendReq("s", tsEvent(t0, "a", nil, big), tsEvent(t0, "b", nil, big))
	ts := timestamppb.New
	later := t0.Add(time.Second)

	tests := []struct {
		name     string
		subject  string
		req      proto.Message
		wantCode prismv1.Code
		wantMsg  string
		// protoOnly: JSON cannot carry the request (an invalid timestamp,
		// or a body over NATS's max payload once base64-encoded).
		protoOnly bool
	}{
		{name: "empty series", subject: app, req: appendReq("", tsEvent(t0, "e", nil, "")), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "series_id is empty"},
		{name: "1025-byte series", subject: app, req: appendReq(strings.Repeat("s", 1025), tsEvent(t0, "e", nil, "")), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "series_id is 1025 bytes; the limit is 1024"},
		{name: "no events", subject: app, req: appendReq("s"), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "no events"},
		{name: "1001 events", subject: app, req: tooMany, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "1001 events; the limit is 1000"},
		{name: "no event_time", subject: app, req: ev(func(x *prismv1.TimeSeriesEvent) { x.EventTime = nil }), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "event 2: event_time is not set"},
		{name: "event_time out of range", subject: app, req: ev(func(x *prismv1.TimeSeriesEvent) { x.EventTime = &timestamppb.Timestamp{Seconds: 1 << 40} }), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "event 2: event_time is not a valid time", protoOnly: true},
		{name: "empty event_id", subject: app, req: ev(func(x *prismv1.TimeSeriesEvent) { x.EventId = nil }), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "event 2: event_id is empty"},
		{name: "257-byte event_id", subject: app, req: ev(func(x *prismv1.TimeSeriesEvent) { x.EventId = bytes.Repeat([]byte("i"), 257) }), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "event_id is 257 bytes; the limit is 256"},
		{name: "65 tags", subject: app, req: ev(func(x *prismv1.TimeSeriesEvent) { x.Tags = manyTags }), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "65 tags; the limit is 64"},
		{name: "empty tag key", subject: app, req: ev(func(x *prismv1.TimeSeriesEvent) { x.Tags = map[string]string{"": "v"} }), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "empty key"},
		{name: "129-byte tag key", subject: app, req: ev(func(x *prismv1.TimeSeriesEvent) { x.Tags = map[string]string{strings.Repeat("k", 129): "v"} }), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "129 bytes; the limit is 128"},
		{name: "1025-byte tag value", subject: app, req: ev(func(x *prismv1.TimeSeriesEvent) { x.Tags = map[string]string{"k": strings.Repeat("v", 1025)} }), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: `value of tag "k" is 1025 bytes; the limit is 1024`},
		{name: "oversized payload", subject: app, req: ev(func(x *prismv1.TimeSeriesEvent) { x.Payload = bytes.Repeat([]byte("p"), 512<<10+1) }), wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "payload is 524289 bytes; the limit is 524288"},
		{name: "oversized event", subject: app, req: tooBig, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "the limit is 921600: write fewer or smaller events", protoOnly: true},
		{name: "token with space", subject: app, req: &prismv1.AppendRequest{SeriesId: []byte("s"), Events: []*prismv1.TimeSeriesEvent{tsEvent(t0, "e", nil, "")}, IdempotencyToken: "a b"}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "idempotency_token"},
		{name: "129-byte token", subject: app, req: &prismv1.AppendRequest{SeriesId: []byte("s"), Events: []*prismv1.TimeSeriesEvent{tsEvent(t0, "e", nil, "")}, IdempotencyToken: strings.Repeat("t", 129)}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "129 bytes"},
		{name: "range without series", subject: rng, req: &prismv1.ReadRangeRequest{}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "series_id is empty"},
		{name: "range inverted", subject: rng, req: &prismv1.ReadRangeRequest{SeriesId: []byte("s"), Range: &prismv1.TimeRange{Start: ts(later), End: ts(t0)}}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "is not before end"},
		{name: "range empty", subject: rng, req: &prismv1.ReadRangeRequest{SeriesId: []byte("s"), Range: &prismv1.TimeRange{Start: ts(t0), End: ts(t0)}}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "is not before end"},
		{name: "range invalid start", subject: rng, req: &prismv1.ReadRangeRequest{SeriesId: []byte("s"), Range: &prismv1.TimeRange{Start: &timestamppb.Timestamp{Nanos: -1}}}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "range start is not a valid time", protoOnly: true},
		{name: "range page too large", subject: rng, req: &prismv1.ReadRangeRequest{SeriesId: []byte("s"), PageSize: 1001}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "page_size 1001"},
		{name: "range bad page token", subject: rng, req: &prismv1.ReadRangeRequest{SeriesId: []byte("s"), PageToken: "not base64!"}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "page_token"},
		{name: "range padded page token", subject: rng, req: &prismv1.ReadRangeRequest{SeriesId: []byte("s"), PageToken: "YQ=="}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "page_token"},
		{name: "range long page token", subject: rng, req: &prismv1.ReadRangeRequest{SeriesId: []byte("s"), PageToken: strings.Repeat("a", 2049)}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "2049 characters"},
		{name: "search long series", subject: srch, req: &prismv1.SearchRequest{SeriesId: bytes.Repeat([]byte("s"), 1025)}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "series_id is 1025 bytes"},
		{name: "search 65 tags", subject: srch, req: &prismv1.SearchRequest{Tags: manyTags}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "65 tags"},
		{name: "search empty tag key", subject: srch, req: &prismv1.SearchRequest{Tags: map[string]string{"": "v"}}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "empty key"},
		{name: "search inverted", subject: srch, req: &prismv1.SearchRequest{Range: &prismv1.TimeRange{Start: ts(later), End: ts(t0)}}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "is not before end"},
		{name: "search page too large", subject: srch, req: &prismv1.SearchRequest{PageSize: 5000}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "page_size 5000"},
		{name: "search bad page token", subject: srch, req: &prismv1.SearchRequest{PageToken: "a.b"}, wantCode: prismv1.Code_INVALID_ARGUMENT, wantMsg: "page_token"},

		// Operations of the other abstraction.
		{name: "put on timeseries", subject: subjects.Write(tsNS, "put"), req: putReq("r", "k", "v"), wantCode: prismv1.Code_UNIMPLEMENTED, wantMsg: "write.put is a keyvalue operation, but namespace metrics is timeseries; its operations are read.range, read.search, subscribe.close, subscribe.next, subscribe.open, write.append"},
		{name: "mutate on timeseries", subject: subjects.Write(tsNS, "mutate"), req: &prismv1.MutateRequest{}, wantCode: prismv1.Code_UNIMPLEMENTED, wantMsg: "namespace metrics is timeseries"},
		{name: "get on timeseries", subject: subjects.Read(tsNS, "get"), req: &prismv1.GetRequest{Id: []byte("r")}, wantCode: prismv1.Code_UNIMPLEMENTED, wantMsg: "read.get is a keyvalue operation"},
		{name: "unknown op on timeseries", subject: subjects.Write(tsNS, "upsert"), req: appendReq("s"), wantCode: prismv1.Code_UNIMPLEMENTED, wantMsg: "operation write.upsert is not supported by namespace metrics (timeseries); supported: read.range, read.search, subscribe.close, subscribe.next, subscribe.open, write.append"},
		{name: "append on keyvalue", subject: subjects.Write(testNS, "append"), req: appendReq("s", tsEvent(t0, "e", nil, "")), wantCode: prismv1.Code_UNIMPLEMENTED, wantMsg: "write.append is a timeseries operation, but namespace demo is keyvalue; its operations are read.get, read.scan, read.value, subscribe.close, subscribe.next, subscribe.open, write.delete, write.mutate, write.part, write.put, write.upload"},
		{name: "range on keyvalue", subject: subjects.Read(testNS, "range"), req: &prismv1.ReadRangeRequest{SeriesId: []byte("s")}, wantCode: prismv1.Code_UNIMPLEMENTED, wantMsg: "namespace demo is keyvalue"},
		{name: "search on keyvalue", subject: subjects.Read(testNS, "search"), req: &prismv1.SearchRequest{}, wantCode: prismv1.Code_UNIMPLEMENTED, wantMsg: "read.search is a timeseries operation"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			encodings := []enc{encProto, encJSON}
			if tt.protoOnly {
				encodings = encodings[:1]
			}
			for _, encoding := range encodings {
				var resp prismv1.WriteResponse
				er := call(t, e.nc, tt.subject, tt.req, &resp, encoding)
				if er == nil {
					t.Fatalf("%s: no error, want %s", encoding, tt.wantCode)
				}
				if er.GetCode() != tt.wantCode || !strings.Contains(er.GetMessage(), tt.wantMsg) {
					t.Fatalf("%s: %s: %q, want %s containing %q", encoding, er.GetCode(), er.GetMessage(), tt.wantCode, tt.wantMsg)
				}
			}
			if n := tsStreamMsgs(t, e.js); n != before {
				t.Fatalf("stream has %d messages, want %d", n, before)
			}
		})
	}
	if ranges, searches := e.reader.calls(); len(ranges)+len(searches) != 0 {
		t.Fatalf("invalid reads reached the reader: %v %v", ranges, searches)
	}
	if n := streamMsgs(t, e.js); n != 0 {
		t.Fatalf("keyvalue stream has %d messages, want 0", n)
	}
}

func TestRangeAndSearchPassThrough(t *testing.T) {
	e := newTSEnv(t, tsEnvConfig{})
	page := &prismv1.EventsResponse{
		Events: []*prismv1.SeriesEvent{
			{SeriesId: []byte("a"), Event: tsEvent(t0, "e1", map[string]string{"region": "eu"}, "p1")},
			{SeriesId: []byte("b"), Event: tsEvent(t0.Add(time.Second), "e2", nil, "")},
		},
		NextPageToken: "bmV4dA",
	}
	e.reader.answer(page, nil)
	e.waiter.Set(3)

	rangeReq := &prismv1.ReadRangeRequest{
		SeriesId:   []byte("a"),
		Range:      &prismv1.TimeRange{Start: timestamppb.New(t0), End: timestamppb.New(t0.Add(time.Hour))},
		Descending: true,
		PageSize:   2,
		PageToken:  "cHJldg",
		MinSeq:     3,
	}
	searchReq := &prismv1.SearchRequest{
		SeriesId:  []byte("a"),
		Tags:      map[string]string{"region": "eu"},
		Range:     &prismv1.TimeRange{End: timestamppb.New(t0.Add(time.Hour))},
		PageSize:  1000,
		PageToken: "cHJldg",
		MinSeq:    2,
	}
	for _, encoding := range []enc{encJSON, encProto} {
		var got prismv1.EventsResponse
		if er := call(t, e.nc, subjects.Read(tsNS, "range"), rangeReq, &got, encoding); er != nil {
			t.Fatalf("range (%s): %v", encoding, er)
		}
		if !proto.Equal(&got, page) {
			t.Fatalf("range (%s) reply %v, want %v", encoding, &got, page)
		}
		got.Reset()
		if er := call(t, e.nc, subjects.Read(tsNS, "search"), searchReq, &got, encoding); er != nil {
			t.Fatalf("search (%s): %v", encoding, er)
		}
		if !proto.Equal(&got, page) {
			t.Fatalf("search (%s) reply %v, want %v", encoding, &got, page)
		}
	}
	// Empty tags, no series: every event of the range.
	var all prismv1.EventsResponse
	mustCall(t, e.nc, subjects.Read(tsNS, "search"), &prismv1.SearchRequest{}, &all)

	ranges, searches := e.reader.calls()
	if len(ranges) != 2 || len(searches) != 3 {
		t.Fatalf("reader got %d ranges, %d searches; want 2 and 3", len(ranges), len(searches))
	}
	for _, r := range ranges {
		if !proto.Equal(r, rangeReq) {
			t.Errorf("reader got range %v, want %v", r, rangeReq)
		}
	}
	for _, s := range searches[:2] {
		if !proto.Equal(s, searchReq) {
			t.Errorf("reader got search %v, want %v", s, searchReq)
		}
	}
	if !proto.Equal(searches[2], &prismv1.SearchRequest{}) {
		t.Errorf("reader got search %v, want an empty one", searches[2])
	}

	e.reader.answer(nil, errors.New("disk on fire"))
	er := call(t, e.nc, subjects.Read(tsNS, "range"), &prismv1.ReadRangeRequest{SeriesId: []byte("a")}, &all, encJSON)
	if !isCode(er, prismv1.Code_UNAVAILABLE) || !strings.Contains(er.GetMessage(), "namespace metrics") {
		t.Fatalf("range with a failing backend: %v, want UNAVAILABLE", er)
	}
	if er := call(t, e.nc, subjects.Read(tsNS, "search"), &prismv1.SearchRequest{}, &all, encProto); !isCode(er, prismv1.Code_UNAVAILABLE) {
		t.Fatalf("search with a failing backend: %v, want UNAVAILABLE", er)
	}

	// A backend error that blames the request is the caller's to fix.
	e.reader.answer(nil, fmt.Errorf("read range: %w", badTokenError{}))
	er = call(t, e.nc, subjects.Read(tsNS, "range"), &prismv1.ReadRangeRequest{SeriesId: []byte("a"), PageToken: "Zm9yZ2Vk"}, &all, encJSON)
	if !isCode(er, prismv1.Code_INVALID_ARGUMENT) || !strings.Contains(er.GetMessage(), "not a token of this store") {
		t.Fatalf("range with a refused page token: %v, want INVALID_ARGUMENT", er)
	}
}

// badTokenError is a backend error that is the request's fault.
type badTokenError struct{}

func (badTokenError) Error() string         { return "page token: not a token of this store" }
func (badTokenError) InvalidArgument() bool { return true }

var _ gateway.InvalidArgumentError = badTokenError{}

func TestTimeSeriesMinSeqWaits(t *testing.T) {
	e := newTSEnv(t, tsEnvConfig{})
	e.reader.answer(&prismv1.EventsResponse{Events: []*prismv1.SeriesEvent{{SeriesId: []byte("s"), Event: tsEvent(t0, "e", nil, "")}}}, nil)
	for _, op := range []struct {
		name string
		req  proto.Message
	}{
		{"range", &prismv1.ReadRangeRequest{SeriesId: []byte("s"), MinSeq: 0}},
		{"search", &prismv1.SearchRequest{MinSeq: 0}},
	} {
		t.Run(op.name, func(t *testing.T) {
			target := e.waiter.Applied() + 5
			req := proto.Clone(op.req)
			switch r := req.(type) {
			case *prismv1.ReadRangeRequest:
				r.MinSeq = target
			case *prismv1.SearchRequest:
				r.MinSeq = target
			}
			type result struct {
				resp prismv1.EventsResponse
				er   *prismv1.Error
			}
			done := make(chan *result, 1)
			go func() {
				res := new(result)
				res.er = call(t, e.nc, subjects.Read(tsNS, op.name), req, &res.resp, encProto)
				done <- res
			}()
			select {
			case res := <-done:
				t.Fatalf("%s with min_seq %d answered with the projection at %d: %v %v", op.name, target, e.waiter.Applied(), &res.resp, res.er)
			case <-time.After(200 * time.Millisecond):
			}
			ranges, searches := e.reader.calls()
			if len(ranges)+len(searches) != 0 {
				t.Fatalf("the reader was asked before min_seq was applied")
			}
			e.waiter.Set(target)
			res := <-done
			if res.er != nil || len(res.resp.GetEvents()) != 1 {
				t.Fatalf("%s after the projection caught up: %v %v", op.name, &res.resp, res.er)
			}
			e.reader.reset()
		})
	}

	stuck := newTSEnv(t, tsEnvConfig{waiter: stuckWaiter{}, opts: []gateway.Option{gateway.WithConsistencyWait(100 * time.Millisecond)}})
	er := call(t, stuck.nc, subjects.Read(tsNS, "range"), &prismv1.ReadRangeRequest{SeriesId: []byte("s"), MinSeq: 7}, &prismv1.EventsResponse{}, encJSON)
	if !isCode(er, prismv1.Code_NOT_CONSISTENT_YET) || !strings.Contains(er.GetMessage(), "min_seq 7") {
		t.Fatalf("range: %v, want NOT_CONSISTENT_YET", er)
	}
	er = call(t, stuck.nc, subjects.Read(tsNS, "search"), &prismv1.SearchRequest{MinSeq: 7}, &prismv1.EventsResponse{}, encProto)
	if !isCode(er, prismv1.Code_NOT_CONSISTENT_YET) {
		t.Fatalf("search: %v, want NOT_CONSISTENT_YET", er)
	}
}

// TestTimeSeriesOnSQLite appends through the gateway, projects into a real
// SQLite store and reads back with min_seq: the whole path of an event.
func TestTimeSeriesOnSQLite(t *testing.T) {
	e := newTSEnv(t, tsEnvConfig{sqlite: true})
	eu := map[string]string{"region": "eu"}
	var first, last prismv1.WriteResponse
	mustCall(t, e.nc, subjects.Write(tsNS, "append"), appendReq("cpu",
		tsEvent(t0.Add(2*time.Second), "b", eu, "2"),
		tsEvent(t0, "a", eu, "0"),
		tsEvent(t0.Add(time.Second), "a", map[string]string{"region": "us"}, "1"),
		tsEvent(t0.Add(2*time.Second), "a", nil, "2a"),
	), &first)
	mustCall(t, e.nc, subjects.Write(tsNS, "append"), appendReq("mem",
		tsEvent(t0.Add(time.Second), "m", eu, "m1"),
		tsEvent(t0, "a", eu, "again: ignored, cpu's (t0, a) is another series"),
	), &last)

	ids := func(resp *prismv1.EventsResponse) string {
		var out []string
		for _, ev := range resp.GetEvents() {
			out = append(out, string(ev.GetSeriesId())+"/"+string(ev.GetEvent().GetEventId())+"="+string(ev.GetEvent().GetPayload()))
		}
		return strings.Join(out, " ")
	}

	// Ascending, two per page, from min_seq of the last write.
	var pages []string
	token := ""
	for range 5 {
		var resp prismv1.EventsResponse
		mustCall(t, e.nc, subjects.Read(tsNS, "range"), &prismv1.ReadRangeRequest{SeriesId: []byte("cpu"), PageSize: 2, PageToken: token, MinSeq: last.GetSeq()}, &resp)
		pages = append(pages, ids(&resp))
		if token = resp.GetNextPageToken(); token == "" {
			break
		}
	}
	if got, want := strings.Join(pages, " | "), "cpu/a=0 cpu/a=1 | cpu/a=2a cpu/b=2"; got != want {
		t.Fatalf("range pages %q, want %q", got, want)
	}

	// Latest 2 of [t0, t0+2s): descending.
	var latest prismv1.EventsResponse
	mustCall(t, e.nc, subjects.Read(tsNS, "range"), &prismv1.ReadRangeRequest{
		SeriesId: []byte("cpu"), Range: &prismv1.TimeRange{Start: timestamppb.New(t0), End: timestamppb.New(t0.Add(2 * time.Second))},
		Descending: true, PageSize: 2,
	}, &latest)
	if got, want := ids(&latest), "cpu/a=1 cpu/a=0"; got != want || latest.GetNextPageToken() != "" {
		t.Fatalf("latest %q (next %q), want %q on one page", got, latest.GetNextPageToken(), want)
	}

	var found prismv1.EventsResponse
	mustCall(t, e.nc, subjects.Read(tsNS, "search"), &prismv1.SearchRequest{Tags: eu}, &found)
	if got, want := ids(&found), "cpu/a=0 mem/a=again: ignored, cpu's (t0, a) is another series mem/m=m1 cpu/b=2"; got != want {
		t.Fatalf("search region=eu: %q, want %q", got, want)
	}
	found.Reset()
	mustCall(t, e.nc, subjects.Read(tsNS, "search"), &prismv1.SearchRequest{SeriesId: []byte("mem"), Tags: eu, Range: &prismv1.TimeRange{Start: timestamppb.New(t0.Add(time.Second))}}, &found)
	if got, want := ids(&found), "mem/m=m1"; got != want {
		t.Fatalf("search region=eu in mem from t0+1s: %q, want %q", got, want)
	}

	// A forged page token that passes the gateway's format check.
	er := call(t, e.nc, subjects.Read(tsNS, "range"), &prismv1.ReadRangeRequest{SeriesId: []byte("cpu"), PageToken: "Zm9yZ2Vk"}, &found, encJSON)
	if er == nil {
		t.Fatal("forged page token accepted")
	}
	t.Logf("forged page token: %s: %s", er.GetCode(), er.GetMessage())
}

package client_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/timestamppb"

	"github.com/prism-data/prism/client"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

var t0 = time.Date(2029, 6, 1, 12, 0, 0, 5, time.UTC)

// A gateway stand-in: the first append fails with UNAVAILABLE, the retry
// succeeds; the client must resend the same request, token included.
func TestAppendRetriesWithTheSameToken(t *testing.T) {
	nc := connect(t)
	var (
		mu   sync.Mutex
		reqs []*prismv1.AppendRequest
	)
	_, err := nc.Subscribe(subjects.Write("metrics", "append"), func(m *nats.Msg) {
		if m.Header.Get(subjects.HeaderContentTypeReq) != subjects.ContentTypeProto {
			t.Errorf("content type %q", m.Header.Get(subjects.HeaderContentTypeReq))
		}
		req := new(prismv1.AppendRequest)
		if err := proto.Unmarshal(m.Data, req); err != nil {
			t.Error(err)
			return
		}
		mu.Lock()
		reqs = append(reqs, req)
		n := len(reqs)
		mu.Unlock()
		if n == 1 {
			replyError(t, m, prismv1.Code_UNAVAILABLE, "jetstream down")
			return
		}
		data, _ := proto.Marshal(&prismv1.WriteResponse{Seq: 42})
		_ = m.Respond(data)
	})
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.New(nc, client.WithRetries(3, time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	ts := c.TimeSeries("metrics")
	events := []client.Event{
		{Time: t0, ID: []byte("e1"), Tags: map[string]string{"region": "eu"}, Payload: []byte{0, 1}},
		{Time: t0.Add(time.Second), ID: []byte("e2"), SeriesID: []byte("ignored")},
	}
	seq, err := ts.Append(context.Background(), []byte("cpu"), events)
	if err != nil || seq != 42 {
		t.Fatalf("Append = %d, %v; want 42", seq, err)
	}
	if ts.LastSeq() != 42 {
		t.Fatalf("LastSeq = %d", ts.LastSeq())
	}
	if len(reqs) != 2 || reqs[0].GetIdempotencyToken() == "" || !proto.Equal(reqs[0], reqs[1]) {
		t.Fatalf("requests sent = %v, want the same request with a token twice", reqs)
	}
	want := &prismv1.AppendRequest{
		SeriesId: []byte("cpu"),
		Events: []*prismv1.TimeSeriesEvent{
			{EventTime: timestamppb.New(t0), EventId: []byte("e1"), Tags: map[string]string{"region": "eu"}, Payload: []byte{0, 1}},
			{EventTime: timestamppb.New(t0.Add(time.Second)), EventId: []byte("e2")},
		},
		IdempotencyToken: reqs[0].GetIdempotencyToken(),
	}
	if !proto.Equal(reqs[0], want) {
		t.Fatalf("request %v, want %v", reqs[0], want)
	}

	// A second append gets a new token; IdempotencyToken sets it.
	if _, err := ts.Append(context.Background(), []byte("cpu"), events[:1], client.IdempotencyToken("mine")); err != nil {
		t.Fatal(err)
	}
	if got := reqs[2].GetIdempotencyToken(); got != "mine" {
		t.Fatalf("token %q, want mine", got)
	}
}

// recorder answers range and search requests of namespace metrics with
// page and keeps what it got.
type recorder struct {
	mu       sync.Mutex
	ranges   []*prismv1.ReadRangeRequest
	searches []*prismv1.SearchRequest
}

var page = &prismv1.EventsResponse{
	Events: []*prismv1.SeriesEvent{
		{SeriesId: []byte("cpu"), Event: &prismv1.TimeSeriesEvent{EventTime: timestamppb.New(t0), EventId: []byte("e1"), Tags: map[string]string{"region": "eu"}, Payload: []byte("p")}},
		{SeriesId: []byte("mem"), Event: &prismv1.TimeSeriesEvent{EventTime: timestamppb.New(t0.Add(time.Minute)), EventId: []byte("e2")}},
	},
	NextPageToken: "bmV4dA",
}

func newRecorder(t *testing.T, nc *nats.Conn) *recorder {
	t.Helper()
	r := new(recorder)
	for _, op := range []string{"range", "search"} {
		_, err := nc.Subscribe(subjects.Read("metrics", op), func(m *nats.Msg) {
			r.mu.Lock()
			defer r.mu.Unlock()
			var err error
			if op == "range" {
				req := new(prismv1.ReadRangeRequest)
				err = proto.Unmarshal(m.Data, req)
				r.ranges = append(r.ranges, req)
			} else {
				req := new(prismv1.SearchRequest)
				err = proto.Unmarshal(m.Data, req)
				r.searches = append(r.searches, req)
			}
			if err != nil {
				t.Error(err)
			}
			data, _ := proto.Marshal(page)
			_ = m.Respond(data)
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (r *recorder) last() (*prismv1.ReadRangeRequest, *prismv1.SearchRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	var rr *prismv1.ReadRangeRequest
	var sr *prismv1.SearchRequest
	if n := len(r.ranges); n > 0 {
		rr = r.ranges[n-1]
	}
	if n := len(r.searches); n > 0 {
		sr = r.searches[n-1]
	}
	return rr, sr
}

func TestRangeOptionsMapToRequest(t *testing.T) {
	nc := connect(t)
	rec := newRecorder(t, nc)
	c, _ := client.New(nc)
	ts := c.TimeSeries("metrics")
	ctx := context.Background()
	end := t0.Add(time.Hour)

	tests := []struct {
		name string
		opts []client.RangeOption
		want *prismv1.ReadRangeRequest
	}{
		{name: "no options", want: &prismv1.ReadRangeRequest{SeriesId: []byte("cpu")}},
		{
			name: "all options",
			opts: []client.RangeOption{client.Between(t0, end), client.Descending(), client.PageSize(7), client.PageToken("cHJldg"), client.MinSeq(9)},
			want: &prismv1.ReadRangeRequest{SeriesId: []byte("cpu"), Range: &prismv1.TimeRange{Start: timestamppb.New(t0), End: timestamppb.New(end)}, Descending: true, PageSize: 7, PageToken: "cHJldg", MinSeq: 9},
		},
		{name: "open end", opts: []client.RangeOption{client.Between(t0, time.Time{})}, want: &prismv1.ReadRangeRequest{SeriesId: []byte("cpu"), Range: &prismv1.TimeRange{Start: timestamppb.New(t0)}}},
		{name: "open start", opts: []client.RangeOption{client.Between(time.Time{}, end)}, want: &prismv1.ReadRangeRequest{SeriesId: []byte("cpu"), Range: &prismv1.TimeRange{End: timestamppb.New(end)}}},
		{name: "unbounded", opts: []client.RangeOption{client.Between(time.Time{}, time.Time{})}, want: &prismv1.ReadRangeRequest{SeriesId: []byte("cpu")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			events, next, err := ts.ReadRange(ctx, []byte("cpu"), tt.opts...)
			if err != nil {
				t.Fatal(err)
			}
			if got, _ := rec.last(); !proto.Equal(got, tt.want) {
				t.Fatalf("request %v, want %v", got, tt.want)
			}
			checkPage(t, events, next)
		})
	}

	t.Run("latest", func(t *testing.T) {
		events, err := ts.Latest(ctx, []byte("cpu"), 10, client.Between(t0, end), client.PageToken("ignored"))
		if err != nil {
			t.Fatal(err)
		}
		want := &prismv1.ReadRangeRequest{SeriesId: []byte("cpu"), Range: &prismv1.TimeRange{Start: timestamppb.New(t0), End: timestamppb.New(end)}, Descending: true, PageSize: 10}
		if got, _ := rec.last(); !proto.Equal(got, want) {
			t.Fatalf("request %v, want %v", got, want)
		}
		checkPage(t, events, page.GetNextPageToken())
	})

	t.Run("search", func(t *testing.T) {
		tags := map[string]string{"region": "eu", "kind": "cpu"}
		events, next, err := ts.Search(ctx, tags, client.InSeries([]byte("cpu")), client.Between(t0, end), client.Descending(), client.PageSize(3), client.PageToken("cHJldg"), client.MinSeq(4))
		if err != nil {
			t.Fatal(err)
		}
		want := &prismv1.SearchRequest{SeriesId: []byte("cpu"), Tags: tags, Range: &prismv1.TimeRange{Start: timestamppb.New(t0), End: timestamppb.New(end)}, Descending: true, PageSize: 3, PageToken: "cHJldg", MinSeq: 4}
		if _, got := rec.last(); !proto.Equal(got, want) {
			t.Fatalf("request %v, want %v", got, want)
		}
		checkPage(t, events, next)

		if _, _, err := ts.Search(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if _, got := rec.last(); !proto.Equal(got, &prismv1.SearchRequest{}) {
			t.Fatalf("search of everything sent %v, want an empty request", got)
		}
	})
}

func checkPage(t *testing.T, events []client.Event, next string) {
	t.Helper()
	if next != "bmV4dA" || len(events) != 2 {
		t.Fatalf("page %v, next %q", events, next)
	}
	e := events[0]
	if !e.Time.Equal(t0) || string(e.ID) != "e1" || e.Tags["region"] != "eu" || string(e.Payload) != "p" || string(e.SeriesID) != "cpu" {
		t.Errorf("event 0 = %+v", e)
	}
	if e := events[1]; !e.Time.Equal(t0.Add(time.Minute)) || string(e.SeriesID) != "mem" || len(e.Tags) != 0 {
		t.Errorf("event 1 = %+v", e)
	}
}

func TestTimeSeriesReadYourWrites(t *testing.T) {
	nc := connect(t)
	rec := newRecorder(t, nc)
	_, err := nc.Subscribe(subjects.Write("metrics", "append"), func(m *nats.Msg) {
		data, _ := proto.Marshal(&prismv1.WriteResponse{Seq: 17})
		_ = m.Respond(data)
	})
	if err != nil {
		t.Fatal(err)
	}
	c, _ := client.New(nc)
	ctx := context.Background()
	ts := c.TimeSeries("metrics", client.ReadYourWrites())
	if _, err := ts.Append(ctx, []byte("cpu"), []client.Event{{Time: t0, ID: []byte("e")}}); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.ReadRange(ctx, []byte("cpu")); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ts.Search(ctx, nil); err != nil {
		t.Fatal(err)
	}
	r, s := rec.last()
	if r.GetMinSeq() != 17 || s.GetMinSeq() != 17 {
		t.Fatalf("min_seq of range %d, search %d; want 17 after an append at 17", r.GetMinSeq(), s.GetMinSeq())
	}
	// Without the option reads do not wait.
	plain := c.TimeSeries("metrics")
	if _, _, err := plain.ReadRange(ctx, []byte("cpu")); err != nil {
		t.Fatal(err)
	}
	if r, _ := rec.last(); r.GetMinSeq() != 0 {
		t.Fatalf("min_seq %d without ReadYourWrites", r.GetMinSeq())
	}
}

func TestTimeSeriesMisusedOptions(t *testing.T) {
	nc := connect(t)
	rec := newRecorder(t, nc)
	c, _ := client.New(nc, client.WithRetries(0, 0))
	ctx := context.Background()
	ts := c.TimeSeries("metrics")
	kv := c.KeyValue("metrics")

	checks := []struct {
		name string
		err  error
	}{
		{"Keys on ReadRange", second(ts.ReadRange(ctx, []byte("s"), client.Keys([]byte("k"))))},
		{"InSeries on ReadRange", second(ts.ReadRange(ctx, []byte("s"), client.InSeries([]byte("s"))))},
		{"KeyRange on Search", second(ts.Search(ctx, nil, client.KeyRange(nil, nil)))},
		{"empty InSeries", second(ts.Search(ctx, nil, client.InSeries(nil)))},
		{"Between on Get", errOf(kv.Get(ctx, []byte("r"), client.Between(t0, time.Time{})))},
		{"Descending on Scan", second(kv.Scan(ctx, client.Descending()))},
		{"IfRevision on Append", errOf(ts.Append(ctx, []byte("s"), []client.Event{{Time: t0, ID: []byte("e")}}, client.IfRevision(3)))},
		{"event without Time", errOf(ts.Append(ctx, []byte("s"), []client.Event{{ID: []byte("e")}}))},
		{"Latest 0", errOf(ts.Latest(ctx, []byte("s"), 0))},
		{"Latest 1001", errOf(ts.Latest(ctx, []byte("s"), 1001))},
	}
	for _, c := range checks {
		if !errors.Is(c.err, client.ErrInvalidArgument) {
			t.Errorf("%s: err %v, want ErrInvalidArgument", c.name, c.err)
		}
	}
	if r, s := rec.last(); r != nil || s != nil {
		t.Fatalf("a misused call reached the gateway: %v %v", r, s)
	}
}

func second[A, B any](_ A, _ B, err error) error { return err }

func errOf[A any](_ A, err error) error { return err }

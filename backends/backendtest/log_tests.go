package backendtest

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
)

// logTime is the ce-time every test change carries.
const logTime = "2030-01-02T03:04:05.0000006Z"

// logChange is the change of an append of key with value at seq; its
// CloudEvent id is "id-<seq>" and it carries the header "n": seq.
func logChange(seq uint64, key, value string) *prismv1.LogChange {
	return &prismv1.LogChange{
		Seq:   seq,
		Event: &prismv1.LogEvent{Key: []byte(key), Value: []byte(value), Headers: map[string]string{"n": fmt.Sprint(seq)}},
		CloudEvent: map[string]string{
			"ce-id": fmt.Sprintf("id-%d", seq), "ce-type": "io.prism.log.append", "ce-time": logTime,
			"ce-specversion": "1.0", "content-type": "application/protobuf",
		},
	}
}

// logRec is what a test compares of a fetched record.
type logRec struct {
	key, value, id string
	seq            uint64
	headers        string
}

func (r logRec) String() string {
	return fmt.Sprintf("%q=%q@%d(%s)%s", r.key, r.value, r.seq, r.id, r.headers)
}

func recOf(r *prismv1.LogRecord) logRec {
	h := ""
	for _, k := range slices.Sorted(maps.Keys(r.GetHeaders())) {
		h += k + "=" + r.GetHeaders()[k] + ";"
	}
	return logRec{key: string(r.GetKey()), value: string(r.GetValue()), id: r.GetId(), seq: r.GetSeq(), headers: h}
}

func wantRec(c *prismv1.LogChange) logRec {
	h := ""
	for _, k := range slices.Sorted(maps.Keys(c.GetEvent().GetHeaders())) {
		h += k + "=" + c.GetEvent().GetHeaders()[k] + ";"
	}
	return logRec{key: string(c.GetEvent().GetKey()), value: string(c.GetEvent().GetValue()), id: c.GetCloudEvent()["ce-id"], seq: c.GetSeq(), headers: h}
}

func logApply(t testing.TB, b LogBackend, through uint64, changes ...*prismv1.LogChange) {
	t.Helper()
	if err := b.ApplyLog(context.Background(), changes, through); err != nil {
		t.Fatalf("ApplyLog(through %d): %v", through, err)
	}
}

func logCheckpoint(t testing.TB, b LogBackend) uint64 {
	t.Helper()
	cp, err := b.Checkpoint(context.Background())
	if err != nil {
		t.Fatalf("Checkpoint: %v", err)
	}
	return cp
}

// fetchAll reads every record of every partition, paging with max, and
// checks that offsets are consecutive from 0 and next_offset chains.
func fetchAll(t testing.TB, b LogBackend, max uint32) map[int32][]*prismv1.LogRecord {
	t.Helper()
	first, err := b.Fetch(context.Background(), &prismv1.LogFetchRequest{MaxRecords: max})
	if err != nil {
		t.Fatalf("Fetch: %v", err)
	}
	if first.GetPartitions() < 1 {
		t.Fatalf("Fetch: %d partitions", first.GetPartitions())
	}
	out := make(map[int32][]*prismv1.LogRecord)
	for p := range first.GetPartitions() {
		var offset int64
		for range 10000 {
			resp, err := b.Fetch(context.Background(), &prismv1.LogFetchRequest{Partition: p, Offset: offset, MaxRecords: max})
			if err != nil {
				t.Fatalf("Fetch(partition %d, offset %d): %v", p, offset, err)
			}
			if resp.GetPartition() != p {
				t.Fatalf("Fetch(partition %d): response of partition %d", p, resp.GetPartition())
			}
			if max > 0 && len(resp.GetRecords()) > int(max) {
				t.Fatalf("Fetch(max %d): %d records", max, len(resp.GetRecords()))
			}
			for _, r := range resp.GetRecords() {
				if r.GetOffset() != offset || r.GetPartition() != p {
					t.Fatalf("partition %d: record at %d/%d, want offset %d", p, r.GetPartition(), r.GetOffset(), offset)
				}
				offset++
				out[p] = append(out[p], r)
			}
			if resp.GetNextOffset() != offset {
				t.Fatalf("partition %d: next_offset %d, want %d", p, resp.GetNextOffset(), offset)
			}
			if offset >= resp.GetHighWatermark() {
				if offset != resp.GetHighWatermark() {
					t.Fatalf("partition %d: read to %d past high watermark %d", p, offset, resp.GetHighWatermark())
				}
				break
			}
			if len(resp.GetRecords()) == 0 {
				t.Fatalf("partition %d: empty page at %d below high watermark %d", p, offset, resp.GetHighWatermark())
			}
		}
	}
	return out
}

// byKey groups records by key, in partition order, and checks that every
// key is in one partition only.
func byKey(t testing.TB, parts map[int32][]*prismv1.LogRecord) map[string][]logRec {
	t.Helper()
	out := make(map[string][]logRec)
	where := make(map[string]int32)
	for p, recs := range parts {
		for _, r := range recs {
			k := string(r.GetKey())
			if q, ok := where[k]; ok && q != p {
				t.Fatalf("key %q in partitions %d and %d", k, q, p)
			}
			where[k] = p
			out[k] = append(out[k], recOf(r))
		}
	}
	return out
}

func wantByKey(changes ...*prismv1.LogChange) map[string][]logRec {
	out := make(map[string][]logRec)
	for _, c := range changes {
		k := string(c.GetEvent().GetKey())
		out[k] = append(out[k], wantRec(c))
	}
	return out
}

func equalByKey(t testing.TB, got, want map[string][]logRec) {
	t.Helper()
	for _, k := range slices.Sorted(maps.Keys(want)) {
		if !slices.Equal(got[k], want[k]) {
			t.Errorf("key %q: records %v, want %v", k, got[k], want[k])
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			t.Errorf("key %q: unexpected records %v", k, got[k])
		}
	}
}

func (s logSuite) testCheckpoint(t *testing.T) {
	b := s.open(t)
	if cp := logCheckpoint(t, b); cp != 0 {
		t.Fatalf("new backend: checkpoint %d, want 0", cp)
	}
	logApply(t, b, 5)
	if cp := logCheckpoint(t, b); cp != 5 {
		t.Fatalf("after an empty batch through 5: checkpoint %d, want 5", cp)
	}
	a := logChange(7, "a", "1")
	logApply(t, b, 10, a)
	logApply(t, b, 10, logChange(9, "a", "stale"))                        // through at the checkpoint
	logApply(t, b, 8, logChange(8, "a", "stale"))                         // through below it
	logApply(t, b, 12, logChange(6, "a", "old"), logChange(11, "b", "2")) // seq 6 at or below it
	if cp := logCheckpoint(t, b); cp != 12 {
		t.Fatalf("checkpoint %d, want 12", cp)
	}
	equalByKey(t, byKey(t, fetchAll(t, b, 0)), wantByKey(a, logChange(11, "b", "2")))
}

func (s logSuite) testPerKeyOrder(t *testing.T) {
	b := s.open(t)
	var all []*prismv1.LogChange
	seq := uint64(0)
	for batch := range 4 {
		var changes []*prismv1.LogChange
		for i := range 25 {
			seq++
			changes = append(changes, logChange(seq, fmt.Sprintf("key-%d", (i*7+batch)%9), fmt.Sprintf("v%d", seq)))
		}
		logApply(t, b, seq, changes...)
		all = append(all, changes...)
	}
	parts := fetchAll(t, b, 0)
	equalByKey(t, byKey(t, parts), wantByKey(all...))
	for p, recs := range parts {
		for _, r := range recs {
			if got := r.GetTime().AsTime().Format("2006-01-02T15:04:05.000000000Z"); got != "2030-01-02T03:04:05.000000600Z" {
				t.Fatalf("partition %d offset %d: time %s, want %s", p, r.GetOffset(), got, logTime)
			}
		}
	}
	// The partition of a key is where Fetch by key reads.
	for _, key := range []string{"key-0", "key-5"} {
		resp, err := b.Fetch(context.Background(), &prismv1.LogFetchRequest{Key: []byte(key)})
		if err != nil {
			t.Fatalf("Fetch(key %q): %v", key, err)
		}
		found := false
		for _, r := range resp.GetRecords() {
			found = found || string(r.GetKey()) == key
		}
		if !found {
			t.Fatalf("Fetch(key %q) read partition %d without the key's records", key, resp.GetPartition())
		}
	}
}

func (s logSuite) testReplay(t *testing.T) {
	b := s.open(t)
	first := []*prismv1.LogChange{logChange(1, "a", "1"), logChange(2, "b", "2"), logChange(3, "a", "3")}
	logApply(t, b, 3, first...)
	logApply(t, b, 3, first...) // redelivered: nothing new
	more := []*prismv1.LogChange{logChange(2, "b", "2"), logChange(3, "a", "3"), logChange(4, "c", "4"), logChange(5, "a", "5")}
	logApply(t, b, 5, more...) // overlaps the checkpoint: only 4 and 5 are new
	equalByKey(t, byKey(t, fetchAll(t, b, 0)), wantByKey(append(first, more[2:]...)...))
}

func (s logSuite) testInvalidChange(t *testing.T) {
	noID := logChange(2, "a", "x")
	delete(noID.CloudEvent, "ce-id")
	reserved := logChange(2, "a", "x")
	reserved.Event.Headers["ce-id"] = "forged"
	emptyName := logChange(2, "a", "x")
	emptyName.Event.Headers[""] = "v"
	tests := []struct {
		name string
		bad  *prismv1.LogChange
	}{
		{"nil change", nil},
		{"nil event", &prismv1.LogChange{Seq: 2, CloudEvent: map[string]string{"ce-id": "x"}}},
		{"empty key", logChange(2, "", "x")},
		{"no ce-id", noID},
		{"reserved header", reserved},
		{"empty header name", emptyName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := s.open(t)
			err := b.ApplyLog(context.Background(), []*prismv1.LogChange{logChange(1, "a", "ok"), tt.bad, logChange(3, "b", "ok")}, 3)
			if !errors.Is(err, s.cfg.Errors.InvalidChange) {
				t.Fatalf("ApplyLog: %v, want InvalidChange", err)
			}
			var p interface{ Permanent() bool }
			if !errors.As(err, &p) || !p.Permanent() {
				t.Fatalf("ApplyLog: %v is not permanent", err)
			}
			if cp := logCheckpoint(t, b); cp != 0 {
				t.Fatalf("checkpoint %d after a refused batch, want 0", cp)
			}
			if got := byKey(t, fetchAll(t, b, 0)); len(got) != 0 {
				t.Fatalf("records after a refused batch: %v", got)
			}
		})
	}
}

func (s logSuite) testInvalidBatch(t *testing.T) {
	tests := []struct {
		name    string
		through uint64
		changes []*prismv1.LogChange
	}{
		{"seq 0", 5, []*prismv1.LogChange{logChange(0, "a", "x")}},
		{"decreasing", 5, []*prismv1.LogChange{logChange(3, "a", "x"), logChange(2, "a", "y")}},
		{"repeated", 5, []*prismv1.LogChange{logChange(3, "a", "x"), logChange(3, "a", "y")}},
		{"above through", 2, []*prismv1.LogChange{logChange(3, "a", "x")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := s.open(t)
			err := b.ApplyLog(context.Background(), tt.changes, tt.through)
			if !errors.Is(err, s.cfg.Errors.InvalidBatch) {
				t.Fatalf("ApplyLog: %v, want InvalidBatch", err)
			}
			if errors.Is(err, s.cfg.Errors.InvalidChange) {
				t.Fatalf("ApplyLog: %v also matches InvalidChange", err)
			}
			if cp := logCheckpoint(t, b); cp != 0 {
				t.Fatalf("checkpoint %d, want 0", cp)
			}
		})
	}
}

func (s logSuite) testOffsetRange(t *testing.T) {
	b := s.open(t)
	var changes []*prismv1.LogChange
	for i := range 30 {
		changes = append(changes, logChange(uint64(i+1), "one-key", fmt.Sprintf("v%02d", i)))
	}
	logApply(t, b, 30, changes...)
	ctx := context.Background()
	// Pages of 7 cover the key's partition exactly once.
	parts := fetchAll(t, b, 7)
	equalByKey(t, byKey(t, parts), wantByKey(changes...))

	head, err := b.Fetch(ctx, &prismv1.LogFetchRequest{Key: []byte("one-key")})
	if err != nil {
		t.Fatal(err)
	}
	p := head.GetPartition()
	tests := []struct {
		name       string
		offset     int64
		end        int64
		max        uint32
		wantValues []string
		wantNext   int64
	}{
		{"range", 10, 13, 0, []string{"v10", "v11", "v12"}, 13},
		{"range capped by max", 10, 20, 2, []string{"v10", "v11"}, 12},
		{"to the end", 28, 0, 0, []string{"v28", "v29"}, 30},
		{"end past the end", 29, 100, 0, []string{"v29"}, 30},
		{"one record", 0, 1, 0, []string{"v00"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			resp, err := b.Fetch(ctx, &prismv1.LogFetchRequest{Partition: p, Offset: tt.offset, EndOffset: tt.end, MaxRecords: tt.max})
			if err != nil {
				t.Fatalf("Fetch: %v", err)
			}
			var values []string
			for i, r := range resp.GetRecords() {
				if r.GetOffset() != tt.offset+int64(i) {
					t.Fatalf("record %d at offset %d, want %d", i, r.GetOffset(), tt.offset+int64(i))
				}
				values = append(values, string(r.GetValue()))
			}
			if !slices.Equal(values, tt.wantValues) || resp.GetNextOffset() != tt.wantNext || resp.GetHighWatermark() != 30 {
				t.Fatalf("Fetch: values %v next %d hw %d, want %v next %d hw 30", values, resp.GetNextOffset(), resp.GetHighWatermark(), tt.wantValues, tt.wantNext)
			}
		})
	}
}

func (s logSuite) testFetchEnd(t *testing.T) {
	b := s.open(t)
	logApply(t, b, 2, logChange(1, "k", "a"), logChange(2, "k", "b"))
	ctx := context.Background()
	head, err := b.Fetch(ctx, &prismv1.LogFetchRequest{Key: []byte("k")})
	if err != nil {
		t.Fatal(err)
	}
	p := head.GetPartition()
	resp, err := b.Fetch(ctx, &prismv1.LogFetchRequest{Partition: p, Offset: 2})
	if err != nil {
		t.Fatalf("Fetch at the end: %v", err)
	}
	if len(resp.GetRecords()) != 0 || resp.GetNextOffset() != 2 || resp.GetHighWatermark() != 2 {
		t.Fatalf("Fetch at the end: %v, want no records, next_offset 2, high_watermark 2", resp)
	}
	_, err = b.Fetch(ctx, &prismv1.LogFetchRequest{Partition: p, Offset: 50})
	var ia interface{ InvalidArgument() bool }
	if err == nil || !errors.As(err, &ia) || !ia.InvalidArgument() {
		t.Fatalf("Fetch past the end: %v, want an error whose InvalidArgument() is true", err)
	}
}

func (s logSuite) testInvalidRequest(t *testing.T) {
	b := s.open(t)
	n := func() int32 {
		resp, err := b.Fetch(context.Background(), &prismv1.LogFetchRequest{})
		if err != nil {
			t.Fatal(err)
		}
		return resp.GetPartitions()
	}()
	tests := []struct {
		name string
		req  *prismv1.LogFetchRequest
	}{
		{"nil", nil},
		{"negative partition", &prismv1.LogFetchRequest{Partition: -1}},
		{"partition out of range", &prismv1.LogFetchRequest{Partition: n}},
		{"negative offset", &prismv1.LogFetchRequest{Offset: -1}},
		{"end not above offset", &prismv1.LogFetchRequest{Offset: 5, EndOffset: 5}},
		{"key and partition", &prismv1.LogFetchRequest{Key: []byte("k"), Partition: 1}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := b.Fetch(context.Background(), tt.req)
			if !errors.Is(err, s.cfg.Errors.InvalidRequest) {
				t.Fatalf("Fetch: %v, want InvalidRequest", err)
			}
		})
	}
}

func (s logSuite) testBinary(t *testing.T) {
	b := s.open(t)
	bin := logChange(1, "\x00\xff.*> é", "")
	bin.Event.Value = []byte{0, 1, 2, 0xfe, 0xff}
	bin.Event.Headers = map[string]string{"trace": "a b", "unicode-é": "ü"}
	empty := logChange(2, "k", "")
	empty.Event.Headers = nil
	logApply(t, b, 2, bin, empty)
	equalByKey(t, byKey(t, fetchAll(t, b, 0)), wantByKey(bin, empty))
}

func (s logSuite) testReopen(t *testing.T) {
	b, reopen := s.openReopen(t)
	if reopen == nil {
		t.Skip("the backend has no storage that outlives it")
	}
	changes := []*prismv1.LogChange{logChange(1, "a", "1"), logChange(2, "b", "2")}
	logApply(t, b, 4, changes...)
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	b = reopen()
	if cp := logCheckpoint(t, b); cp != 4 {
		t.Fatalf("reopened: checkpoint %d, want 4", cp)
	}
	logApply(t, b, 4, logChange(3, "a", "stale"))
	logApply(t, b, 5, logChange(5, "a", "5"))
	equalByKey(t, byKey(t, fetchAll(t, b, 0)), wantByKey(append(changes, logChange(5, "a", "5"))...))
}

func (s logSuite) testClose(t *testing.T) {
	b := s.open(t)
	logApply(t, b, 1, logChange(1, "a", "1"))
	for range 2 {
		if err := b.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
	}
	ctx := context.Background()
	if _, err := b.Checkpoint(ctx); !errors.Is(err, s.cfg.Errors.Closed) {
		t.Errorf("Checkpoint after Close: %v, want Closed", err)
	}
	if err := b.ApplyLog(ctx, nil, 2); !errors.Is(err, s.cfg.Errors.Closed) {
		t.Errorf("ApplyLog after Close: %v, want Closed", err)
	}
	if _, err := b.Fetch(ctx, &prismv1.LogFetchRequest{}); !errors.Is(err, s.cfg.Errors.Closed) {
		t.Errorf("Fetch after Close: %v, want Closed", err)
	}
}

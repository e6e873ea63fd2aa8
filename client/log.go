package client

import (
	"context"
	"time"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// Log is a handle on one Log namespace: an append-only log of keyed
// records, split into partitions by key, each partition read by offset. It
// is safe for concurrent use.
type Log struct {
	handle
}

// LogOption configures a Log handle (ReadYourWrites: a Fetch waits until
// the handle's last Append is in the log).
type LogOption = HandleOption

// Log returns a handle on namespace ns.
func (c *Client) Log(ns string, opts ...LogOption) *Log {
	l := new(Log)
	l.init(c, ns, opts)
	return l
}

// LogRecord is one record of a log, as Fetch returns it.
type LogRecord struct {
	// Partition and Offset are where the record is in the log.
	Partition int32
	Offset    int64
	Key       []byte
	Value     []byte
	// Headers are the writer's headers.
	Headers map[string]string
	// Seq is the stream sequence of the append, the seq Append returned.
	Seq uint64
	// ID is the CloudEvent id of the append. Delivery into the log is
	// at-least-once: two records with the same ID are one append; keep the
	// first.
	ID string
	// Time is when the gateway accepted the append; zero when the reply
	// carries none.
	Time time.Time
}

// LogPage is one page of a partition.
type LogPage struct {
	Records []LogRecord
	// Partition is the partition read; Partitions how many the log has.
	Partition  int32
	Partitions int32
	// NextOffset is the offset to fetch next; the partition is read to its
	// end when NextOffset reaches HighWatermark.
	NextOffset    int64
	HighWatermark int64
}

// FetchOption configures a Fetch.
type FetchOption func(*prismv1.LogFetchRequest)

// Until reads only offsets below end: the range is [offset, end).
func Until(end int64) FetchOption { return func(r *prismv1.LogFetchRequest) { r.EndOffset = end } }

// MaxRecords sets the most records of the page (default 100, at most 1000).
func MaxRecords(n uint32) FetchOption {
	return func(r *prismv1.LogFetchRequest) { r.MaxRecords = n }
}

// AfterWrite makes the fetch wait until the projection applied stream
// sequence seq (the seq an Append returned): read-your-writes for one
// append, whichever handle made it.
func AfterWrite(seq uint64) FetchOption {
	return func(r *prismv1.LogFetchRequest) { r.MinSeq = max(r.MinSeq, seq) }
}

// Append appends a record with key (1 to 1024 bytes), value (at most
// 512 KiB) and the writer's headers (nil for none; names must not start
// with ce- or prism-) and returns the stream sequence of the stored append.
// The records of one key stay in append order, in one partition. Every
// call gets a fresh idempotency token (or the one of IdempotencyToken),
// reused when the client retries, so a retry is stored once.
//
// Errors: ErrInvalidArgument (a limit broken, a reserved header, or
// IfRevision, which does not apply), ErrIdempotencyMismatch,
// ErrNamespaceNotFound, ErrUnimplemented (ns is not a Log namespace),
// ErrUnavailable, ErrNotConsistentYet (strong namespace, stored but not yet
// in the log; Error.Seq says where).
func (l *Log) Append(ctx context.Context, key, value []byte, headers map[string]string, opts ...WriteOption) (uint64, error) {
	op := "append " + l.ns
	o := newWriteOpts(opts)
	if o.revision != nil {
		return 0, misuse(op, "IfRevision does not apply to Append: a log has no revision")
	}
	req := &prismv1.LogAppendRequest{Key: key, Value: value, Headers: headers, IdempotencyToken: o.token}
	resp, err := l.c.write(ctx, op, subjects.Write(l.ns, "append"), req)
	if err != nil {
		return 0, err
	}
	l.remember(resp.GetSeq())
	return resp.GetSeq(), nil
}

// Fetch reads the records of partition from offset on, in offset order.
// A page may hold fewer records than asked even when more follow: go on
// from NextOffset. Reading at the end of the partition returns an empty
// page. Options: Until, MaxRecords, AfterWrite.
//
// Errors: ErrInvalidArgument (a partition the log lacks, an offset past
// the end or no longer kept), ErrNotConsistentYet (the awaited append not
// in the log in time), ErrNamespaceNotFound, ErrUnimplemented,
// ErrUnavailable.
func (l *Log) Fetch(ctx context.Context, partition int32, offset int64, opts ...FetchOption) (*LogPage, error) {
	return l.fetch(ctx, &prismv1.LogFetchRequest{Partition: partition, Offset: offset}, opts)
}

// FetchKey is Fetch of the partition that holds key's records (records of
// other keys in that partition are returned too).
func (l *Log) FetchKey(ctx context.Context, key []byte, offset int64, opts ...FetchOption) (*LogPage, error) {
	return l.fetch(ctx, &prismv1.LogFetchRequest{Key: key, Offset: offset}, opts)
}

func (l *Log) fetch(ctx context.Context, req *prismv1.LogFetchRequest, opts []FetchOption) (*LogPage, error) {
	if l.ryw {
		req.MinSeq = l.lastSeq.Load()
	}
	for _, f := range opts {
		f(req)
	}
	var resp prismv1.LogFetchResponse
	if err := l.c.call(ctx, "fetch "+l.ns, subjects.Read(l.ns, "fetch"), req, &resp); err != nil {
		return nil, err
	}
	page := &LogPage{
		Records:       make([]LogRecord, len(resp.GetRecords())),
		Partition:     resp.GetPartition(),
		Partitions:    resp.GetPartitions(),
		NextOffset:    resp.GetNextOffset(),
		HighWatermark: resp.GetHighWatermark(),
	}
	for i, r := range resp.GetRecords() {
		page.Records[i] = LogRecord{
			Partition: r.GetPartition(), Offset: r.GetOffset(), Key: r.GetKey(), Value: r.GetValue(),
			Headers: r.GetHeaders(), Seq: r.GetSeq(), ID: r.GetId(),
		}
		if r.GetTime() != nil {
			page.Records[i].Time = r.GetTime().AsTime()
		}
	}
	return page, nil
}

package audit

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// ErrMalformedRecord is wrapped by the error List and Follow return for a
// message of the audit stream that is not a record: not JSON of the
// documented form, or a namespace or operation that differ from its
// subject's. Prism never writes one; it means someone else could publish
// on the audit subjects.
var ErrMalformedRecord = errors.New("malformed audit record")

// UntilSlack is how long after Filter.Until List keeps reading: a record
// is stored a little after its access happened (longer when it was
// retried), so records of accesses before Until may be stored after it.
const UntilSlack = 5 * time.Minute

// idleCheck is how long List waits for the next message before it asks
// the server whether any is left (records can age out while it reads).
const idleCheck = 2 * time.Second

// pullBuffer is how many messages the reader's consumer pulls at once.
const pullBuffer = 256

// Filter selects audit records. The zero Filter selects every record.
type Filter struct {
	// Namespace selects one namespace's records; subjects.AuditNoNamespace
	// ("_") those of operations on no namespace; "" all.
	Namespace string
	// Principal selects the records of the principal of this name; ""
	// all.
	Principal string
	// Op selects an operation and those under it: "write" selects
	// write.put and write.delete, "write.put" only write.put; "" all.
	Op string
	// Since and Until bound the records' times (inclusive); zero means
	// unbounded. Follow without Since starts with the records stored after
	// it started.
	Since, Until time.Time
	// Limit stops after this many records; 0 means no limit.
	Limit int
}

// List calls fn with each stored record that f selects, in the order
// they were stored (about the order of their times), and returns once it has seen the last one stored when it started (or f's
// Limit or Until is reached). An error from fn stops it and is returned
// as is.
//
// It reads with an ordered consumer on PRISM_AUDIT, starting at f.Since,
// filtered by namespace and operation on the server; the principal is
// filtered here. js must be in Prism's account.
//
// Errors: INVALID_ARGUMENT for a bad filter; NOT_FOUND when there is no
// audit stream; PERMISSION_DENIED when the account may not read it;
// UNAVAILABLE or DEADLINE_EXCEEDED when JetStream does not answer; an
// error wrapping ErrMalformedRecord; ctx's error.
func List(ctx context.Context, js jetstream.JetStream, f Filter, fn func(Record) error) error {
	return read(ctx, js, f, fn, false)
}

// Follow is List that does not stop at the last record: it waits for new
// ones and calls fn with each, until ctx ends (it returns ctx's error),
// fn returns an error, or f's Limit is reached or a record stored more
// than UntilSlack after f.Until arrives (it returns nil). Without f.Since
// it starts with the records stored after it started.
func Follow(ctx context.Context, js jetstream.JetStream, f Filter, fn func(Record) error) error {
	return read(ctx, js, f, fn, true)
}

func (f Filter) consumerConfig(follow bool) (jetstream.OrderedConsumerConfig, error) {
	filters, err := subjects.AuditFilter(f.Namespace, f.Op)
	if err != nil {
		return jetstream.OrderedConsumerConfig{}, status.Invalidf("audit filter: %v", err)
	}
	if f.Limit < 0 {
		return jetstream.OrderedConsumerConfig{}, status.Invalidf("audit filter: limit %d is negative", f.Limit)
	}
	if !f.Since.IsZero() && !f.Until.IsZero() && f.Until.Before(f.Since) {
		return jetstream.OrderedConsumerConfig{}, status.Invalidf("audit filter: until %s is before since %s", f.Until.Format(time.RFC3339), f.Since.Format(time.RFC3339))
	}
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: filters, DeliverPolicy: jetstream.DeliverAllPolicy}
	switch {
	case !f.Since.IsZero():
		since := f.Since
		cfg.DeliverPolicy, cfg.OptStartTime = jetstream.DeliverByStartTimePolicy, &since
	case follow:
		cfg.DeliverPolicy = jetstream.DeliverNewPolicy
	}
	return cfg, nil
}

func read(ctx context.Context, js jetstream.JetStream, f Filter, fn func(Record) error, follow bool) error {
	cfg, err := f.consumerConfig(follow)
	if err != nil {
		return err
	}
	if !follow {
		// An empty stream has nothing to list, and no consumer is needed
		// to know it.
		s, err := js.Stream(ctx, subjects.AuditStream)
		if err != nil {
			return streamError("read the audit stream "+subjects.AuditStream, err)
		}
		if s.CachedInfo().State.Msgs == 0 {
			return nil
		}
	}
	cons, err := js.OrderedConsumer(ctx, subjects.AuditStream, cfg)
	if err != nil {
		return streamError("read the audit stream "+subjects.AuditStream, err)
	}
	it, err := cons.Messages(jetstream.PullMaxMessages(pullBuffer))
	if err != nil {
		return streamError("read the audit stream "+subjects.AuditStream, err)
	}
	defer it.Stop()
	if !follow {
		if info := cons.CachedInfo(); info != nil && info.NumPending == 0 {
			return nil
		}
	}
	n := 0
	for {
		m, err := next(ctx, it, follow)
		if errors.Is(err, errIdle) {
			// Nothing came for a while: done if nothing is left to read.
			info, ierr := cons.Info(ctx)
			if ierr == nil && info.NumPending == 0 {
				return nil
			}
			continue
		}
		if err != nil {
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return streamError("read the audit stream "+subjects.AuditStream, err)
		}
		md, err := m.Metadata()
		if err != nil {
			return fmt.Errorf("%w: no JetStream metadata: %v", ErrMalformedRecord, err)
		}
		if !f.Until.IsZero() && md.Timestamp.After(f.Until.Add(UntilSlack)) {
			return nil
		}
		recs, err := decode(m.Subject(), m.Data())
		if err != nil {
			return fmt.Errorf("audit stream %s seq %d: %w", subjects.AuditStream, md.Sequence.Stream, err)
		}
		for i := range recs {
			if !f.selects(&recs[i]) {
				continue
			}
			if err := fn(recs[i]); err != nil {
				return err
			}
			n++
			if f.Limit > 0 && n >= f.Limit {
				return nil
			}
		}
		if !follow && md.NumPending == 0 {
			return nil
		}
	}
}

// errIdle is next's error when List waited idleCheck for nothing.
var errIdle = errors.New("no message")

// next returns the iterator's next message. List's waits are bounded by
// idleCheck, Follow's only by ctx.
func next(ctx context.Context, it jetstream.MessagesContext, follow bool) (jetstream.Msg, error) {
	if follow {
		return it.Next(jetstream.NextContext(ctx))
	}
	wctx, cancel := context.WithTimeout(ctx, idleCheck)
	defer cancel()
	m, err := it.Next(jetstream.NextContext(wctx))
	if err != nil && ctx.Err() == nil && (errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout)) {
		return nil, errIdle
	}
	return m, err
}

// selects reports whether f selects rec, for what the server's subject
// filter does not decide: principal and times.
func (f Filter) selects(rec *Record) bool {
	if f.Principal != "" && rec.Principal.Name != f.Principal {
		return false
	}
	if !f.Since.IsZero() && rec.Time.Before(f.Since) {
		return false
	}
	if !f.Until.IsZero() && rec.Time.After(f.Until) {
		return false
	}
	return true
}

// decode parses the records of a message stored on subject, one JSON
// document a line, and checks that they are records of that subject.
func decode(subject string, data []byte) ([]Record, error) {
	addr, err := subjects.ParseAudit(subject)
	if err != nil {
		return nil, fmt.Errorf("%w: subject: %v", ErrMalformedRecord, err)
	}
	recs := make([]Record, 0, bytes.Count(data, newline)+1)
	for line := range bytes.SplitSeq(data, newline) {
		var rec Record
		if err := json.Unmarshal(line, &rec); err != nil {
			return nil, fmt.Errorf("%w: record %d: %v", ErrMalformedRecord, len(recs)+1, err)
		}
		if rec.Namespace != addr.Namespace || rec.Op != addr.Op {
			return nil, fmt.Errorf("%w: record %d says namespace %q op %q, its subject %s", ErrMalformedRecord, len(recs)+1, rec.Namespace, rec.Op, subject)
		}
		recs = append(recs, rec)
	}
	return recs, nil
}

var newline = []byte{'\n'}

// Package replay re-projects a namespace's stream: backfilling a new
// target, rebuilding one, and keeping that affordable.
//
// Compaction (Compact, Compactor; ADR 012) bounds a replay of a KeyValue
// namespace by its live data rather than by everything ever written: it
// rolls the events of each record subject up into one replace event that
// carries the record's whole state, and JetStream drops the events before
// it.
package replay

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/synadia-io/orbit.go/jetstreamext"
	"golang.org/x/time/rate"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// ErrRollupNotAllowed is returned by Compact for a namespace stream that
// does not allow rollups (allow_rollup_hdrs), such as one created by a
// Prism before compaction existed. Applying the namespace again (prism
// apply, or restarting prism serve) updates the stream.
var ErrRollupNotAllowed = errors.New("namespace stream does not allow rollups")

// ErrNotKeyValue is returned by Compact (wrapped in a FAILED_PRECONDITION
// *status.Error saying why) for the stream of a timeseries or log
// namespace: compaction keeps the last event of each record, which only a
// keyvalue namespace has; the others are bounded by their retention.
var ErrNotKeyValue = errors.New("not a keyvalue namespace")

const (
	// scanBatch and scanBytes bound what one direct batch get of a scan
	// of the stream asks for.
	scanBatch = 4096
	scanBytes = 8 << 20
	// compactRecordCost is what a rollup or a purge counts for in a paced
	// pass, in messages read. Measured (docs/performance.md): rolling up
	// 10,000 records of 6 events spread over a 60,000-message stream cost
	// the NATS server 2.3 ms of CPU a rollup (it removes the record's
	// earlier messages from every block that holds one), a read about
	// 25 µs.
	compactRecordCost = 100
)

// CompactStats counts what one compaction pass did.
type CompactStats struct {
	// Subjects is the number of KeyValue record subjects the stream held
	// when the pass began.
	Subjects int `json:"subjects"`
	// RolledUp counts the records whose events were replaced by one replace
	// event (a rollup).
	RolledUp int `json:"rolled_up"`
	// MessagesRemoved counts the messages the pass removed from the stream,
	// by rollups and tombstone purges. Each rollup also added one message.
	MessagesRemoved uint64 `json:"messages_removed"`
	// TombstonesPurged counts the deleted records of which nothing is left
	// on the stream: every consumer had acknowledged their delete.
	TombstonesPurged int `json:"tombstones_purged"`
	// SkippedWritten counts rollups JetStream refused because the record
	// was written after the pass read it. The write is kept; a later pass
	// takes the record.
	SkippedWritten int `json:"skipped_written"`
	// SkippedRecent counts records left as they are because their last
	// write carries an idempotency token and is younger than the stream's
	// duplicate window: the retry of a conditional write must still find
	// it.
	SkippedRecent int `json:"skipped_recent"`
	// SkippedTooLarge counts records whose state does not fit in one
	// message; they are left as they are.
	SkippedTooLarge int `json:"skipped_too_large"`
	// SkippedUnacked counts records left as they are because a consumer
	// (a lagging projector, a backfill, a subscriber) has not acknowledged
	// their last event yet: rolling them up would take events from under
	// it, and its target would show the record older than its checkpoint
	// says until the rollup arrives.
	SkippedUnacked int `json:"skipped_unacked"`
	// SkippedMalformed counts subjects that are not record subjects
	// Prism writes; they are left as they are.
	SkippedMalformed int `json:"skipped_malformed"`
	// MsgsBefore and MsgsAfter are the stream's message counts, every
	// subject included, before and after the pass (MsgsAfter includes what
	// was written meanwhile).
	MsgsBefore uint64 `json:"msgs_before"`
	MsgsAfter  uint64 `json:"msgs_after"`
}

// Compact runs one compaction pass over the KeyValue records of namespace's
// stream (ADR 012) and returns what it did.
//
// For each record subject holding more than one message it reads every
// message, folds them into the record's state as a projector would (events
// the projector dead-letters are skipped, expired items dropped), and
// publishes that state as one replace event with Nats-Rollup: sub, so
// JetStream removes every earlier message of the subject, and
// Nats-Expected-Last-Subject-Sequence set to the last message folded, so a
// write stored meanwhile makes the rollup fail (SkippedWritten) and is
// never lost. A record whose state is empty keeps one tombstone event; the
// subject is purged entirely (up to that event's sequence, so a newer
// write stays) only once every consumer of the stream has acknowledged it
// and it is older than the tombstone retention (see
// WithTombstoneRetention, WithoutTombstonePurge). Idempotency markers and
// other abstractions' subjects are not touched.
//
// The pass stops at the first error and returns it with what it did so
// far; every rollup and purge is atomic, so a stopped pass leaves the
// stream consistent. Errors: ErrInvalidCompactOption,
// subjects.ErrInvalidNamespace, status.ErrNamespaceNotFound (wrapping
// jetstream.ErrStreamNotFound) for a namespace without a stream,
// ErrNotKeyValue (in a status.ErrFailedPrecondition) for a stream of
// timeseries or log events, ErrRollupNotAllowed, ctx's error, or the
// JetStream error.
func Compact(ctx context.Context, js jetstream.JetStream, namespace string, opts ...CompactOption) (CompactStats, error) {
	if js == nil {
		return CompactStats{}, errors.New("compact: nil JetStream")
	}
	if err := subjects.ValidateNamespace(namespace); err != nil {
		return CompactStats{}, fmt.Errorf("compact: %w", err)
	}
	o, err := newCompactOptions(opts)
	if err != nil {
		return CompactStats{}, fmt.Errorf("compact: %w", err)
	}
	stats, err := compact(ctx, js, namespace, o)
	if err != nil {
		return stats, fmt.Errorf("compact namespace %s: %w", namespace, err)
	}
	return stats, nil
}

// keyValueOnly returns ErrNotKeyValue, saying why, when the stream of
// namespace ns holds timeseries or log events.
func keyValueOnly(ctx context.Context, stream jetstream.Stream, ns string) error {
	for _, k := range []struct{ filter, why string }{
		{subjects.AllTimeSeriesEvents(ns), "a timeseries namespace: its stream is bounded by its retention (needs.retention), not by compaction, which keeps the last event of each keyvalue record"},
		{subjects.AllLogEvents(ns), "a log namespace: its stream is bounded by its retention, not by compaction, which keeps the last event of each keyvalue record"},
	} {
		info, err := stream.Info(ctx, jetstream.WithSubjectFilter(k.filter))
		if err != nil {
			return fmt.Errorf("stream %s: subjects: %w", stream.CachedInfo().Config.Name, err)
		}
		if len(info.State.Subjects) > 0 {
			return &status.Error{Code: status.ErrFailedPrecondition.Code, Message: fmt.Sprintf("compaction does not apply to namespace %s, %s", ns, k.why), Err: ErrNotKeyValue}
		}
	}
	return nil
}

// pass is one compaction pass.
type pass struct {
	js     jetstream.JetStream
	ns     string
	stream jetstream.Stream
	name   string
	o      compactOptions
	log    *slog.Logger
	// floor is the lowest sequence every consumer of the stream has
	// acknowledged, read when the pass began.
	floor uint64
	// last is the stream's last sequence when the pass began: its message
	// is never purged, so that the stream's last sequence always has a
	// message a projector stopping there (or catching up) can reach.
	last uint64
	// dupWindow is the stream's duplicate window.
	dupWindow time.Duration
	// maxMsg is the largest message the stream and the connection take.
	maxMsg int
	// pace spreads a paced pass's work out (WithCompactRate); nil when
	// unpaced. batch is what one read of the scan asks for: at most
	// pace's burst.
	pace  *rate.Limiter
	batch int

	mu    sync.Mutex
	stats CompactStats
}

func compact(ctx context.Context, js jetstream.JetStream, ns string, o compactOptions) (CompactStats, error) {
	name := subjects.Stream(ns)
	stream, err := js.Stream(ctx, name)
	if errors.Is(err, jetstream.ErrStreamNotFound) {
		return CompactStats{}, &status.Error{Code: status.ErrNamespaceNotFound.Code, Message: fmt.Sprintf("namespace %s has no event stream %s: it is not registered (prism ns list shows those that are), or it was deleted with --purge", ns, name), Err: err}
	}
	if err != nil {
		return CompactStats{}, fmt.Errorf("stream %s: %w", name, err)
	}
	cfg := stream.CachedInfo().Config
	if !cfg.AllowRollup {
		return CompactStats{}, fmt.Errorf("%w: stream %s: apply the namespace again with this Prism (prism apply, or restart prism serve) to update it", ErrRollupNotAllowed, name)
	}
	// Per-subject message counts, in pages of the server's (nats.go
	// requests them all): the subjects with more than one message are
	// the records to roll up.
	info, err := stream.Info(ctx, jetstream.WithSubjectFilter(subjects.AllKeyValueEvents(ns)))
	if err != nil {
		return CompactStats{}, fmt.Errorf("stream %s: subjects: %w", name, err)
	}
	if len(info.State.Subjects) == 0 && info.State.Msgs > 0 {
		if err := keyValueOnly(ctx, stream, ns); err != nil {
			return CompactStats{}, err
		}
	}
	p := &pass{
		js: js, ns: ns, stream: stream, name: name, o: o,
		log:       o.logger.With("namespace", ns),
		dupWindow: cfg.Duplicates,
		maxMsg:    int(js.Conn().MaxPayload()),
	}
	if cfg.MaxMsgSize > 0 {
		p.maxMsg = min(p.maxMsg, int(cfg.MaxMsgSize))
	}
	p.paced(o.rate)
	p.stats.Subjects = len(info.State.Subjects)
	p.stats.MsgsBefore = info.State.Msgs
	p.last = info.State.LastSeq
	if p.floor, err = ackFloor(ctx, stream, info.State.LastSeq); err != nil {
		return p.stats, err
	}
	counts := info.State.Subjects
	var multi []string
	for subj, n := range counts {
		if n > 1 {
			multi = append(multi, subj)
		}
	}
	slices.Sort(multi)
	// The first scan also finds the tombstones alone on their subject.
	tombstones := o.purgeTombstones && p.floor > 0
	for first := true; first || len(multi) > 0; first = false {
		group := multi[:min(len(multi), o.foldLimit)]
		multi = multi[len(group):]
		if err := p.compactGroup(ctx, group, counts, info.State.FirstSeq, info.State.LastSeq, tombstones && first); err != nil {
			return p.result(), err
		}
	}
	if s, err := stream.Info(ctx); err == nil {
		p.stats.MsgsAfter = s.State.Msgs
	}
	return p.result(), nil
}

// ackFloor returns the lowest stream sequence that every consumer of
// stream has acknowledged, or last when it has no consumer. Every consumer
// counts, durable or not, whatever its filter: one that never acknowledges
// holds tombstones back, which is the safe side.
func ackFloor(ctx context.Context, stream jetstream.Stream, last uint64) (uint64, error) {
	floor := last
	l := stream.ListConsumers(ctx)
	for ci := range l.Info() {
		floor = min(floor, ci.AckFloor.Stream)
	}
	if err := l.Err(); err != nil {
		return 0, fmt.Errorf("list consumers: %w", err)
	}
	return floor, nil
}

func (p *pass) result() CompactStats {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.stats
}

func (p *pass) count(fn func(s *CompactStats)) {
	p.mu.Lock()
	fn(&p.stats)
	p.mu.Unlock()
}

// compactGroup folds the records of the subjects of group in one scan of
// the stream from seq first to seq last (the stream as the pass found it;
// a record written since makes its rollup fail), then rolls each up or
// purges it. With tombstones, it also purges the subjects that held one
// message (counts) when that message is a tombstone every consumer has
// acknowledged.
func (p *pass) compactGroup(ctx context.Context, group []string, counts map[string]uint64, first, last uint64, tombstones bool) error {
	recs := make(map[string]*folded, len(group))
	for _, subj := range group {
		recs[subj] = newFolded()
	}
	now := p.o.now()
	var dead []*jetstream.RawStreamMsg
	err := p.scan(ctx, first, last, func(m *jetstream.RawStreamMsg) {
		if f := recs[m.Subject]; f != nil {
			f.add(m)
			return
		}
		if tombstones && counts[m.Subject] == 1 && emptyAlone(m, now) && p.purgeable(m, now) {
			dead = append(dead, m)
		}
	})
	if err != nil {
		return err
	}
	err = each(ctx, p.o.concurrency, group, func(ctx context.Context, subj string) error {
		return p.compactRecord(ctx, subj, recs[subj])
	})
	if err != nil {
		return err
	}
	return each(ctx, p.o.concurrency, dead, func(ctx context.Context, m *jetstream.RawStreamMsg) error {
		return p.purge(ctx, m.Subject, m.Sequence, 1)
	})
}

// scan calls fn with every message of the stream from seq first to seq
// last, in order, read in direct batch gets. One pass over the stream
// serves every record: reading record by record would make the server
// search every block for each record, whose events are spread all over
// the stream.
func (p *pass) scan(ctx context.Context, first, last uint64, fn func(*jetstream.RawStreamMsg)) error {
	seq := max(first, 1)
	for seq <= last {
		// No subject filter: the server reads the stream in order, where a
		// wildcard filter has it match every message against the filter.
		// The rest of the stream is idempotency markers, few.
		if err := p.wait(ctx, p.batch); err != nil {
			return err
		}
		msgs, err := jetstreamext.GetBatch(ctx, p.js, p.name, p.batch, jetstreamext.GetBatchSeq(seq), jetstreamext.GetBatchMaxBytes(scanBytes))
		if err != nil {
			return fmt.Errorf("read from seq %d: %w", seq, err)
		}
		n := 0
		for m, err := range msgs {
			if errors.Is(err, jetstreamext.ErrNoMessages) {
				break
			}
			if err != nil {
				return fmt.Errorf("read from seq %d: %w", seq, err)
			}
			if m.Sequence > last {
				return nil
			}
			fn(m)
			seq = m.Sequence + 1
			n++
		}
		if n == 0 {
			return nil
		}
	}
	return nil
}

// compactRecord rolls up the record of subject subj, folded into f, or
// purges it if it is a tombstone every consumer has acknowledged.
func (p *pass) compactRecord(ctx context.Context, subj string, f *folded) error {
	if f.n == 0 {
		return nil // compacted meanwhile: nothing up to the pass's last seq
	}
	now := p.o.now()
	last := f.last
	if f.n == 1 {
		// Compacted meanwhile: at most a tombstone to purge.
		if emptyAlone(last, now) && p.purgeable(last, now) {
			return p.purge(ctx, subj, last.Sequence, 1)
		}
		return nil
	}
	if last.Sequence > p.floor {
		p.count(func(s *CompactStats) { s.SkippedUnacked++ })
		return nil
	}
	// Any of its events, not only the last: a retried write whose event
	// was rolled up would be answered as a duplicate of a sequence that no
	// longer holds it.
	if !f.tokenAt.IsZero() && now.Sub(f.tokenAt) < p.dupWindow {
		p.count(func(s *CompactStats) { s.SkippedRecent++ })
		return nil
	}
	items := f.live(now)
	if len(items) == 0 && p.purgeable(last, now) {
		return p.purge(ctx, subj, last.Sequence, f.n)
	}
	return p.rollup(ctx, subj, items, last.Sequence, f.n, now)
}

// paced makes p read the stream in steps of its pace, perSecond messages
// a second (0: unpaced, in batches of scanBatch). A step is a hundredth
// of a second's worth: a read of a large batch arrives as one burst on
// the process's NATS connection, which delays the requests on it.
func (p *pass) paced(perSecond float64) {
	p.batch = scanBatch
	if perSecond > 0 {
		burst := max(int(perSecond/100), compactRecordCost)
		p.pace = rate.NewLimiter(rate.Limit(perSecond), burst)
		p.batch = min(scanBatch, burst)
	}
}

// wait takes n messages' worth of the pass's pace, at once when it is
// unpaced. Errors: ctx's.
func (p *pass) wait(ctx context.Context, n int) error {
	if p.pace == nil {
		return nil
	}
	if p.o.paceHook != nil {
		p.o.paceHook(n)
	}
	return p.pace.WaitN(ctx, n)
}

// purgeable reports whether m, after which its record is empty, may be
// the last message of the record that is purged: every consumer has
// acknowledged it, it is older than the tombstone retention, and it is not
// the stream's last message.
func (p *pass) purgeable(m *jetstream.RawStreamMsg, now time.Time) bool {
	return p.o.purgeTombstones && m.Sequence <= p.floor && m.Sequence != p.last && now.Sub(m.Time) >= p.o.tombstoneRetention
}

// purge removes the n messages of subject subj at or below seq. A message
// stored after seq stays.
func (p *pass) purge(ctx context.Context, subj string, seq uint64, n int) error {
	if err := p.wait(ctx, compactRecordCost); err != nil {
		return err
	}
	if p.o.hook != nil {
		p.o.hook("purge", subj)
	}
	if err := p.stream.Purge(ctx, jetstream.WithPurgeSubject(subj), jetstream.WithPurgeSequence(seq+1)); err != nil {
		return fmt.Errorf("purge %s through seq %d: %w", subj, seq, err)
	}
	p.log.Debug("purged deleted record", "subject", subj, "seq", seq, "messages", n)
	p.count(func(s *CompactStats) {
		s.TombstonesPurged++
		s.MessagesRemoved += uint64(n)
	})
	return nil
}

// rollup publishes items as the whole state of the record of subject subj,
// replacing its n messages, the last at seq.
func (p *pass) rollup(ctx context.Context, subj string, items []*prismv1.Item, seq uint64, n int, now time.Time) error {
	if err := p.wait(ctx, compactRecordCost); err != nil {
		return err
	}
	ev, err := subjects.ParseEvent(subj)
	if err != nil {
		// Not a record subject Prism writes (its projector dead-letters
		// its events): one such subject must not stop the pass.
		p.log.Warn("not a record subject; left as it is", "subject", subj, "err", err)
		p.count(func(s *CompactStats) { s.SkippedMalformed++ })
		return nil
	}
	msg, err := subjects.NewKeyValueEvent(subjects.EventMeta{Namespace: p.ns, Time: now}, &prismv1.KeyValueEvent{
		Id:     ev.ID,
		Change: &prismv1.KeyValueEvent_Replace{Replace: &prismv1.KeyValueReplace{Items: items}},
	})
	if err != nil {
		return fmt.Errorf("roll up %s: %w", subj, err)
	}
	msg.Header.Set(subjects.HeaderRollup, subjects.RollupSubject)
	msg.Header.Set(subjects.HeaderExpectedSubjectSeq, strconv.FormatUint(seq, 10))
	tooLarge := func(err error) error {
		p.log.Warn("record too large to roll up into one message; left as it is", "subject", subj, "items", len(items),
			"bytes", msgSize(msg), "max", p.maxMsg, "err", err)
		p.count(func(s *CompactStats) { s.SkippedTooLarge++ })
		return nil
	}
	if msgSize(msg) > p.maxMsg {
		return tooLarge(nil)
	}
	if p.o.hook != nil {
		p.o.hook("rollup", subj)
	}
	if _, err := p.js.PublishMsg(ctx, msg); err != nil {
		switch {
		case wrongLastSequence(err):
			p.log.Debug("record written meanwhile; rollup skipped", "subject", subj, "seq", seq)
			p.count(func(s *CompactStats) { s.SkippedWritten++ })
			return nil
		case errors.Is(err, nats.ErrMaxPayload) || apiErrorCode(err) == jetstream.JSErrCodeStreamMessageExceedsMaximum:
			// msgSize is the server's count give or take: never let one
			// record fail every pass.
			return tooLarge(err)
		}
		return fmt.Errorf("roll up %s through seq %d: %w", subj, seq, err)
	}
	p.count(func(s *CompactStats) {
		s.RolledUp++
		s.MessagesRemoved += uint64(n)
	})
	return nil
}

// msgSize is the size of msg as the server counts it against its limits:
// subject, headers and data.
func msgSize(msg *nats.Msg) int {
	n := len(msg.Subject) + len(msg.Data) + len("NATS/1.0\r\n\r\n")
	for k, vs := range msg.Header {
		for _, v := range vs {
			n += len(k) + len(": \r\n") + len(v)
		}
	}
	return n
}

// wrongLastSequence reports whether err is JetStream refusing a message
// whose expected last subject sequence is stale.
func wrongLastSequence(err error) bool {
	code := apiErrorCode(err)
	return code == jetstream.JSErrCodeStreamWrongLastSequence || code == jetstream.JSErrCodeStreamWrongLastSequenceConstant
}

// apiErrorCode is the JetStream error code of err, 0 if it has none.
func apiErrorCode(err error) jetstream.ErrorCode {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		return apiErr.ErrorCode
	}
	return 0
}

// each calls fn for every job on n goroutines, and returns the first
// error, after which it starts no more jobs, or ctx's error.
func each[T any](ctx context.Context, n int, jobs []T, fn func(context.Context, T) error) error {
	if len(jobs) == 0 {
		return ctx.Err()
	}
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	ch := make(chan T)
	var wg sync.WaitGroup
	for range min(n, len(jobs)) {
		wg.Go(func() {
			for job := range ch {
				if err := fn(ctx, job); err != nil {
					cancel(err)
				}
			}
		})
	}
feed:
	for _, job := range jobs {
		select {
		case ch <- job:
		case <-ctx.Done():
			break feed
		}
	}
	close(ch)
	wg.Wait()
	return context.Cause(ctx)
}

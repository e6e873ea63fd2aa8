package projectors

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/subjects"
)

// maxReasonLen bounds the Prism-Dlq-Reason header.
const maxReasonLen = 1024

// deadLetter publishes m, stored at stream sequence seq, to the namespace's
// dead-letter subject with the reason and its origin, and waits for the
// JetStream ack. It retries until it succeeds or ctx ends (an event is never
// skipped without a dead letter) and returns only ctx's error.
func (p *Projector) deadLetter(ctx context.Context, m jetstream.Msg, seq uint64, reason error) error {
	dl := nats.NewMsg(subjects.DeadLetter(p.ns))
	for k, v := range m.Headers() {
		// Nats-Msg-Id, Nats-Expected-*, Nats-Batch-*, Nats-TTL… were meant
		// for the original publish; on the dead letter they would dedupe,
		// fail or expire it.
		if strings.HasPrefix(strings.ToLower(k), "nats-") {
			continue
		}
		dl.Header[k] = append([]string(nil), v...)
	}
	dl.Data = m.Data()
	dl.Header.Set(subjects.HeaderDLQReason, headerValue(reason.Error()))
	dl.Header.Set(subjects.HeaderDLQStream, p.stream)
	dl.Header.Set(subjects.HeaderDLQSeq, strconv.FormatUint(seq, 10))
	dl.Header.Set(subjects.HeaderDLQSubject, m.Subject())
	dl.Header.Set(subjects.HeaderDLQTarget, p.target)
	dl.Header.Set(subjects.HeaderMsgID, fmt.Sprintf("%s:%d:%s", p.stream, seq, p.target))
	for attempt := 1; ; attempt++ {
		ack, err := p.js.PublishMsg(ctx, dl, jetstream.WithExpectStream(subjects.DeadLetterStream))
		if err == nil {
			p.m.deadLetters.Inc()
			// Neither the subject (it holds the record id) nor the reason
			// (it may quote the event) is logged; the dead letter keeps both.
			p.log.Warn("event dead-lettered", "seq", seq, "dead_letter_stream", ack.Stream, "dead_letter_seq", ack.Sequence, "reason", loggable(reason))
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		p.m.applyErrors.Inc()
		p.log.Warn("publish dead letter failed", "seq", seq, "attempt", attempt, "err", err)
		if err := p.sleep(ctx, attempt); err != nil {
			return err
		}
	}
}

// headerValue makes s safe as a header value: one line, bounded length.
func headerValue(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\r' || r == '\n' {
			return ' '
		}
		return r
	}, s)
	if len(s) > maxReasonLen {
		s = strings.ToValidUTF8(s[:maxReasonLen], "")
	}
	return s
}

// loggable is what of err may go into a log line. Events carry record ids,
// keys and values, which may be personal data, and the errors blaming an
// event may quote them: of those only the kind is logged (the dead letter
// has the full reason in its Prism-Dlq-Reason header). Other errors are
// the backend's or JetStream's and are logged whole.
func loggable(err error) string {
	switch {
	case errors.Is(err, subjects.ErrBadEvent):
		return "malformed event (the dead letter's " + subjects.HeaderDLQReason + " header says why)"
	case isPermanent(err):
		return "the target refused the change as invalid (the dead letter's " + subjects.HeaderDLQReason + " header says why)"
	}
	return err.Error()
}

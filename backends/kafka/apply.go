package kafka

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/segmentio/kafka-go"

	"github.com/prism-data/prism/backends/internal/kit"
	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/subjects"
)

// ApplyLog produces the records of changes (in slice order, which is stream
// order) to the data topic, each keyed by its record key so that a key's
// records stay in one partition in order, with the event's CloudEvents
// headers, prism-seq and the writer's headers, and waits until the cluster
// acknowledged every one (acks=all). Only then does it write through to the
// checkpoint topic. Changes at or below the checkpoint are skipped, and a
// call with through at or below it changes nothing.
//
// This is at-least-once, not exactly-once: Kafka (through kafka-go) has no
// transaction spanning the records and the checkpoint. A crash, or an
// error, after some records of a batch were acknowledged and before its
// checkpoint was written makes the projector produce the batch again, so
// those records are in the topic twice, with the same ce-id and prism-seq;
// consumers deduplicate by ce-id (or prism-seq). No record is ever missing:
// the checkpoint never passes a record that is not acknowledged. The
// records of one partition in one call are one produce request (at most
// WithBatchSize changes are handed to the Writer at once), so a failed
// request never leaves a later record of its partition written before it.
//
// Errors: ErrInvalidBatch, an *InvalidChangeError (ErrInvalidChange,
// permanent) for an invalid change or one the cluster refuses as too large,
// ErrClosed, or the cluster's error (transient: retry).
func (s *Store) ApplyLog(ctx context.Context, changes []*prismv1.LogChange, through uint64) error {
	unlock, err := s.read()
	if err != nil {
		return err
	}
	defer unlock()
	if f := kit.CheckLogBatch(changes, through, subjects.IsReservedLogHeader); f != nil {
		return kitErrors.Batch(f)
	}
	ctx, cancel := withTimeout(ctx)
	defer cancel()
	s.wmu.Lock()
	defer s.wmu.Unlock()
	checkpoint := s.checkpoint.Load()
	if through <= checkpoint {
		return nil
	}
	now := time.Now()
	msgs := make([]kafka.Message, 0, len(changes))
	first := 0 // index in changes of msgs[0]
	for i, c := range changes {
		if c.GetSeq() <= checkpoint {
			first = i + 1
			continue
		}
		msgs = append(msgs, message(c, now))
	}
	for start := 0; start < len(msgs); {
		end, size := start, 0
		for end < len(msgs) && end-start < s.opts.batchSize {
			n := messageSize(msgs[end])
			if end > start && size+n > s.opts.batchBytes/2 {
				break
			}
			size += n
			end++
		}
		if err := s.writer.WriteMessages(ctx, msgs[start:end]...); err != nil {
			return s.writeError(err, changes, first+start)
		}
		start = end
	}
	cp := kafka.Message{Key: []byte(s.topic), Value: strconv.AppendUint(nil, through, 10), Time: now}
	if err := s.cpWriter.WriteMessages(ctx, cp); err != nil {
		return fmt.Errorf("write checkpoint %d to %s: %w", through, s.cpTopic, err)
	}
	s.checkpoint.Store(through)
	return nil
}

// writeError maps an error of WriteMessages for the messages from
// changes[offset] on: a record the cluster or the Writer refuses as too
// large blames its change (permanent), anything else is transient.
func (s *Store) writeError(err error, changes []*prismv1.LogChange, offset int) error {
	var tooLarge kafka.MessageTooLargeError
	if errors.As(err, &tooLarge) {
		// The Writer refuses a record above its batch bytes. By
		// messageSize (whose fixed overhead is above the Writer's) that
		// record is above batchBytes/2 too, and ApplyLog's chunking gives
		// any such record a chunk of its own: the size check ends the
		// chunk before it and right after it. So the refused record is
		// the chunk's first and only one, changes[offset].
		return &InvalidChangeError{kit.ChangeError{Index: offset, Seq: changes[offset].GetSeq(), Reason: "record larger than the writer's batch bytes"}}
	}
	var werrs kafka.WriteErrors
	if errors.As(err, &werrs) {
		for i, e := range werrs {
			if e != nil && (errors.Is(e, kafka.MessageSizeTooLarge) || errors.Is(e, kafka.RecordListTooLarge)) {
				c := changes[offset+i]
				return &InvalidChangeError{kit.ChangeError{Index: offset + i, Seq: c.GetSeq(), Reason: fmt.Sprintf("the cluster refused the record: %v", e)}}
			}
		}
	}
	return fmt.Errorf("produce to %s: %w", s.topic, err)
}

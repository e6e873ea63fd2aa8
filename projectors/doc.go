// Package projectors turns the events of a namespace's JetStream stream into
// state in a projection target (a backend), one durable consumer per
// (namespace, target) pair. A namespace holds one data abstraction: New
// projects KeyValue events into a KeyValueTarget, NewTimeSeries projects
// TimeSeries appends into a TimeSeriesTarget, NewLog projects Log appends
// into a LogTarget (a Kafka topic); all return the same Projector, and
// everything below holds for all, except that a LogTarget's records and
// checkpoint do not commit atomically: its effect is at-least-once, with
// the CloudEvent id carried for consumers to deduplicate (see LogTarget).
//
// # Delivery and effect
//
// A Projector reads the stream PRISM_<NS> through the durable pull consumer
// proj_<target>, groups the messages already at hand into a batch (it never
// waits to fill one), and hands the batch to the target's ApplyKeyValue (or
// ApplyTimeSeries) together with the stream sequence of the batch's last message. The target
// applies the changes and stores that sequence as its checkpoint in the same
// transaction; only after the commit are the messages acknowledged.
//
// The target's checkpoint, not the consumer, is the truth about what has been
// applied. Messages whose sequence is at or below the checkpoint are skipped
// (acknowledged without being applied), so a crash between commit and ack,
// a redelivery after AckWait, or a retried batch whose first attempt
// committed before reporting an error never applies a change twice. On a
// transactional target such as SQLite this gives an exactly-once effect; on
// a target whose apply is not atomic with its checkpoint it degrades to
// at-least-once, which is safe only if its writes are idempotent: by
// (id, key, seq) for KeyValue, by (series id, event time, event id) for
// TimeSeries.
//
// Skipping by checkpoint is only correct if nothing after the checkpoint was
// delivered and left unapplied. Start therefore positions the consumer at
// checkpoint+1 whenever its delivered position differs from the checkpoint
// (after a crash, an abort, or a target restored from an older copy), and
// the running projector re-positions it the same way when it sees a gap in
// the consumer's delivery sequence (a message lost in transit, e.g. across a
// reconnect). One Projector per (namespace, target) may run at a time.
//
// # Backfill
//
// A replay is a projection started from an earlier point (a new or reset
// target) and bounded or paced: WithStopAt makes a projector stop by itself
// once it applied a given stream sequence (Done is closed), and WithThrottle
// paces it with a Throttle (replay.Throttle: a maximum rate, lowered while
// live targets lag). A throttled projector sends one pull request at a time
// and pays the throttle before the next, so nothing delivered waits on the
// throttle and JetStream never redelivers because of it. Lag and
// ApplyLatency are what progress output and an adaptive throttle watch.
//
// # Errors
//
// Poison events never block a namespace. A message that
// subjects.DecodeKeyValueEvent (or subjects.DecodeTimeSeriesEvent) rejects
// (subjects.ErrBadEvent: unknown subject or one of another abstraction,
// wrong ce-type, unparsable payload, id mismatch, an invalid TimeSeries
// event) is published to the dead-letter stream before the batch that
// contains it commits.
//
// When the target's apply fails, the projector retries the same batch with
// exponential backoff and jitter; it never acks or skips data it has not
// applied. An error is permanent, i.e. caused by the change rather than by
// the backend, when it matches subjects.ErrBadEvent or implements
// PermanentError with Permanent() == true. A batch that fails with a
// permanent error is applied one change at a time to isolate the culprit,
// and only a change that fails permanently on its own is dead-lettered; the
// projection then moves past it. Every other error is transient: the
// backend is unavailable (down, disk full, locked), the same batch is
// retried until it commits, lag grows and shows in the metrics, and nothing
// is lost or dead-lettered because a backend is sick.
//
// Dead letters carry the original data and CloudEvents headers plus
// Prism-Dlq-Reason, Prism-Dlq-Stream, Prism-Dlq-Seq, Prism-Dlq-Subject and
// Prism-Dlq-Target, and Nats-Msg-Id "<stream>:<seq>:<target>" so a
// redelivery does not dead-letter an event twice within the dead-letter
// stream's duplicate window.
//
// Metrics (WithRegisterer), each labelled namespace and target:
// prism_projector_applied_seq (the checkpoint),
// prism_projector_events_applied_total, prism_projector_batch_size,
// prism_projector_apply_duration_seconds (successful commits),
// prism_projector_apply_errors_total, prism_projector_dead_letters_total,
// prism_projector_lag (events behind the stream's last sequence) and
// prism_projector_lag_seconds (age of the oldest unapplied event, by the
// time JetStream stored it; 0 when caught up; computed at scrape time so it
// grows while the target is down).
//
// Logs never carry record ids, keys or values, which may be personal data:
// not the event subject (it holds the record id), and of an error that
// blames an event only its kind; the dead letter keeps the full reason.
package projectors

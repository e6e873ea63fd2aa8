// Package natskv is the NATS KV projection target of Prism: it keeps the
// KeyValue state of one namespace in a NATS KV bucket (PRISM_KV_<NS>), for
// deployments that want no database beside NATS.
//
// # Layout
//
// Every entry of the bucket is a KV key of dot-separated tokens:
//
//	i.<id>.<key>   one item: an envelope (expire_time) followed by the value
//	r.<id>         the record: its revision and the sorted index of its keys
//	               with their expire_time
//	m.checkpoint   the stream sequence of the last applied change, in decimal
//
// Ids and item keys are bytes; EncodeToken maps them to KV key tokens
// reversibly and canonically (see encode.go).
//
// # Atomicity and revision checks
//
// NATS KV has no transactions, but a bucket is a stream (KV_<bucket>) and
// JetStream commits an atomic batch all or nothing. Each ApplyKeyValue
// writes the item puts and deletes, the record entries and the checkpoint as
// one atomic batch (jetstreamext.PublishMsgBatch); a batch that would exceed
// the server's 1000 messages is split into several atomic sub-batches, each
// carrying the checkpoint of its last change, so every commit leaves a
// consistent state. The checkpoint message carries
// Nats-Expected-Last-Subject-Sequence: a second writer (another process, or
// a replay racing the live projector) that read the same checkpoint fails
// with ErrConflict instead of overwriting newer state. Changes at or below
// the checkpoint are skipped, so a redelivered or replayed batch has no
// further effect: the effect is exactly once, like SQLite's.
//
// Only a change with more than 998 items (or a delete of a record with that
// many) is not atomic on its own. A put writes its items first, invisible
// until the last sub-batch writes the record's index and the checkpoint, so
// a crash re-applies it; a delete writes the index and the checkpoint first,
// so the items vanish at once, and a crash can leave only invisible items.
//
// # Costs
//
// Reads are O(items of the record): GetItems reads the record entry (the
// key index), then the values of one page. ScanIDs reads every record entry
// (O(records), per page), and an ApplyKeyValue reads the entries of the
// records it touches. That suits small records and lightweight deployments;
// SQLite and PostgreSQL are the targets for large ones. A record's index
// must fit in one NATS message (1 MiB by default: tens of thousands of
// short keys).
package natskv

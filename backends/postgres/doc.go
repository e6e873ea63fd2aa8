// Package postgres is the PostgreSQL projection target of Prism (pgx/v5,
// pgxpool): it keeps the KeyValue, TimeSeries, Entity and Graph state of one
// namespace in its own PostgreSQL schema, applied from the namespace's JetStream stream in
// batches, each committed in one transaction together with the stream
// sequence it reaches (the checkpoint).
//
// Its public API and semantics are those of backends/sqlite: the same
// methods, the same page tokens, revisions, TTL, event identity (first write
// wins), orderings and errors, so a namespace can move between the two
// without its clients noticing. One checkpoint per namespace serves every
// abstraction.
//
// # Schema
//
// Namespace ns lives in schema "prism_<ns>" (a quoted identifier, so '-'
// and '_' stay distinct; see docs/adr/003-postgres-schema-per-namespace.md
// for names too long for PostgreSQL's 63-byte identifiers). Open creates and
// migrates it: the version is kept in the schema's schema_version table and
// the migration runs under a transaction-scoped advisory lock, so several
// processes opening the same namespace at once do not race.
//
// # Writes
//
// Every write transaction (a batch, a sweep chunk) first locks the
// namespace's checkpoint row, so writers of one namespace are serialized as
// on SQLite, also across processes, while readers never wait: each read is
// one statement and sees one snapshot.
//
// A batch is collapsed in Go before it is written: per record and item key
// only the last effect survives, in sequence order, and the result is written
// with a handful of set-based statements over unnest arrays, whatever the
// batch size, instead of one statement per event. A TimeSeries batch above
// the checkpoint is a single statement: checkpoint, events (ON CONFLICT DO
// NOTHING) and the tag rows of the events it stored. An Entity batch is
// one pipelined pgx batch of per-record statements (entity.go), and so is
// a Graph batch (graph.go): multi-row upserts of what changed between two
// deletes, then each delete, in stream order, since a vertex delete takes
// the edges that exist at its point of the batch.
//
// Durability: a batch is durable when ApplyKeyValue returns, as durable as
// the server's synchronous_commit setting makes any commit.
package postgres

package sqlite

import (
	"context"
	"database/sql"
	"fmt"
)

// migrations[i] moves the schema from version i to version i+1. The version
// is kept in PRAGMA user_version and set in the same transaction as the
// migration, so a crash leaves the database at one version or the next.
// Append only: never edit a migration that has shipped.
var migrations = []string{
	// 1: the KeyValue projection.
	//
	// items holds every item; (id, key) is the primary key of a WITHOUT ROWID
	// table, so the rows of a record are stored together in key order and a
	// page of a record is one range scan. An item that never expires has
	// expire_sec NULL. Expire times are kept as seconds and nanoseconds so
	// every protobuf Timestamp round-trips exactly (nanoseconds in one int64
	// would stop at the year 2262).
	//
	// records holds one row per record that has items, with the stream
	// sequence of the last change applied to it (until version 3).
	//
	// checkpoint holds the one row with the stream sequence of the last
	// applied batch.
	`
CREATE TABLE records (
	id       BLOB    NOT NULL PRIMARY KEY,
	revision INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE items (
	id           BLOB    NOT NULL,
	key          BLOB    NOT NULL,
	value        BLOB    NOT NULL,
	expire_sec   INTEGER,
	expire_nanos INTEGER NOT NULL DEFAULT 0,
	PRIMARY KEY (id, key)
) WITHOUT ROWID;

CREATE INDEX items_by_expiry ON items (expire_sec, expire_nanos) WHERE expire_sec IS NOT NULL;

CREATE TABLE checkpoint (
	one INTEGER NOT NULL PRIMARY KEY CHECK (one = 1),
	seq INTEGER NOT NULL
);

INSERT INTO checkpoint (one, seq) VALUES (1, 0);
`,

	// 2: the TimeSeries projection.
	//
	// ts_events holds every event once per (series_id, event time, event_id),
	// the primary key of a WITHOUT ROWID table, so a series' events are
	// stored together in time order and a range read is one range scan.
	// Times are seconds and nanoseconds like items' expire times, so every
	// protobuf Timestamp (years 1 to 9999, before 1970 too) round-trips
	// exactly. tags holds the event's tags (see kit.EncodeTags; NULL without
	// tags), so reads return them without a join.
	//
	// ts_events_by_time orders all series by (time, series_id, event_id):
	// Search across series without tags, and the retention sweep.
	//
	// ts_tags holds one row per tag of an event: a tag search is a range
	// scan of one tag in time order, the other tags are point lookups.
	`
CREATE TABLE ts_events (
	series_id BLOB    NOT NULL,
	time_s    INTEGER NOT NULL,
	time_ns   INTEGER NOT NULL,
	event_id  BLOB    NOT NULL,
	tags      BLOB,
	payload   BLOB    NOT NULL,
	PRIMARY KEY (series_id, time_s, time_ns, event_id)
) WITHOUT ROWID;

CREATE INDEX ts_events_by_time ON ts_events (time_s, time_ns, series_id, event_id);

CREATE TABLE ts_tags (
	key       TEXT    NOT NULL,
	value     TEXT    NOT NULL,
	time_s    INTEGER NOT NULL,
	time_ns   INTEGER NOT NULL,
	series_id BLOB    NOT NULL,
	event_id  BLOB    NOT NULL,
	PRIMARY KEY (key, value, time_s, time_ns, series_id, event_id)
) WITHOUT ROWID;
`,

	// 3: the record revision moves onto the item rows (ADR 011): rev is
	// the stream sequence of the change that last wrote the row, and a
	// record's revision is the largest rev of its rows. A put writes one
	// row per item instead of an item row plus a records row, which on
	// random ids doubled the B-tree pages touched. A change that writes
	// no item (a delete of some keys, an empty put) raises the rev of the
	// record's first row; a sweep that removes the row holding the
	// largest rev moves it to the first row left.
	`
ALTER TABLE items ADD COLUMN rev INTEGER NOT NULL DEFAULT 0;

UPDATE items SET rev = coalesce((SELECT r.revision FROM records r WHERE r.id = items.id), 0);

DROP TABLE records;
`,

	// 4: the Entity projection (docs/entity.md, ADR 018).
	//
	// en_records holds one row per record: its primary key, the record
	// (the namespace's message, binary protobuf), rev, the stream
	// sequence of the put that wrote it, and lineage, the
	// prismv1.EntityLineage of that put (NULL when unknown).
	//
	// en_index holds one row per (secondary index, record): the index key
	// (the field's value, encoded so that byte order is value order) and
	// the record's id. Its primary key (idx, key, id) is the index: an
	// equality or range query of one index, ascending or descending, is one
	// range scan of it, and a page starts where the last one stopped.
	// en_index_by_id finds the rows of a record when a put replaces it or a
	// delete removes it.
	`
CREATE TABLE en_records (
	id      BLOB    NOT NULL PRIMARY KEY,
	record  BLOB    NOT NULL,
	rev     INTEGER NOT NULL,
	lineage BLOB
) WITHOUT ROWID;

CREATE TABLE en_index (
	idx TEXT NOT NULL,
	key BLOB NOT NULL,
	id  BLOB NOT NULL,
	PRIMARY KEY (idx, key, id)
) WITHOUT ROWID;

CREATE INDEX en_index_by_id ON en_index (id);
`,

	// 5: the Graph projection (docs/graph.md, ADR 019).
	//
	// g_vertices holds one row per vertex: id, label, props (a
	// prismv1.GraphProperties, empty for none) and rev, the stream
	// sequence of the upsert that wrote it. g_edges holds one row per edge
	// (src, label, dst): its primary key is the forward adjacency index
	// (the out edges of a vertex, by label, are one range scan) and
	// g_edges_in (dst, label, src) the reverse one. TEXT compares byte by
	// byte (BINARY), the order reads promise.
	`
CREATE TABLE g_vertices (
	id    TEXT    NOT NULL PRIMARY KEY,
	label TEXT    NOT NULL,
	props BLOB    NOT NULL,
	rev   INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE g_edges (
	src   TEXT    NOT NULL,
	label TEXT    NOT NULL,
	dst   TEXT    NOT NULL,
	props BLOB    NOT NULL,
	rev   INTEGER NOT NULL,
	PRIMARY KEY (src, label, dst)
) WITHOUT ROWID;

CREATE INDEX g_edges_in ON g_edges (dst, label, src);
`,

	// 6: the build state of each Entity secondary index (docs/entity.md,
	// "Schema evolution"). A live prism apply that adds an index fills it
	// from en_records in steps; state is ready, building or failed, done
	// and total count the records read and stored, since is the
	// checkpoint when the build started, after_id and phase where it is
	// (phase 0 reads every record, phase 1 those with rev > since). The
	// indexes that have rows already are ready.
	`
CREATE TABLE en_index_state (
	idx      TEXT    NOT NULL PRIMARY KEY,
	state    TEXT    NOT NULL,
	done     INTEGER NOT NULL,
	total    INTEGER NOT NULL,
	detail   TEXT    NOT NULL,
	since    INTEGER NOT NULL,
	after_id BLOB,
	phase    INTEGER NOT NULL
);

INSERT INTO en_index_state (idx, state, done, total, detail, since, phase)
	SELECT DISTINCT idx, 'ready', 0, 0, '', 0, 0 FROM en_index;
`,
}

// migrate brings the schema of db to the latest version. It is idempotent and
// refuses a database written by a newer build.
func migrate(ctx context.Context, db *sql.DB) (err error) {
	tx, err := db.BeginTx(ctx, nil) // BEGIN IMMEDIATE: one migrator at a time.
	if err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tx.Rollback()
		}
	}()
	var version int
	if err := tx.QueryRowContext(ctx, "PRAGMA user_version").Scan(&version); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("schema version %d is newer than this build supports (%d)", version, len(migrations))
	}
	for v := version; v < len(migrations); v++ {
		if _, err := tx.ExecContext(ctx, migrations[v]); err != nil {
			return fmt.Errorf("migrate schema to version %d: %w", v+1, err)
		}
	}
	if version < len(migrations) {
		// PRAGMA takes no bound parameters; the value is our own integer.
		if _, err := tx.ExecContext(ctx, fmt.Sprintf("PRAGMA user_version = %d", len(migrations))); err != nil {
			return fmt.Errorf("set schema version %d: %w", len(migrations), err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit migration: %w", err)
	}
	return nil
}

package postgres

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// migrations[i] moves a namespace's schema from version i to version i+1;
// "{s}" stands for the quoted schema name. The version is kept in the
// schema's schema_version table and set in the same transaction as the
// migration, so a crash leaves the schema at one version or the next.
// Append only: never edit a migration that has shipped.
var migrations = []string{
	// 1: the KeyValue projection, the same tables as backends/sqlite.
	//
	// items holds every item; (id, key) is the primary key, so a page of a
	// record is one range scan of its index. bytea compares like memcmp (then
	// by length), the byte order of SQLite's BLOBs and of the page tokens. An
	// item that never expires has expire_sec NULL. Expire times are kept as
	// seconds and nanoseconds so every protobuf Timestamp round-trips exactly
	// (timestamptz keeps microseconds).
	//
	// records holds one row per record that has items (expired or not), with
	// the stream sequence of the last change applied to it.
	//
	// checkpoint holds the one row with the stream sequence of the last
	// applied batch; writers lock it to serialize.
	`
CREATE TABLE {s}.records (
	id       bytea  NOT NULL PRIMARY KEY,
	revision bigint NOT NULL
);

CREATE TABLE {s}.items (
	id           bytea   NOT NULL,
	key          bytea   NOT NULL,
	value        bytea   NOT NULL,
	expire_sec   bigint,
	expire_nanos integer NOT NULL DEFAULT 0,
	PRIMARY KEY (id, key)
);

CREATE INDEX items_by_expiry ON {s}.items (expire_sec, expire_nanos) WHERE expire_sec IS NOT NULL;

CREATE TABLE {s}.checkpoint (
	one integer NOT NULL PRIMARY KEY CHECK (one = 1),
	seq bigint  NOT NULL
);

INSERT INTO {s}.checkpoint (one, seq) VALUES (1, 0);
`,

	// 2: the TimeSeries projection, the same tables as backends/sqlite.
	//
	// ts_events holds every event once per (series_id, event time,
	// event_id), its primary key, so a range read of a series is one range
	// scan of that index. Times are seconds and nanoseconds like items'
	// expire times, so every protobuf Timestamp (years 1 to 9999, before
	// 1970 too) round-trips exactly. tags holds the event's tags in the
	// length-prefixed encoding the backends share (see kit.EncodeTags; NULL
	// without tags), so reads return them without a join. Not jsonb: JSON
	// text cannot hold U+0000, which a tag may.
	//
	// ts_events_by_time orders all series by (time, series_id, event_id):
	// Search across series without tags, and the retention sweep.
	//
	// ts_tags holds one row per tag of a stored event: a tag search is a
	// range scan of one tag in time order (so a page stops at its limit),
	// the other tags are primary-key lookups. It was measured against a GIN
	// index (jsonb_path_ops) on jsonb tags plus the same time index, 100k
	// events, 100-event pages (BenchmarkSearchTag): p50 0.50-0.56 ms
	// against 0.65-0.85 ms for a tag of 1 event in 10, 0.17-0.19 ms
	// against 0.28-0.34 ms for 1 in 1000; the GIN index cannot yield
	// matches in time order, so a page costs every match of the range or
	// a filtered walk of the time index. bytea, not text: tags may hold
	// U+0000.
	`
CREATE TABLE {s}.ts_events (
	series_id bytea   NOT NULL,
	time_s    bigint  NOT NULL,
	time_ns   integer NOT NULL,
	event_id  bytea   NOT NULL,
	tags      bytea,
	payload   bytea   NOT NULL,
	PRIMARY KEY (series_id, time_s, time_ns, event_id)
);

CREATE INDEX ts_events_by_time ON {s}.ts_events (time_s, time_ns, series_id, event_id);

CREATE TABLE {s}.ts_tags (
	key       bytea   NOT NULL,
	value     bytea   NOT NULL,
	time_s    bigint  NOT NULL,
	time_ns   integer NOT NULL,
	series_id bytea   NOT NULL,
	event_id  bytea   NOT NULL,
	PRIMARY KEY (key, value, time_s, time_ns, series_id, event_id)
);
`,

	// 3: the record revision moves onto the item rows, as in
	// backends/sqlite (ADR 011): rev is the sequence of the change that
	// last wrote the row, a record's revision the largest rev of its rows,
	// and a put writes its item rows only.
	`
ALTER TABLE {s}.items ADD COLUMN rev bigint NOT NULL DEFAULT 0;

UPDATE {s}.items i SET rev = r.revision FROM {s}.records r WHERE r.id = i.id;

DROP TABLE {s}.records;
`,

	// 4: the Entity projection, as in backends/sqlite (docs/entity.md):
	// en_records one row per record, en_index one row per (secondary
	// index, record) whose primary key (idx, key, id) serves equality and
	// range queries in both orders; bytea compares byte by byte, the
	// order the index keys are encoded for.
	`
CREATE TABLE {s}.en_records (
	id      bytea  NOT NULL PRIMARY KEY,
	record  bytea  NOT NULL,
	rev     bigint NOT NULL,
	lineage bytea
);

CREATE TABLE {s}.en_index (
	idx text  NOT NULL,
	key bytea NOT NULL,
	id  bytea NOT NULL,
	PRIMARY KEY (idx, key, id)
);

CREATE INDEX en_index_by_id ON {s}.en_index (id);
`,

	// 5: the Graph projection, as in backends/sqlite (docs/graph.md, ADR
	// 019): g_vertices one row per vertex, g_edges one row per edge whose
	// primary key (src, label, dst) is the forward adjacency index and
	// g_edges_in (dst, label, src) the reverse one. The text columns are
	// COLLATE "C" so that they sort byte by byte, as SQLite's TEXT and the
	// page tokens do, whatever the database's locale.
	`
CREATE TABLE {s}.g_vertices (
	id    text COLLATE "C" NOT NULL PRIMARY KEY,
	label text COLLATE "C" NOT NULL,
	props bytea  NOT NULL,
	rev   bigint NOT NULL
);

CREATE TABLE {s}.g_edges (
	src   text COLLATE "C" NOT NULL,
	label text COLLATE "C" NOT NULL,
	dst   text COLLATE "C" NOT NULL,
	props bytea  NOT NULL,
	rev   bigint NOT NULL,
	PRIMARY KEY (src, label, dst)
);

CREATE INDEX g_edges_in ON {s}.g_edges (dst, label, src);
`,

	// 6: the build state of each Entity secondary index (docs/entity.md,
	// "Schema evolution"). A live prism apply that adds an index fills it
	// from en_records in steps; state is ready, building or failed, done
	// and total count the records read and stored, since is the
	// checkpoint when the build started, after_id and phase where it is
	// (phase 0 reads every record, phase 1 those with rev > since). The
	// indexes that have rows already are ready.
	`
CREATE TABLE {s}.en_index_state (
	idx      text    NOT NULL PRIMARY KEY,
	state    text    NOT NULL,
	done     bigint  NOT NULL,
	total    bigint  NOT NULL,
	detail   text    NOT NULL,
	since    bigint  NOT NULL,
	after_id bytea,
	phase    bigint  NOT NULL
);

INSERT INTO {s}.en_index_state (idx, state, done, total, detail, since, phase)
	SELECT DISTINCT idx, 'ready', 0, 0, '', 0, 0 FROM {s}.en_index;
`,
}

// advisoryClass is the first key of the advisory locks Prism takes (ASCII
// "pris"); the second is the hash of the schema name. A hash collision only
// makes two migrations wait for each other.
const advisoryClass = 0x70726973

// migrate creates the schema if needed and brings it to the latest version.
// It is idempotent, serialized across processes by an advisory lock held
// until the transaction ends, and refuses a schema written by a newer build.
func migrate(ctx context.Context, pool *pgxpool.Pool, schema string) error {
	s := pgx.Identifier{schema}.Sanitize()
	return pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, advisoryClass, schema); err != nil {
			return fmt.Errorf("lock schema for migration: %w", err)
		}
		// No arguments: pgx sends these with the simple protocol, several
		// statements in one round trip.
		if _, err := tx.Exec(ctx, strings.ReplaceAll(`
CREATE SCHEMA IF NOT EXISTS {s};
CREATE TABLE IF NOT EXISTS {s}.schema_version (
	one     integer NOT NULL PRIMARY KEY CHECK (one = 1),
	version integer NOT NULL
);
INSERT INTO {s}.schema_version (one, version) VALUES (1, 0) ON CONFLICT (one) DO NOTHING;
`, "{s}", s)); err != nil {
			return fmt.Errorf("create schema: %w", err)
		}
		var version int
		if err := tx.QueryRow(ctx, `SELECT version FROM `+s+`.schema_version WHERE one = 1`).Scan(&version); err != nil {
			return fmt.Errorf("read schema version: %w", err)
		}
		if version > len(migrations) {
			return fmt.Errorf("schema version %d is newer than this build supports (%d)", version, len(migrations))
		}
		for v := version; v < len(migrations); v++ {
			if _, err := tx.Exec(ctx, strings.ReplaceAll(migrations[v], "{s}", s)); err != nil {
				return fmt.Errorf("migrate schema to version %d: %w", v+1, err)
			}
		}
		if version < len(migrations) {
			if _, err := tx.Exec(ctx, `UPDATE `+s+`.schema_version SET version = $1 WHERE one = 1`, len(migrations)); err != nil {
				return fmt.Errorf("set schema version %d: %w", len(migrations), err)
			}
		}
		return nil
	})
}

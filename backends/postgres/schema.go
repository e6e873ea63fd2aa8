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

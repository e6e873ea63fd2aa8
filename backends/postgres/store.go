package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/prism-data/prism/subjects"

	"github.com/prism-data/prism/backends/internal/kit"
)

// Store is the PostgreSQL schema of one namespace. Its methods are safe for
// concurrent use, and several Stores (in one process or many) may share a
// namespace: their writes are serialized by the namespace's checkpoint row.
// Create it with Open and release it with Close.
type Store struct {
	now func() time.Time

	// gate is entered by every operation and closed by Close, so Close
	// waits for the operations in flight and none starts after it.
	gate kit.Gate

	pool   *pgxpool.Pool
	schema string // the schema's name, unquoted
	q      *queries
	ts     *tsQueries

	// indexes caches the entity indexes seen ready.
	indexes kit.IndexStates
}

// Open connects to the PostgreSQL database at dsn (a pgx connection string:
// URL or key=value, including pool_* settings) and brings the schema of
// namespace to the current version, creating it if needed. The migration is
// idempotent, safe to run from several processes at once, and refuses a
// schema written by a newer build. The role needs the CREATE privilege on
// the database the first time a namespace is opened.
//
// It returns an error if an option, the dsn or the namespace name
// (subjects.ValidateNamespace) is invalid, or the database cannot be
// reached or migrated; it never returns a partly opened Store.
func Open(ctx context.Context, dsn, namespace string, opts ...Option) (*Store, error) {
	o := defaultOptions()
	if err := kit.ApplyOptions(&o, opts); err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	schema, err := o.schemaOf(namespace)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("open postgres store: %w", err)
	}
	// Every Prism statement is short, but the planner's estimates are not
	// always: a recursive traversal's grow with each level, and a freshly
	// loaded table has none. Past jit_above_cost the server spends ~20 ms
	// compiling a query that runs in 1 ms (docs/graph.md), so JIT is off
	// unless the DSN asks for it.
	if _, set := cfg.ConnConfig.RuntimeParams["jit"]; !set {
		cfg.ConnConfig.RuntimeParams["jit"] = "off"
	}
	if o.maxConns > 0 {
		cfg.MaxConns = o.maxConns
		cfg.MinConns = min(cfg.MinConns, o.maxConns)
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("open postgres store %s: %w", schema, err)
	}
	if err := migrate(ctx, pool, schema); err != nil {
		pool.Close()
		return nil, fmt.Errorf("open postgres store %s: %w", schema, err)
	}
	return &Store{now: o.now, pool: pool, schema: schema, q: newQueries(schema), ts: newTSQueries(schema)}, nil
}

// maxIdentifierLen is PostgreSQL's limit on identifiers (NAMEDATALEN - 1);
// longer names are silently truncated by the server, so two long namespace
// names could otherwise share a schema.
const maxIdentifierLen = 63

const schemaPrefix = "prism_"

// SchemaName returns the name of the PostgreSQL schema that holds namespace
// (unquoted; quote it with pgx.Identifier before use in SQL): "prism_" plus
// the namespace name, which keeps '-' because the name is always quoted.
// A name that would pass PostgreSQL's 63-byte identifier limit is cut to its
// first 40 bytes followed by '~' and 16 hex digits of its SHA-256; '~' never
// occurs in a namespace name, so the two forms never collide. It returns an
// error wrapping subjects.ErrInvalidNamespace for an invalid name.
func SchemaName(namespace string) (string, error) {
	if err := subjects.ValidateNamespace(namespace); err != nil {
		return "", err
	}
	name := schemaPrefix + namespace
	if len(name) <= maxIdentifierLen {
		return name, nil
	}
	sum := sha256.Sum256([]byte(namespace))
	const keep = maxIdentifierLen - len(schemaPrefix) - 1 - 16
	return schemaPrefix + namespace[:keep] + "~" + hex.EncodeToString(sum[:8]), nil
}

// schemaOf is the schema of namespace under o: WithSchema's, or
// SchemaName(namespace).
func (o options) schemaOf(namespace string) (string, error) {
	if err := subjects.ValidateNamespace(namespace); err != nil {
		return "", err
	}
	if o.schema != "" {
		return o.schema, nil
	}
	return SchemaName(namespace)
}

// Schema returns the name of the store's PostgreSQL schema (see SchemaName).
func (s *Store) Schema() string { return s.schema }

// Close closes the connection pool. It waits for the operations in flight,
// is idempotent (later calls return nil), and afterwards every method returns
// ErrClosed. The schema and its data stay in the database.
func (s *Store) Close() error {
	return s.gate.Close(func() error {
		s.pool.Close()
		return nil
	})
}

// acquire lets one operation in, or returns ErrClosed after Close. The
// caller must call s.gate.Leave when acquire returns nil.
func (s *Store) acquire() error { return s.gate.Enter(ErrClosed) }

// Checkpoint returns the stream sequence of the last applied batch, 0 if no
// batch was ever applied. It returns ErrClosed after Close, otherwise the
// database error.
func (s *Store) Checkpoint(ctx context.Context) (uint64, error) {
	return kit.Do(&s.gate, ErrClosed, "read checkpoint", nil, func() (uint64, error) {
		var seq int64
		err := s.pool.QueryRow(ctx, s.q.checkpoint).Scan(&seq)
		return uint64(seq), err
	})
}

// queries are the statements of one schema. pgx prepares each on first use
// per connection and caches it by its text.
type queries struct {
	checkpoint     string
	lockCheckpoint string
	setCheckpoint  string

	wipeItems   string
	deleteItems string
	upsertItems string
	// raiseRevs raises the rev of each record's first row to its new
	// revision: after a change that wrote no row, or a sweep that removed
	// the row holding it. A record without rows, or whose first row holds
	// that rev or more, is left alone (no row is rewritten).
	raiseRevs string
	// putOnly upserts items and sets the checkpoint in one statement, for
	// batches of puts above the checkpoint.
	putOnly string

	// items[lower][upper]: lower 0 is key >= $2, 1 is key > $2; upper 0 is
	// unbounded, 1 is key < $6.
	items    [2][2]string
	itemKeys string
	// scan[lower]: 0 is id >= $1, 1 is id > $1.
	scan   [2]string
	export string

	sweep string
}

var lowerOps = [2]string{">=", ">"}

// live is the condition on items i that have not expired at ($3, $4) =
// (seconds, nanoseconds) of now.
const live = `(i.expire_sec IS NULL OR (i.expire_sec, i.expire_nanos) > ($3, $4))`

// upsertItemsSQL upserts the items of arrays $1..$6 (id, key, value,
// expire_sec, expire_nanos, rev) that pass where.
func upsertItemsSQL(where string) string {
	return `INSERT INTO {s}.items (id, key, value, expire_sec, expire_nanos, rev)
	SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[], $4::int8[], $5::int4[], $6::int8[]) ` + where + `
	ON CONFLICT (id, key) DO UPDATE SET value = excluded.value,
		expire_sec = excluded.expire_sec, expire_nanos = excluded.expire_nanos, rev = excluded.rev`
}

// itemPage returns the query of a page of record $1's live items that match
// cond, at most $5 of them, with the record's revision (the largest rev of
// its rows, expired ones too: expiry is not a write): no row if the record
// has no live item, else one row per item, or one row with found false if
// none matches. One statement reads revision and items from one snapshot.
func itemPage(cond string) string {
	return `SELECT r.revision, i.key IS NOT NULL, i.key, i.value, i.expire_sec, i.expire_nanos
		FROM (SELECT max(i.rev) AS revision FROM {s}.items i WHERE i.id = $1
			-- A record counts only while it has a live item.
			HAVING count(*) FILTER (WHERE ` + live + `) > 0) r
		LEFT JOIN LATERAL (
			SELECT i.key, i.value, i.expire_sec, i.expire_nanos FROM {s}.items i
			WHERE i.id = $1 AND ` + cond + ` AND ` + live + `
			ORDER BY i.key LIMIT $5) i ON true
		ORDER BY i.key`
}

const ifLocked = `WHERE EXISTS (SELECT 1 FROM cp)`

func newQueries(schema string) *queries {
	s := pgx.Identifier{schema}.Sanitize()
	q := &queries{
		checkpoint:     `SELECT seq FROM {s}.checkpoint WHERE one = 1`,
		lockCheckpoint: `SELECT seq FROM {s}.checkpoint WHERE one = 1 FOR UPDATE`,
		setCheckpoint:  `UPDATE {s}.checkpoint SET seq = $1 WHERE one = 1`,

		wipeItems: `DELETE FROM {s}.items WHERE id = ANY($1::bytea[])`,
		deleteItems: `DELETE FROM {s}.items i USING unnest($1::bytea[], $2::bytea[]) d(id, key)
			WHERE i.id = d.id AND i.key = d.key`,
		upsertItems: upsertItemsSQL(""),
		raiseRevs: `UPDATE {s}.items i SET rev = t.rev
			FROM unnest($1::bytea[], $2::int8[]) t(id, rev)
			WHERE i.id = t.id AND i.key = (SELECT f.key FROM {s}.items f WHERE f.id = t.id ORDER BY f.key LIMIT 1)
				AND i.rev < t.rev`,
		// putOnly is a whole batch of puts as one statement, so one round
		// trip and one implicit transaction. cp advances the checkpoint, and
		// so takes the namespace's write lock, only if it is below $8 (the
		// batch's first seq, so no change would be skipped); the upserts run
		// only if it did (the uncorrelated EXISTS is an InitPlan, evaluated
		// before their first row). The parts touch different tables, so one
		// snapshot for all of them gives the same result as running them in
		// order. No row back means the batch needs the general path.
		putOnly: `WITH cp AS (UPDATE {s}.checkpoint SET seq = $7 WHERE one = 1 AND seq < $8 RETURNING 1),
			i AS (` + upsertItemsSQL(ifLocked) + `)
			SELECT count(*) FROM cp`,

		itemKeys: itemPage(`i.key = ANY($2::bytea[])`),
		export:   exportSQL,

		sweep: `DELETE FROM {s}.items WHERE (id, key) IN (
				SELECT id, key FROM {s}.items
				WHERE expire_sec IS NOT NULL AND (expire_sec, expire_nanos) <= ($1, $2)
				LIMIT $3)
			RETURNING id, rev`,
	}
	for lo, op := range lowerOps {
		for hi, upper := range [2]string{"", " AND i.key < $6"} {
			q.items[lo][hi] = itemPage(`i.key ` + op + ` $2` + upper)
		}
		q.scan[lo] = `SELECT DISTINCT i.id FROM {s}.items i WHERE i.id ` + op + ` $1
			AND (i.expire_sec IS NULL OR (i.expire_sec, i.expire_nanos) > ($2, $3))
			ORDER BY i.id LIMIT $4`
	}
	for _, p := range []*string{
		&q.checkpoint, &q.lockCheckpoint, &q.setCheckpoint,
		&q.wipeItems, &q.deleteItems, &q.upsertItems, &q.raiseRevs, &q.putOnly,
		&q.itemKeys, &q.scan[0], &q.scan[1], &q.export, &q.sweep,
		&q.items[0][0], &q.items[0][1], &q.items[1][0], &q.items[1][1],
	} {
		*p = strings.ReplaceAll(*p, "{s}", s)
	}
	return q
}

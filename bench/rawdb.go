package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	_ "modernc.org/sqlite" // the driver backends/sqlite uses

	"github.com/prism-data/prism/backends/postgres"
)

const (
	rawUpsertSQL = `INSERT INTO kv (id, key, value) VALUES ($1, $2, $3)
		ON CONFLICT (id, key) DO UPDATE SET value = excluded.value`
	rawGetSQL = `SELECT key, value FROM kv WHERE id = $1 ORDER BY key`
)

var errRawNotFound = errors.New("raw get: no such row")

// rawSQLite is a SQLite file opened with the pragmas and connection pools
// of backends/sqlite: one writer connection, four readers, WAL,
// synchronous=NORMAL.
type rawSQLite struct {
	w, r   *sql.DB
	upsert *sql.Stmt
	get    *sql.Stmt
}

func openRawSQLite(ctx context.Context, t *benchTarget) (rawStore, error) {
	dir, err := t.scratchDir()
	if err != nil {
		return nil, err
	}
	path := filepath.Join(dir, "raw-"+strconv.FormatInt(time.Now().UnixNano(), 36)+".db")
	dsn := func(pragmas ...string) string {
		u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: url.Values{"_pragma": pragmas, "_txlock": {"immediate"}}.Encode()}
		return u.String()
	}
	s := &rawSQLite{}
	if s.w, err = sql.Open("sqlite", dsn("busy_timeout(5000)", "journal_mode(WAL)", "synchronous(NORMAL)", "cache_size(-32768)", "temp_store(MEMORY)")); err != nil {
		return nil, err
	}
	s.w.SetMaxOpenConns(1)
	if _, err := s.w.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS kv (id BLOB NOT NULL, key BLOB NOT NULL, value BLOB NOT NULL, PRIMARY KEY (id, key)) WITHOUT ROWID`); err != nil {
		s.close()
		return nil, fmt.Errorf("raw sqlite: %w", err)
	}
	if s.upsert, err = s.w.PrepareContext(ctx, rawUpsertSQL); err != nil {
		s.close()
		return nil, fmt.Errorf("raw sqlite: %w", err)
	}
	if s.r, err = sql.Open("sqlite", dsn("busy_timeout(5000)")); err != nil {
		s.close()
		return nil, err
	}
	s.r.SetMaxOpenConns(4)
	s.r.SetMaxIdleConns(4)
	if s.get, err = s.r.PrepareContext(ctx, rawGetSQL); err != nil {
		s.close()
		return nil, fmt.Errorf("raw sqlite: %w", err)
	}
	return s, nil
}

func (s *rawSQLite) name() string { return "sqlite" }

func (s *rawSQLite) upsertRow(ctx context.Context, id, value []byte) error {
	_, err := s.upsert.ExecContext(ctx, id, []byte("v"), value)
	return err
}

func (s *rawSQLite) getRecord(ctx context.Context, id []byte) error {
	rows, err := s.get.QueryContext(ctx, id)
	if err != nil {
		return err
	}
	defer rows.Close()
	return readRecord(rows)
}

func (s *rawSQLite) bulkUpsert(ctx context.Context, n, keys, batch int, value []byte) error {
	for from := 0; from < n; from += batch {
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		st := tx.StmtContext(ctx, s.upsert)
		for i := from; i < min(from+batch, n); i++ {
			if _, err := st.ExecContext(ctx, benchID(i%keys), []byte("v"), value); err != nil {
				_ = tx.Rollback()
				return err
			}
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

func (s *rawSQLite) close() {
	for _, db := range []*sql.DB{s.r, s.w} {
		if db != nil {
			_ = db.Close()
		}
	}
}

// rawPostgres is a table in a schema of its own, reached through a pgx
// pool with default settings, as backends/postgres opens one.
type rawPostgres struct {
	pool   *pgxpool.Pool
	schema string
	drop   func()
}

func openRawPostgres(ctx context.Context, dsn string, t *benchTarget) (rawStore, error) {
	schema, err := postgres.SchemaName("bench_raw_" + strconv.FormatInt(time.Now().UnixNano()%1e9, 36))
	if err != nil {
		return nil, err
	}
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("raw postgres: %w", err)
	}
	q := pgx.Identifier{schema}.Sanitize()
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		_, err := c.Exec(ctx, "SET search_path TO "+q)
		return err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("raw postgres: %w", err)
	}
	s := &rawPostgres{pool: pool, schema: schema}
	s.drop = func() { dropSchemas(context.WithoutCancel(ctx), dsn, []string{schema}, t.log) }
	if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+q+"; CREATE TABLE IF NOT EXISTS "+q+".kv (id bytea NOT NULL, key bytea NOT NULL, value bytea NOT NULL, PRIMARY KEY (id, key))"); err != nil {
		s.close()
		return nil, fmt.Errorf("raw postgres: %w", err)
	}
	return s, nil
}

func (s *rawPostgres) name() string { return "postgres" }

func (s *rawPostgres) upsertRow(ctx context.Context, id, value []byte) error {
	_, err := s.pool.Exec(ctx, rawUpsertSQL, id, []byte("v"), value)
	return err
}

func (s *rawPostgres) getRecord(ctx context.Context, id []byte) error {
	rows, err := s.pool.Query(ctx, rawGetSQL, id)
	if err != nil {
		return err
	}
	defer rows.Close()
	return readRecord(rows)
}

// rows is what readRecord needs of *sql.Rows and pgx.Rows.
type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// readRecord reads every (key, value) row of a record, as a get decodes
// them; errRawNotFound when there is none.
func readRecord(rows rows) error {
	n := 0
	for rows.Next() {
		var k, v []byte
		if err := rows.Scan(&k, &v); err != nil {
			return err
		}
		n++
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if n == 0 {
		return errRawNotFound
	}
	return nil
}

func (s *rawPostgres) bulkUpsert(ctx context.Context, n, keys, batch int, value []byte) error {
	for from := 0; from < n; from += batch {
		b := &pgx.Batch{}
		for i := from; i < min(from+batch, n); i++ {
			b.Queue(rawUpsertSQL, benchID(i%keys), []byte("v"), value)
		}
		if err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error { return tx.SendBatch(ctx, b).Close() }); err != nil {
			return err
		}
	}
	return nil
}

func (s *rawPostgres) close() {
	s.pool.Close()
	s.drop()
}

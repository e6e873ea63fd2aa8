// Package sqlite is the SQLite projection target of Prism: it keeps the
// KeyValue, TimeSeries, Entity and Graph state of one namespace in one SQLite
// database file, applied from
// the namespace's JetStream stream in batches, each committed in one
// transaction together with the stream sequence it reaches (the checkpoint).
//
// Writes go through one connection (SQLite has a single writer; one
// connection serializes batches, sweeps and migrations without SQLITE_BUSY
// between them); reads use a separate pool of query-only connections and see
// a consistent snapshot thanks to WAL mode.
//
// Durability: the database runs with synchronous=NORMAL, so a power loss may
// drop the last committed batches. That is safe because the stream is the
// source of truth and the checkpoint is committed with the data: the
// projector re-applies everything after the checkpoint it reads back.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/prism-data/prism/backends/internal/kit"
)

// Store is the SQLite database of one namespace. Its methods are safe for
// concurrent use. Create it with Open and release it with Close.
type Store struct {
	now func() time.Time

	// gate is entered by every operation and closed by Close, so Close
	// waits for the operations in flight and none starts after it.
	gate kit.Gate

	w  *sql.DB // the single writer connection
	r  *sql.DB // the query-only read pool
	ws *writeStmts
	rs *readStmts

	// indexes caches the entity indexes seen ready.
	indexes kit.IndexStates
}

// Open opens the SQLite database at path, creating the file if needed, and
// brings its schema to the current version (idempotent; a database written
// by a newer build is refused). It returns an error if an option is invalid
// or the file cannot be opened, configured or migrated; it never returns a
// partly opened Store.
func Open(ctx context.Context, path string, opts ...Option) (*Store, error) {
	o := defaultOptions()
	if err := kit.ApplyOptions(&o, opts); err != nil {
		return nil, fmt.Errorf("open sqlite store: %w", err)
	}
	if path == "" {
		return nil, errors.New("open sqlite store: empty path")
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, fmt.Errorf("open sqlite store %s: %w", path, err)
	}

	s := &Store{now: o.now}
	if err := s.open(ctx, abs, o); err != nil {
		s.closeAll()
		return nil, fmt.Errorf("open sqlite store %s: %w", abs, err)
	}
	return s, nil
}

func (s *Store) open(ctx context.Context, path string, o options) error {
	var err error
	s.w, err = sql.Open("sqlite", dsn(path, url.Values{
		"_pragma": {
			"busy_timeout(5000)",
			"journal_mode(WAL)",
			"synchronous(NORMAL)",
			"foreign_keys(OFF)",
			// 32 MiB of page cache instead of 2: batches touch pages all over
			// the B-trees when ids are random, and re-reading them costs more
			// than the memory. It is allocated only as pages are used.
			"cache_size(-32768)",
			// A multi-row upsert keeps a statement journal of every page it
			// changes; on disk that made batches of random ids 1.5x slower.
			"temp_store(MEMORY)",
		},
		"_txlock": {"immediate"},
	}))
	if err != nil {
		return err
	}
	// One connection, kept forever: SQLite has one writer anyway, and the
	// statements prepared on it stay valid.
	s.w.SetMaxOpenConns(1)
	s.w.SetMaxIdleConns(1)
	s.w.SetConnMaxLifetime(0)
	s.w.SetConnMaxIdleTime(0)
	if err := migrate(ctx, s.w); err != nil {
		return err
	}
	if s.ws, err = prepareWriteStmts(ctx, s.w); err != nil {
		return err
	}

	// The read pool is opened after the writer so the file exists, in WAL
	// mode, with the current schema.
	s.r, err = sql.Open("sqlite", dsn(path, url.Values{
		"_pragma":     {"busy_timeout(5000)", "foreign_keys(OFF)"},
		"_query_only": {"1"},
	}))
	if err != nil {
		return err
	}
	s.r.SetMaxOpenConns(o.readConns)
	s.r.SetMaxIdleConns(o.readConns)
	s.r.SetConnMaxLifetime(0)
	s.r.SetConnMaxIdleTime(0)
	if s.rs, err = prepareReadStmts(ctx, s.r); err != nil {
		return err
	}
	return nil
}

// dsn builds a modernc.org/sqlite URI for path. The path is escaped, so
// names with '?', '#' or '%' open the file they name.
func dsn(path string, params url.Values) string {
	u := url.URL{Scheme: "file", Path: filepath.ToSlash(path), RawQuery: params.Encode()}
	return u.String()
}

// Close closes the database. It waits for the operations in flight, is
// idempotent (later calls return nil), and afterwards every method returns
// ErrClosed. It returns the first error closing the connections.
func (s *Store) Close() error { return s.gate.Close(s.closeAll) }

func (s *Store) closeAll() error {
	var errs []error
	if s.rs != nil {
		errs = append(errs, s.rs.close())
	}
	if s.ws != nil {
		errs = append(errs, s.ws.close())
	}
	if s.r != nil {
		errs = append(errs, s.r.Close())
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("close sqlite store: %w", err)
	}
	return nil
}

// acquire lets one operation in, or returns ErrClosed after Close. The
// caller must call s.gate.Leave when acquire returns nil.
func (s *Store) acquire() error { return s.gate.Enter(ErrClosed) }

// Checkpoint returns the stream sequence of the last applied batch, 0 if no
// batch was ever applied. It returns ErrClosed after Close.
func (s *Store) Checkpoint(ctx context.Context) (uint64, error) {
	return kit.Do(&s.gate, ErrClosed, "read checkpoint", nil, func() (uint64, error) {
		var seq int64
		err := s.rs.checkpoint.QueryRowContext(ctx).Scan(&seq)
		return uint64(seq), err
	})
}

// stmtSet prepares statements and closes them together.
type stmtSet struct {
	all []*sql.Stmt
	err error
}

func (p *stmtSet) prepare(ctx context.Context, db *sql.DB, query string) *sql.Stmt {
	if p.err != nil {
		return nil
	}
	st, err := db.PrepareContext(ctx, query)
	if err != nil {
		p.err = fmt.Errorf("prepare %q: %w", query, err)
		return nil
	}
	p.all = append(p.all, st)
	return st
}

func (p *stmtSet) close() error {
	var errs []error
	for _, st := range p.all {
		errs = append(errs, st.Close())
	}
	return errors.Join(errs...)
}

package replay

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/jackc/pgx/v5"

	"github.com/prism-data/prism/backends/postgres"
	"github.com/prism-data/prism/backends/sqlite"
)

// Target is where a Job's projection target keeps its data.
type Target interface {
	// Open opens the target's store, creating it if needed; closeStore
	// releases it.
	Open(ctx context.Context) (st Store, closeStore func() error, err error)
	// String says where the data is, for messages (never a password).
	String() string
}

// Locker is a Target that a Job locks against a second job writing it,
// from its in-use check to its end.
type Locker interface {
	// Lock takes the lock or fails at once when another holds it.
	Lock(ctx context.Context) (unlock func(), err error)
}

// Dropper is a Target whose data a Job's Reset can drop.
type Dropper interface {
	// Drop deletes the target's data; a target that does not exist is
	// not an error.
	Drop(ctx context.Context) error
}

// SQLiteTarget is a target in the SQLite file Path. It locks with flock on
// Path.replay-lock, which the kernel releases when the process ends,
// however it ends.
type SQLiteTarget struct {
	Path string
}

var (
	_ Locker  = SQLiteTarget{}
	_ Dropper = SQLiteTarget{}
	_ Locker  = PostgresTarget{}
	_ Dropper = PostgresTarget{}
)

func (t SQLiteTarget) String() string { return "sqlite " + t.Path }

// Open opens (creating it and its directory if needed) the SQLite file.
func (t SQLiteTarget) Open(ctx context.Context) (Store, func() error, error) {
	if err := os.MkdirAll(filepath.Dir(t.Path), 0o755); err != nil {
		return nil, nil, err
	}
	st, err := sqlite.Open(ctx, t.Path)
	if err != nil {
		return nil, nil, err
	}
	return st, st.Close, nil
}

// Lock takes an exclusive flock on Path.replay-lock.
func (t SQLiteTarget) Lock(context.Context) (func(), error) {
	if err := os.MkdirAll(filepath.Dir(t.Path), 0o755); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(t.Path+".replay-lock", os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock %s: %w", t.Path, err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another prism replay is writing %s (%v)", t.Path, err)
	}
	return func() { f.Close() }, nil
}

// Drop deletes the SQLite file with its WAL files.
func (t SQLiteTarget) Drop(context.Context) error {
	errs := []error{os.Remove(t.Path), os.Remove(t.Path + "-wal"), os.Remove(t.Path + "-shm")}
	for i, err := range errs {
		if errors.Is(err, fs.ErrNotExist) {
			errs[i] = nil
		}
	}
	return errors.Join(errs...)
}

// PostgresTarget is a target in schema Schema of the PostgreSQL database
// at DSN, holding namespace Namespace. It locks with a session advisory
// lock on the schema's name, which the server releases when the
// connection ends, however it ends.
type PostgresTarget struct {
	DSN, Namespace, Schema string
}

func (t PostgresTarget) String() string { return "postgres schema " + t.Schema }

// Open opens (creating it if needed) the schema.
func (t PostgresTarget) Open(ctx context.Context) (Store, func() error, error) {
	st, err := postgres.Open(ctx, t.DSN, t.Namespace, postgres.WithSchema(t.Schema))
	if err != nil {
		return nil, nil, err
	}
	return st, st.Close, nil
}

// Lock takes pg_try_advisory_lock on the schema's name over a connection
// of its own, kept until unlock.
func (t PostgresTarget) Lock(ctx context.Context) (func(), error) {
	conn, err := pgx.Connect(ctx, t.DSN)
	if err != nil {
		return nil, fmt.Errorf("connect to postgres: %w", err)
	}
	var ok bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock(hashtext($1))", "prism-replay:"+t.Schema).Scan(&ok); err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("lock schema %s: %w", t.Schema, err)
	}
	if !ok {
		conn.Close(ctx)
		return nil, fmt.Errorf("another prism replay is writing postgres schema %s", t.Schema)
	}
	return func() { conn.Close(context.WithoutCancel(ctx)) }, nil
}

// Drop drops the schema.
func (t PostgresTarget) Drop(ctx context.Context) error {
	return postgres.DropSchema(ctx, t.DSN, t.Namespace, postgres.WithSchema(t.Schema))
}

// OpenTarget is a Target whose store the caller opened and keeps: a Job
// neither locks, drops nor closes it. A migration's backfill, which reads
// through the store it projects into, runs its Job on one.
func OpenTarget(st Store, where string) Target { return openTarget{st, where} }

type openTarget struct {
	st    Store
	where string
}

func (t openTarget) String() string { return t.where }

func (t openTarget) Open(context.Context) (Store, func() error, error) {
	return t.st, func() error { return nil }, nil
}

// Package pgtest gives tests a PostgreSQL database and throwaway
// namespaces on it. It is for tests only.
//
// The DSN comes from PRISM_TEST_POSTGRES_DSN, by default the machine's
// PostgreSQL (postgres://postgres@127.0.0.1:5432/test). When PostgreSQL does
// not answer, tests skip with how to enable them, unless
// PRISM_REQUIRE_POSTGRES=1 (CI), where they fail: a skipped suite would hide
// a broken machine.
package pgtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prism-data/prism/backends/postgres"
)

// DefaultDSN is the test database when PRISM_TEST_POSTGRES_DSN is not set.
const DefaultDSN = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"

var (
	reachOnce sync.Once
	reachErr  error
)

// DSN returns the DSN of the test database, after checking once per run
// that PostgreSQL answers there; see the package doc for what happens when
// it does not.
func DSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("PRISM_TEST_POSTGRES_DSN")
	if dsn == "" {
		dsn = DefaultDSN
	}
	reachOnce.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err == nil {
			err = conn.Ping(ctx)
			conn.Close(ctx)
		}
		reachErr = err
	})
	if reachErr != nil {
		if os.Getenv("PRISM_REQUIRE_POSTGRES") == "1" {
			t.Fatalf("PostgreSQL is required (PRISM_REQUIRE_POSTGRES=1) but unreachable at %s: %v", dsn, reachErr)
		}
		t.Skipf("PostgreSQL unreachable at %s (%v): start PostgreSQL there, or set PRISM_TEST_POSTGRES_DSN "+
			"to a database where the role may create schemas", dsn, reachErr)
	}
	return dsn
}

// Namespace returns a namespace name that no other test or run uses,
// starting with prefix, and drops its schema when the test ends.
func Namespace(t testing.TB, prefix string) string {
	t.Helper()
	dsn := DSN(t)
	var b [6]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	ns := prefix + hex.EncodeToString(b[:])
	schema, err := postgres.SchemaName(ns)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx := context.Background()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return ns
}

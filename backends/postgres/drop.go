package postgres

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/prism-data/prism/backends/internal/kit"
)

// DropSchema deletes the schema of namespace (WithSchema's, when given;
// other options are ignored), with every table and row in
// it, from the database at dsn. A schema that does not exist is not an
// error. Close the namespace's Store first: its connections would
// otherwise hold locks the drop waits for.
//
// Errors: one wrapping subjects.ErrInvalidNamespace for an invalid
// namespace name, checked before connecting; otherwise the error of
// connecting to dsn or of the drop (a *pgconn.PgError from the server, ctx's
// error when it ends first).
func DropSchema(ctx context.Context, dsn, namespace string, opts ...Option) error {
	o := defaultOptions()
	if err := kit.ApplyOptions(&o, opts); err != nil {
		return fmt.Errorf("drop schema of namespace %q: %w", namespace, err)
	}
	schema, err := o.schemaOf(namespace)
	if err != nil {
		return fmt.Errorf("drop schema of namespace %q: %w", namespace, err)
	}
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return fmt.Errorf("drop schema %s: %w", schema, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		return fmt.Errorf("drop schema %s: %w", schema, err)
	}
	return nil
}

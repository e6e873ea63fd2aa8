package postgres

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/prism-data/prism/subjects"
)

// ErrSchemaName is wrapped by TargetSchemaName's errors for a target that
// has no schema name of its own.
var ErrSchemaName = errors.New("no PostgreSQL schema name")

// targetSchemaPrefix starts the schema of a target other than a
// namespace's first.
const targetSchemaPrefix = "prism__"

// TargetSchemaName returns the schema of projection target target of
// namespace, the one rule prism serve (migration targets) and prism
// replay use:
//
//   - SchemaName(namespace), prism_<ns>, for target "" and "postgres": the
//     namespace's first PostgreSQL target;
//   - prism__<ns>__<target> for any other target: no '.' in it, so it
//     never reads as schema.table. The "__" after prism keeps it apart
//     from every namespace's own prism_<ns> (a namespace name starts with
//     a letter); the "__" before the target splits the two names, which
//     is why the target takes no "__" and starts with a letter or digit.
//     A '-' is kept as it is (quoted, like prism_<ns>), never mapped to
//     '_', so "pg-2" and "pg_2" do not share a schema.
//
// A name over PostgreSQL's 63 bytes (which the server would cut silently)
// is cut as SchemaName cuts: its first bytes, '~' and 16 hex digits of
// the SHA-256 of <ns>__<target>. It returns an error wrapping
// subjects.ErrInvalidNamespace for an invalid namespace name, and one
// wrapping ErrSchemaName, saying what to use instead, for a target name
// outside that rule.
func TargetSchemaName(namespace, target string) (string, error) {
	if target == "" || target == "postgres" {
		return SchemaName(namespace)
	}
	if err := subjects.ValidateNamespace(namespace); err != nil {
		return "", err
	}
	refuse := func(why string) (string, error) {
		return "", fmt.Errorf("%w for target %s of namespace %s: %s", ErrSchemaName, target, namespace, why)
	}
	if !targetName(target) {
		return refuse("a target name for a postgres schema takes lower-case letters, digits, '-' and single '_', starting with a letter or digit")
	}
	pair := namespace + "__" + target
	if len(targetSchemaPrefix+pair) <= maxIdentifierLen {
		return targetSchemaPrefix + pair, nil
	}
	sum := sha256.Sum256([]byte(pair))
	const keep = maxIdentifierLen - len(targetSchemaPrefix) - 1 - 16
	return targetSchemaPrefix + pair[:keep] + "~" + hex.EncodeToString(sum[:8]), nil
}

// targetName reports whether s is lower-case letters, digits, '-' and '_'
// with no "__", starting with a letter or digit.
func targetName(s string) bool {
	if s == "" || s[0] == '_' || s[0] == '-' || strings.Contains(s, "__") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// legacyTargetSchemaName is the schema earlier releases gave target target
// of namespace: prism_<ns>.<target>, a name with a dot, cut to 40 bytes
// plus '~' and 16 hex digits of its SHA-256 when over 63 bytes.
func legacyTargetSchemaName(namespace, target string) string {
	name := schemaPrefix + namespace + "." + target
	if len(name) <= maxIdentifierLen {
		return name
	}
	sum := sha256.Sum256([]byte(namespace + "." + target))
	const keep = maxIdentifierLen - len(schemaPrefix) - 1 - 16
	return schemaPrefix + (namespace + "." + target)[:keep] + "~" + hex.EncodeToString(sum[:8])
}

// AdoptTargetSchema returns the schema of target target of namespace in
// the database at dsn, TargetSchemaName's, after moving the data of a
// schema an earlier release made for it (prism_<ns>.<target>, with a
// dot): when the new schema does not exist and the old one does, the old
// one is renamed to it (ALTER SCHEMA ... RENAME TO, which keeps tables,
// rows and grants), once; renamed then names the old schema. A target
// TargetSchemaName refuses keeps its old schema if it has one (schema is
// then that name, renamed ""); otherwise its error is returned. Targets ""
// and "postgres" never had another name: nothing is looked up for them.
//
// Errors: those of TargetSchemaName, and of connecting to dsn or of the
// lookup and rename.
func AdoptTargetSchema(ctx context.Context, dsn, namespace, target string) (schema, renamed string, err error) {
	name, nameErr := TargetSchemaName(namespace, target)
	if target == "" || target == "postgres" || errors.Is(nameErr, subjects.ErrInvalidNamespace) {
		return name, "", nameErr
	}
	legacy := legacyTargetSchemaName(namespace, target)
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return "", "", fmt.Errorf("look up schema %s: %w", legacy, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	exists := func(schema string) (bool, error) {
		var ok bool
		err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", schema).Scan(&ok)
		if err != nil {
			return false, fmt.Errorf("look up schema %s: %w", schema, err)
		}
		return ok, nil
	}
	old, err := exists(legacy)
	switch {
	case err != nil:
		return "", "", err
	case nameErr != nil && old:
		return legacy, "", nil
	case nameErr != nil:
		return "", "", nameErr
	case !old:
		return name, "", nil
	}
	if ok, err := exists(name); err != nil || ok {
		return name, "", err
	}
	if _, err := conn.Exec(ctx, "ALTER SCHEMA "+pgx.Identifier{legacy}.Sanitize()+" RENAME TO "+pgx.Identifier{name}.Sanitize()); err != nil {
		// Another process may have renamed it at the same moment.
		if ok, lerr := exists(name); lerr == nil && ok {
			return name, "", nil
		}
		return "", "", fmt.Errorf("rename schema %s to %s: %w", legacy, name, err)
	}
	return name, legacy, nil
}

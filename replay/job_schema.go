package replay

import (
	"errors"
	"fmt"
	"strings"

	"github.com/prism-data/prism/backends/postgres"
)

// ErrSchemaName is wrapped by PostgresTargetSchema's errors for a
// namespace and target that have no plain PostgreSQL schema name.
var ErrSchemaName = errors.New("no PostgreSQL schema name")

// maxSchemaLen is PostgreSQL's limit on identifiers (NAMEDATALEN − 1): a
// longer name would be cut silently by the server.
const maxSchemaLen = 63

// targetSchemaPrefix starts the schema of a target other than a
// namespace's first.
const targetSchemaPrefix = "prism__"

// PostgresTargetSchema returns the PostgreSQL schema of projection target
// target of namespace:
//
//   - postgres.SchemaName(namespace), prism_<ns>, for target "" and
//     "postgres": the namespace's first PostgreSQL target, the schema
//     prism serve uses;
//   - prism__<ns>__<target> for any other target: a plain identifier (no
//     '.', no quoting needed in psql or search_path). The "__" after
//     prism keeps it apart from every namespace's own prism_<ns> (a
//     namespace name starts with a letter); the "__" before the target
//     splits the two names.
//
// So that no two (namespace, target) pairs share a schema, the second form
// takes a namespace without '-' and a target of lower-case letters, digits
// and single '_' inside, and must fit PostgreSQL's 63 bytes. Anything
// else is refused with an error wrapping ErrSchemaName that says what to
// use instead: a '-' is not mapped to '_' because "pg-2" and "pg_2" (or
// namespaces "a-b" and "a_b") would then share one schema.
func PostgresTargetSchema(namespace, target string) (string, error) {
	if target == "" || target == "postgres" {
		return postgres.SchemaName(namespace)
	}
	if _, err := postgres.SchemaName(namespace); err != nil {
		return "", err
	}
	refuse := func(why string) (string, error) {
		return "", fmt.Errorf("%w for target %s of namespace %s: %s", ErrSchemaName, target, namespace, why)
	}
	if strings.Contains(namespace, "-") {
		return refuse("the namespace name has a '-', which a plain schema name cannot carry; replay into target postgres (schema " +
			"\"prism_" + namespace + "\") or into a sqlite target")
	}
	if !plainName(target) {
		return refuse(fmt.Sprintf("a target name for a postgres schema takes lower-case letters, digits and single '_' inside (e.g. --target %s)", suggestTarget(target)))
	}
	name := targetSchemaPrefix + namespace + "__" + target
	if len(name) > maxSchemaLen {
		return refuse(fmt.Sprintf("schema %s would be %d bytes, PostgreSQL keeps %d: use a target name of at most %d bytes",
			name, len(name), maxSchemaLen, maxSchemaLen-len(name)+len(target)))
	}
	return name, nil
}

// plainName reports whether s is lower-case letters, digits and single
// '_' that neither start nor end it.
func plainName(s string) bool {
	if s == "" || s[0] == '_' || s[len(s)-1] == '_' || strings.Contains(s, "__") {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_') {
			return false
		}
	}
	return true
}

// suggestTarget is the nearest plain name to s: other characters become
// '_', runs of '_' one, none at the ends.
func suggestTarget(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'A' && c <= 'Z' {
			c += 'a' - 'A'
		}
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9') {
			c = '_'
		}
		if c == '_' && (b.Len() == 0 || strings.HasSuffix(b.String(), "_")) {
			continue
		}
		b.WriteByte(c)
	}
	out := strings.TrimSuffix(b.String(), "_")
	if out == "" {
		return "rebuild"
	}
	return out
}

package replay

import (
	"fmt"
	"strings"

	"github.com/prism-data/prism/backends/postgres"
)

// ErrSchemaName is wrapped by PostgresTargetSchema's errors for a
// namespace and target that have no plain PostgreSQL schema name. It is
// postgres.ErrSchemaName.
var ErrSchemaName = postgres.ErrSchemaName

// PostgresTargetSchema returns the PostgreSQL schema of projection target
// target of namespace: postgres.TargetSchemaName's, the schema prism serve
// uses for the same target (prism_<ns> for target "" and "postgres",
// prism__<ns>__<target> for any other).
//
// A replay wants a plain identifier besides (usable in psql and
// search_path without quotes), so for a target other than the first it
// also refuses a namespace with '-', a target other than lower-case
// letters, digits and single '_' inside, and a name postgres would cut to
// PostgreSQL's 63 bytes, with an error wrapping ErrSchemaName that says
// what to use instead.
func PostgresTargetSchema(namespace, target string) (string, error) {
	if target == "" || target == "postgres" {
		return postgres.TargetSchemaName(namespace, target)
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
	name, err := postgres.TargetSchemaName(namespace, target)
	if err == nil && strings.Contains(name, "~") {
		// Cut to fit PostgreSQL's identifiers: not the name asked for.
		full := len(targetSchemaPrefix) + len(namespace) + len("__") + len(target)
		return refuse(fmt.Sprintf("schema %s%s__%s would be %d bytes, PostgreSQL keeps %d: use a target name of at most %d bytes",
			targetSchemaPrefix, namespace, target, full, maxSchemaLen, maxSchemaLen-full+len(target)))
	}
	return name, err
}

// maxSchemaLen is PostgreSQL's limit on identifiers (NAMEDATALEN − 1),
// past which postgres.TargetSchemaName cuts a name.
const maxSchemaLen = 63

// targetSchemaPrefix starts postgres.TargetSchemaName's schema of a target
// other than a namespace's first.
const targetSchemaPrefix = "prism__"

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

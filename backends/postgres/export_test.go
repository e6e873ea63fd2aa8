package postgres

// MigrationV1 is the first migration, the KeyValue tables, for tests that
// build a schema as the first release left it.
var MigrationV1 = migrations[0]

// SchemaVersion is the latest schema version.
var SchemaVersion = len(migrations)

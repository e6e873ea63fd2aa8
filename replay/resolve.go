package replay

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/backends/neptune"
	"github.com/prism-data/prism/backends/sqlite"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/subjects"
)

// TargetSpec says where the target of a replay lives, as prism replay's
// flags give it; empty fields are derived from the namespace.
type TargetSpec struct {
	// Name is the target's name (e.g. "rebuild"); "sqlite" and "postgres"
	// name a backend too.
	Name string
	// Backend is "sqlite" or "postgres"; empty: the name's, else the
	// namespace's.
	Backend string
	// SQLitePath is the SQLite file; empty: DataDir's file of the target.
	SQLitePath string
	// DataDir is the Prism data directory a SQLite target lives under;
	// empty: DefaultDataDir, only when that directory exists, so that a
	// replay run elsewhere leaves no surprise directory behind.
	DataDir, DefaultDataDir string
	// PostgresDSN is the PostgreSQL connection string; empty: the
	// namespace's postgres.dsn when it is on PostgreSQL, else
	// PRISM_POSTGRES_DSN from the environment (the caller passes it).
	PostgresDSN, EnvPostgresDSN string
	// EnvNeptuneEndpoint is the Neptune cluster of a neptune target,
	// PRISM_NEPTUNE_ENDPOINT from the environment (the caller passes it).
	EnvNeptuneEndpoint string
}

// ResolveTarget decides the backend of namespace n's replay target and
// where its data lives: the SQLite file of sqlite.TargetPath, or the
// PostgreSQL schema of PostgresTargetSchema. n carries its resolved
// backend. Errors say which flag or setting is missing.
func ResolveTarget(n namespaces.Namespace, spec TargetSpec) (backend string, t Target, err error) {
	backend = spec.Backend
	if backend == "" {
		switch {
		case spec.Name == "sqlite" || spec.Name == "postgres" || spec.Name == "neptune":
			backend = spec.Name
		case n.Backend == "sqlite" || n.Backend == "postgres" || n.Backend == "neptune":
			backend = n.Backend
		default:
			return "", nil, fmt.Errorf("replay: namespace %s is on %s; say --backend sqlite or --backend postgres for target %s", n.Name, n.Backend, spec.Name)
		}
	}
	if backend == "neptune" {
		if spec.EnvNeptuneEndpoint == "" {
			return "", nil, errors.New("replay: a neptune target needs the cluster's endpoint: set PRISM_NEPTUNE_ENDPOINT (host:port); the AWS region and credentials come from the SDK's default chain")
		}
		return backend, NeptuneTarget{Endpoint: spec.EnvNeptuneEndpoint, Graph: neptune.GraphName(n.Name, spec.Name)}, nil
	}
	if backend == "sqlite" {
		path := spec.SQLitePath
		if path == "" {
			dir, err := spec.dataDir()
			if err != nil {
				return "", nil, err
			}
			path = sqlite.TargetPath(dir, n.Name, spec.Name)
		}
		return backend, SQLiteTarget{Path: path}, nil
	}
	dsn := spec.PostgresDSN
	if dsn == "" && n.Backend == "postgres" {
		dsn = n.Postgres.DSN
	}
	if dsn == "" {
		dsn = spec.EnvPostgresDSN
	}
	if dsn == "" {
		return "", nil, errors.New("replay: a postgres target needs a connection string: --postgres-dsn or PRISM_POSTGRES_DSN")
	}
	schema, err := PostgresTargetSchema(n.Name, spec.Name)
	if err != nil {
		return "", nil, fmt.Errorf("replay: %w", err)
	}
	return backend, PostgresTarget{DSN: dsn, Namespace: n.Name, Schema: schema}, nil
}

// dataDir is the data directory a SQLite target lives under.
func (spec TargetSpec) dataDir() (string, error) {
	if spec.DataDir != "" {
		return spec.DataDir, nil
	}
	if fi, err := os.Stat(spec.DefaultDataDir); spec.DefaultDataDir != "" && err == nil && fi.IsDir() {
		return spec.DefaultDataDir, nil
	}
	wd, _ := os.Getwd()
	return "", fmt.Errorf("replay: a sqlite target needs prism serve's data directory, and %s has no %s: "+
		"pass --data-dir DIR (the --data-dir of prism serve) or --sqlite-path FILE", wd, spec.DefaultDataDir)
}

// Lookup returns the JobConfig of a replay of namespace name into the
// target spec describes: the namespace as the registry of js has it, its
// abstraction, and where the target lives (ResolveTarget). A namespace
// that is neither keyvalue nor timeseries is refused.
func Lookup(ctx context.Context, js jetstream.JetStream, name string, spec TargetSpec) (JobConfig, error) {
	e, err := namespaces.Lookup(ctx, js, name)
	if err != nil {
		return JobConfig{}, fmt.Errorf("replay: %w", err)
	}
	c := JobConfig{JetStream: js, Namespace: e.Namespace.Name, Abstraction: subjects.AbstractionKeyValue, Target: spec.Name}
	switch e.Namespace.Abstraction {
	case namespaces.AbstractionTimeSeries:
		c.Abstraction = subjects.AbstractionTimeSeries
	case namespaces.AbstractionEntity:
		c.Abstraction = subjects.AbstractionEntity
	case namespaces.AbstractionGraph:
		c.Abstraction = subjects.AbstractionGraph
	case namespaces.AbstractionKeyValue:
	default:
		return JobConfig{}, fmt.Errorf("replay: namespace %s is a %s namespace; prism replay rebuilds keyvalue, timeseries, entity and graph targets only", name, e.Namespace.Abstraction)
	}
	_, c.Storage, err = ResolveTarget(e.Namespace, spec)
	return c, err
}

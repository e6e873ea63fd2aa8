package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"

	"go.yaml.in/yaml/v3"

	"github.com/prism-data/prism/subjects"
)

// Consistency is what a namespace promises readers about their writes.
type Consistency string

// The consistency levels (DESIGN.md, "Reads and consistency").
const (
	// Eventual: a write replies once JetStream stored it; reads see the
	// projection as it is.
	Eventual Consistency = "eventual"
	// ReadYourWrites: like Eventual, and a read that passes the seq of a
	// write as min_seq waits until the projection applied it.
	ReadYourWrites Consistency = "read-your-writes"
	// Strong: a write replies only after the primary target applied it, so
	// every read sees every acknowledged write.
	Strong Consistency = "strong"
)

// AbstractionKeyValue is the only abstraction the gateway serves so far.
const AbstractionKeyValue = "keyvalue"

// Backends lists the backend names a Namespace may name. The gateway itself
// never talks to a backend; cmd/prism wires a reader per namespace.
var Backends = []string{"sqlite", "postgres"}

// PostgresConfig configures a namespace whose backend is "postgres".
type PostgresConfig struct {
	// DSN is the PostgreSQL connection string, e.g.
	// postgres://prism@db:5432/prism. Empty means the one cmd/prism is
	// given (--postgres-dsn or PRISM_POSTGRES_DSN). Keep passwords out of
	// files: use the environment or a .pgpass.
	DSN string `yaml:"dsn"`
}

// Namespace is the declaration of one namespace, as read from YAML.
type Namespace struct {
	// Name is the namespace name (see subjects.ValidateNamespace).
	Name string `yaml:"name"`
	// Abstraction is the data abstraction: "keyvalue" only for now.
	Abstraction string `yaml:"abstraction"`
	// Backend is the primary target's backend: one of Backends.
	Backend string `yaml:"backend"`
	// Consistency defaults to Eventual when empty.
	Consistency Consistency `yaml:"consistency"`
	// Postgres configures the "postgres" backend; it must be empty for the
	// others.
	Postgres PostgresConfig `yaml:"postgres"`
}

// Validate reports the first thing wrong with n, in a sentence that names the
// field. An empty Consistency is valid and means Eventual.
func (n Namespace) Validate() error {
	if err := subjects.ValidateNamespace(n.Name); err != nil {
		return fmt.Errorf("namespace name: %w", err)
	}
	if n.Abstraction != AbstractionKeyValue {
		return fmt.Errorf("namespace %s: abstraction %q is not supported; use %q", n.Name, n.Abstraction, AbstractionKeyValue)
	}
	if !slices.Contains(Backends, n.Backend) {
		return fmt.Errorf("namespace %s: backend %q is not supported; use one of %s", n.Name, n.Backend, strings.Join(Backends, ", "))
	}
	if n.Backend != "postgres" && n.Postgres != (PostgresConfig{}) {
		return fmt.Errorf("namespace %s: a postgres section needs backend: postgres, not %q", n.Name, n.Backend)
	}
	switch n.Consistency {
	case "", Eventual, ReadYourWrites, Strong:
	default:
		return fmt.Errorf("namespace %s: consistency %q is not one of %q, %q, %q", n.Name, n.Consistency, Eventual, ReadYourWrites, Strong)
	}
	return nil
}

// withDefaults returns n with an empty Consistency set to Eventual.
func (n Namespace) withDefaults() Namespace {
	if n.Consistency == "" {
		n.Consistency = Eventual
	}
	return n
}

// LoadNamespaces reads every *.yaml and *.yml file of dir, in name order,
// each holding exactly one namespace. Decoding is strict: an unknown field,
// a second document in a file, an invalid namespace or a name declared twice
// is an error that names the file. Consistency defaults to Eventual.
func LoadNamespaces(dir string) ([]Namespace, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, fmt.Errorf("load namespaces: %w", err)
	}
	var out []Namespace
	seen := make(map[string]string) // name -> file
	for _, e := range entries {
		ext := filepath.Ext(e.Name())
		if e.IsDir() || (ext != ".yaml" && ext != ".yml") {
			continue
		}
		path := filepath.Join(dir, e.Name())
		ns, err := loadNamespaceFile(path)
		if err != nil {
			return nil, err
		}
		if prev, dup := seen[ns.Name]; dup {
			return nil, fmt.Errorf("load namespaces: %s: namespace %s is already declared in %s", path, ns.Name, prev)
		}
		seen[ns.Name] = path
		out = append(out, ns)
	}
	return out, nil
}

func loadNamespaceFile(path string) (Namespace, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return Namespace{}, fmt.Errorf("load namespaces: %w", err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	var ns Namespace
	if err := dec.Decode(&ns); err != nil {
		if errors.Is(err, io.EOF) {
			return Namespace{}, fmt.Errorf("load namespaces: %s: empty file; declare one namespace", path)
		}
		return Namespace{}, fmt.Errorf("load namespaces: %s: %w", path, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return Namespace{}, fmt.Errorf("load namespaces: %s: more than one YAML document; declare one namespace per file", path)
	}
	if err := ns.Validate(); err != nil {
		return Namespace{}, fmt.Errorf("load namespaces: %s: %w", path, err)
	}
	return ns.withDefaults(), nil
}

// namespaceEntry is a registered namespace with what serves it.
type namespaceEntry struct {
	Namespace
	reader  KeyValueReader
	applied AppliedWaiter
}

// registry maps namespace names to their entries. It is safe for concurrent
// use.
type registry struct {
	mu sync.RWMutex
	m  map[string]*namespaceEntry
}

func (r *registry) get(name string) (*namespaceEntry, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.m[name]
	return e, ok
}

func (r *registry) add(e *namespaceEntry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, dup := r.m[e.Name]; dup {
		return fmt.Errorf("gateway: namespace %s is already registered", e.Name)
	}
	if r.m == nil {
		r.m = make(map[string]*namespaceEntry)
	}
	r.m[e.Name] = e
	return nil
}

// AddNamespace registers ns, served by reader r with projection progress w.
// It is safe to call while the gateway runs; requests for ns are served from
// the moment it returns. It returns an error if ns is invalid, r or w is nil,
// or a namespace of that name is already registered.
func (g *Gateway) AddNamespace(ns Namespace, r KeyValueReader, w AppliedWaiter) error {
	if err := ns.Validate(); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if r == nil || w == nil {
		return fmt.Errorf("gateway: namespace %s needs a reader and an applied waiter", ns.Name)
	}
	return g.namespaces.add(&namespaceEntry{Namespace: ns.withDefaults(), reader: r, applied: w})
}

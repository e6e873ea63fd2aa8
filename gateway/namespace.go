package gateway

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

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

// The data abstractions a Namespace may declare.
const (
	// AbstractionKeyValue: records of items (put, delete, mutate, get, scan).
	AbstractionKeyValue = "keyvalue"
	// AbstractionTimeSeries: series of events (append, range, search).
	AbstractionTimeSeries = "timeseries"
	// AbstractionLog: an append-only log of keyed records (append, fetch).
	AbstractionLog = "log"
)

// Abstractions lists the abstraction names a Namespace may name.
var Abstractions = []string{AbstractionKeyValue, AbstractionTimeSeries, AbstractionLog}

// Duration is a time.Duration that YAML spells as a Go duration string
// ("720h", "90m", "0"). Units of days are not accepted: write 720h, not 30d.
type Duration time.Duration

// UnmarshalYAML implements yaml.Unmarshaler.
func (d *Duration) UnmarshalYAML(n *yaml.Node) error {
	var s string
	if err := n.Decode(&s); err != nil {
		return fmt.Errorf("line %d: want a duration such as 720h: %w", n.Line, err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("line %d: %q is not a duration; write it like 720h or 90m", n.Line, s)
	}
	*d = Duration(v)
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (d Duration) MarshalYAML() (any, error) { return d.String(), nil }

// MarshalJSON implements json.Marshaler: a string such as "720h0m0s".
func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(d.String()) }

// UnmarshalJSON implements json.Unmarshaler: a Go duration string.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return fmt.Errorf("want a duration string such as \"720h\": %w", err)
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%q is not a duration; write it like 720h or 90m", s)
	}
	*d = Duration(v)
	return nil
}

// String returns the duration as time.Duration prints it.
func (d Duration) String() string { return time.Duration(d).String() }

// Backends lists the backend names a Namespace may name. The gateway itself
// never talks to a backend; cmd/prism wires a reader per namespace.
var Backends = []string{"sqlite", "postgres", "natskv", "kafka"}

// BackendAuto is the Backend value that lets Derive choose the backend from
// the namespace's needs and the cluster (ADR 007). Apply resolves it once
// and the registry keeps the result (ADR 008).
const BackendAuto = "auto"

// Names is a list of names (owners, fields), YAML and JSON a sequence of
// strings. It is kept comparable (unlike a slice) so that Namespace stays
// comparable with ==.
type Names struct{ joined string }

// namesSep separates names in Names.joined; YAML scalars of one line
// cannot contain it.
const namesSep = "\x00"

// NewNames returns the list of names.
func NewNames(names ...string) Names { return Names{strings.Join(names, namesSep)} }

// IsZero reports whether the list is empty.
func (o Names) IsZero() bool { return o.joined == "" }

// List returns the names, nil for none.
func (o Names) List() []string {
	if o.joined == "" {
		return nil
	}
	return strings.Split(o.joined, namesSep)
}

// set checks names and stores them.
func (o *Names) set(names []string) error {
	for _, name := range names {
		if strings.Contains(name, namesSep) {
			return fmt.Errorf("%q contains a NUL byte", name)
		}
	}
	*o = NewNames(names...)
	return nil
}

// UnmarshalYAML implements yaml.Unmarshaler.
func (o *Names) UnmarshalYAML(n *yaml.Node) error {
	var names []string
	if err := n.Decode(&names); err != nil {
		return fmt.Errorf("line %d: want a list of names: %w", n.Line, err)
	}
	if err := o.set(names); err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	return nil
}

// MarshalYAML implements yaml.Marshaler.
func (o Names) MarshalYAML() (any, error) { return o.List(), nil }

// MarshalJSON implements json.Marshaler: an array of strings.
func (o Names) MarshalJSON() ([]byte, error) {
	l := o.List()
	if l == nil {
		l = []string{}
	}
	return json.Marshal(l)
}

// UnmarshalJSON implements json.Unmarshaler.
func (o *Names) UnmarshalJSON(b []byte) error {
	var names []string
	if err := json.Unmarshal(b, &names); err != nil {
		return fmt.Errorf("want a list of names: %w", err)
	}
	return o.set(names)
}

// Durability is how much of the deployment's failure an acknowledged write
// must survive (Needs.Durability).
type Durability string

// The durability levels a namespace may need (ADR 007).
const (
	// BestEffort: an acknowledged write survives a process crash; a power
	// loss may lose the last writes.
	BestEffort Durability = "best-effort"
	// Durable: an acknowledged write survives a process crash and a power
	// loss.
	Durable Durability = "durable"
	// Replicated: an acknowledged write survives the loss of a node.
	Replicated Durability = "replicated"
)

// Durabilities lists the durability levels, weakest first.
var Durabilities = []Durability{BestEffort, Durable, Replicated}

// Ordering is the order in which a namespace's events must be applied.
type Ordering string

// The orderings a namespace may need.
const (
	// OrderingPerKey: the events of one record (or series) are applied in
	// the order they were acknowledged.
	OrderingPerKey Ordering = "per-key"
	// OrderingNone: events may be applied in any order.
	OrderingNone Ordering = "none"
)

// Orderings lists the orderings a namespace may need.
var Orderings = []Ordering{OrderingPerKey, OrderingNone}

// Needs is what an application declares it needs from a namespace; Derive
// turns it into settings. Every field is optional: zero means "not stated".
type Needs struct {
	// WriteRPS is the peak rate of writes (events) per second.
	WriteRPS int `yaml:"write_rps,omitempty" json:"write_rps,omitempty"`
	// ReadRPS is the peak rate of reads per second.
	ReadRPS int `yaml:"read_rps,omitempty" json:"read_rps,omitempty"`
	// P99Latency is the write latency the application expects at the 99th
	// percentile.
	P99Latency Duration `yaml:"p99_latency,omitempty" json:"p99_latency,omitzero"`
	// MaxItemBytes is the size of the largest item (or event) written.
	MaxItemBytes int `yaml:"max_item_bytes,omitempty" json:"max_item_bytes,omitempty"`
	// Retention, for a timeseries namespace, is how long events are kept;
	// it is the namespace's Retention when that is 0, and must equal it
	// otherwise.
	Retention Duration `yaml:"retention,omitempty" json:"retention,omitzero"`
	// Durability is one of Durabilities; empty means BestEffort.
	Durability Durability `yaml:"durability,omitempty" json:"durability,omitempty"`
	// Ordering is one of Orderings; empty means OrderingPerKey.
	Ordering Ordering `yaml:"ordering,omitempty" json:"ordering,omitempty"`
}

// PostgresConfig configures a namespace whose backend is "postgres".
type PostgresConfig struct {
	// DSN is the PostgreSQL connection string, e.g.
	// postgres://prism@db:5432/prism. Empty means the one cmd/prism is
	// given (--postgres-dsn or PRISM_POSTGRES_DSN). It must not hold a
	// password: a namespace is stored in the registry and shown by the admin
	// API; give the password in PGPASSWORD or a .pgpass file.
	DSN string `yaml:"dsn,omitempty" json:"dsn,omitempty"`
}

// Namespace is the declaration of one namespace, as read from YAML (or
// JSON, on the admin API). It is comparable with ==.
type Namespace struct {
	// Name is the namespace name (see subjects.ValidateNamespace).
	Name string `yaml:"name" json:"name"`
	// Abstraction is the data abstraction: one of Abstractions.
	Abstraction string `yaml:"abstraction" json:"abstraction"`
	// Team is the team that owns the namespace; metadata only.
	Team string `yaml:"team,omitempty" json:"team,omitempty"`
	// Owners are the people or groups to contact about the namespace;
	// metadata only.
	Owners Names `yaml:"owners,omitempty" json:"owners,omitzero"`
	// Backend is the primary target's backend: one of Backends, or
	// BackendAuto to let Derive choose.
	Backend string `yaml:"backend" json:"backend"`
	// Consistency defaults to Eventual when empty.
	Consistency Consistency `yaml:"consistency,omitempty" json:"consistency,omitempty"`
	// Postgres configures the "postgres" backend; it must be empty for the
	// others.
	Postgres PostgresConfig `yaml:"postgres,omitempty" json:"postgres,omitzero"`
	// Kafka configures the "kafka" backend; it must be empty for the
	// others.
	Kafka KafkaConfig `yaml:"kafka,omitempty" json:"kafka,omitzero"`
	// Retention, for a timeseries namespace, is how long events are kept,
	// by event age on the stream (its MaxAge) and in the backend; 0 keeps
	// them forever. It must be 0 for the other abstractions.
	Retention Duration `yaml:"retention,omitempty" json:"retention,omitzero"`
	// PublishChanges makes the namespace stream republish every stored
	// event, headers and data, to core NATS at subjects.Changes(ns): a
	// pub/sub fan-out for lightweight listeners. At most once per listener
	// (core NATS); listeners that must not miss a change use a
	// subscription on the stream instead (client.Subscribe).
	PublishChanges bool `yaml:"publish_changes,omitempty" json:"publish_changes,omitempty"`
	// Fields names the fields the namespace's values carry: item keys of a
	// keyvalue namespace, tag names of a timeseries one. Optional; PII
	// fields must be among them.
	Fields Names `yaml:"fields,omitempty" json:"fields,omitzero"`
	// PII names the fields that hold personal data. They are recorded in
	// the registry; masking and encryption at rest come with the security
	// work (DESIGN.md, "Security") and are not enforced yet.
	PII Names `yaml:"pii,omitempty" json:"pii,omitzero"`
	// Needs is what the application needs; see Derive. Optional.
	Needs Needs `yaml:"needs,omitempty" json:"needs,omitzero"`
}

// Validate reports the first thing wrong with n, in a sentence that names the
// field. An empty Consistency is valid and means Eventual.
func (n Namespace) Validate() error {
	if err := subjects.ValidateNamespace(n.Name); err != nil {
		return fmt.Errorf("namespace name: %w", err)
	}
	if !slices.Contains(Abstractions, n.Abstraction) {
		return fmt.Errorf("namespace %s: abstraction %q is not supported; use one of %s", n.Name, n.Abstraction, strings.Join(Abstractions, ", "))
	}
	if !slices.Contains(Backends, n.Backend) && n.Backend != BackendAuto {
		return fmt.Errorf("namespace %s: backend %q is not supported; use one of %s, %s", n.Name, n.Backend, strings.Join(Backends, ", "), BackendAuto)
	}
	if n.Backend != "postgres" && n.Backend != BackendAuto && n.Postgres != (PostgresConfig{}) {
		return fmt.Errorf("namespace %s: a postgres section needs backend: postgres, not %q", n.Name, n.Backend)
	}
	if err := n.validateLog(); err != nil {
		return err
	}
	if n.Retention < 0 {
		return fmt.Errorf("namespace %s: retention %v is negative; use 0 to keep events forever", n.Name, n.Retention)
	}
	if n.Retention != 0 && n.Abstraction != AbstractionTimeSeries {
		return fmt.Errorf("namespace %s: retention applies to abstraction %s only, not %s; remove it", n.Name, AbstractionTimeSeries, n.Abstraction)
	}
	switch n.Consistency {
	case "", Eventual, ReadYourWrites, Strong:
	default:
		return fmt.Errorf("namespace %s: consistency %q is not one of %q, %q, %q", n.Name, n.Consistency, Eventual, ReadYourWrites, Strong)
	}
	for i, o := range n.Owners.List() {
		if strings.TrimSpace(o) == "" {
			return fmt.Errorf("namespace %s: owners[%d] is empty; name a person or group", n.Name, i)
		}
	}
	if dsnHasPassword(n.Postgres.DSN) {
		return fmt.Errorf("namespace %s: postgres.dsn holds a password; namespaces are stored in the registry and shown by the admin API, so give the password in PGPASSWORD or a .pgpass file", n.Name)
	}
	if err := n.validateFields(); err != nil {
		return fmt.Errorf("namespace %s: %w", n.Name, err)
	}
	if err := n.validateNeeds(); err != nil {
		return fmt.Errorf("namespace %s: %w", n.Name, err)
	}
	return nil
}

// validateNeeds reports the first thing wrong with n.Needs, naming the
// field path (needs.…) and the allowed values.
func (n Namespace) validateNeeds() error {
	nd := n.Needs
	for _, f := range []struct {
		path string
		v    int
	}{{"write_rps", nd.WriteRPS}, {"read_rps", nd.ReadRPS}, {"max_item_bytes", nd.MaxItemBytes}} {
		if f.v < 0 {
			return fmt.Errorf("needs.%s: %d is negative; use 0 (or leave it out) when unknown", f.path, f.v)
		}
	}
	if nd.P99Latency < 0 {
		return fmt.Errorf("needs.p99_latency: %v is negative", nd.P99Latency)
	}
	if nd.Retention < 0 {
		return fmt.Errorf("needs.retention: %v is negative; use 0 to keep events forever", nd.Retention)
	}
	if nd.Retention != 0 {
		if n.Abstraction != AbstractionTimeSeries {
			return fmt.Errorf("needs.retention: applies to abstraction %s only, not %s; remove it", AbstractionTimeSeries, n.Abstraction)
		}
		if n.Retention != 0 && n.Retention != nd.Retention {
			return fmt.Errorf("needs.retention: %v differs from retention %v; state it once", nd.Retention, n.Retention)
		}
		if time.Duration(nd.Retention) < DuplicateWindow {
			return fmt.Errorf("needs.retention: %v is shorter than the duplicate window %v; keep events at least that long", nd.Retention, DuplicateWindow)
		}
	}
	if nd.Durability != "" && !slices.Contains(Durabilities, nd.Durability) {
		return fmt.Errorf("needs.durability: %q is not one of %s", nd.Durability, joinNames(Durabilities))
	}
	if nd.Ordering != "" && !slices.Contains(Orderings, nd.Ordering) {
		return fmt.Errorf("needs.ordering: %q is not one of %s", nd.Ordering, joinNames(Orderings))
	}
	return nil
}

// validateFields checks that fields are non-empty and distinct and that
// every PII field is one of them.
func (n Namespace) validateFields() error {
	fields := n.Fields.List()
	for i, f := range fields {
		if strings.TrimSpace(f) == "" {
			return fmt.Errorf("fields[%d] is empty; name the field", i)
		}
		if slices.Index(fields, f) != i {
			return fmt.Errorf("fields[%d]: %q is listed twice", i, f)
		}
	}
	for i, f := range n.PII.List() {
		if !slices.Contains(fields, f) {
			if len(fields) == 0 {
				return fmt.Errorf("pii[%d]: %q is not a declared field; declare the namespace's fields in fields", i, f)
			}
			return fmt.Errorf("pii[%d]: %q is not a declared field; fields are %s", i, f, strings.Join(fields, ", "))
		}
	}
	return nil
}

// dsnHasPassword reports whether a PostgreSQL connection string, URL
// (postgres://user:pw@host) or keyword/value (password=pw) form, holds a
// password.
func dsnHasPassword(dsn string) bool {
	if dsn == "" {
		return false
	}
	if u, err := url.Parse(dsn); err == nil && (u.Scheme == "postgres" || u.Scheme == "postgresql") {
		if _, ok := u.User.Password(); ok {
			return true
		}
		return u.Query().Has("password")
	}
	for _, kv := range strings.Fields(dsn) {
		if k, _, ok := strings.Cut(kv, "="); ok && strings.TrimSpace(k) == "password" {
			return true
		}
	}
	return false
}

func joinNames[T ~string](names []T) string {
	s := make([]string, len(names))
	for i, n := range names {
		s[i] = string(n)
	}
	return strings.Join(s, ", ")
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

// LoadNamespaceFile reads the one namespace of the YAML file path, strictly
// and validated like LoadNamespaces.
func LoadNamespaceFile(path string) (Namespace, error) { return loadNamespaceFile(path) }

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

// namespaceEntry is a registered namespace with what serves it: reader for
// a keyvalue namespace, tsReader for a timeseries one, logReader for a log
// one.
type namespaceEntry struct {
	Namespace
	reader    KeyValueReader
	tsReader  TimeSeriesReader
	logReader LogReader
	applied   AppliedWaiter
	cache     *cacheSlot
	// target names the target reads come from; "" until SetRouting.
	target string
	// shadow is the target sampled gets are compared against; nil none.
	shadow *shadowTarget
	// fence, when set, is a second projection strong writes wait for.
	fence AppliedWaiter
}

// namespaceTable maps namespace names to their entries. It is safe for
// concurrent use. Entries are never changed in place: an update swaps the
// entry, so a request keeps the settings it started with.
type namespaceTable struct {
	mu sync.RWMutex
	m  map[string]*namespaceEntry
	// unserved are registered namespaces this process cannot serve now.
	unserved map[string]bool
}

func (r *namespaceTable) get(name string) (*namespaceEntry, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	e, ok := r.m[name]
	return e, ok
}

func (r *namespaceTable) add(e *namespaceEntry) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.unserved, e.Name)
	if _, dup := r.m[e.Name]; dup {
		return fmt.Errorf("gateway: namespace %s is already registered", e.Name)
	}
	if r.m == nil {
		r.m = make(map[string]*namespaceEntry)
	}
	r.m[e.Name] = e
	return nil
}

// update swaps the entry of ns.Name for one with ns, keeping what serves it.
func (r *namespaceTable) update(ns Namespace) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	old, ok := r.m[ns.Name]
	if !ok {
		return fmt.Errorf("gateway: namespace %s is not registered", ns.Name)
	}
	if old.Abstraction != ns.Abstraction {
		return fmt.Errorf("gateway: namespace %s is a %s namespace; it cannot become %s", ns.Name, old.Abstraction, ns.Abstraction)
	}
	e := *old
	e.Namespace = ns.withDefaults()
	r.m[ns.Name] = &e
	return nil
}

func (r *namespaceTable) remove(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.unserved, name)
	_, ok := r.m[name]
	delete(r.m, name)
	return ok
}

// UpdateNamespace changes the declaration of the registered namespace
// ns.Name to ns (consistency, retention, metadata), keeping the reader and
// applied waiter it was added with. Requests that started before it
// returns finish with the old declaration; later ones see ns. It returns an
// error if ns is invalid, not registered, or of another abstraction.
func (g *Gateway) UpdateNamespace(ns Namespace) error {
	if err := ns.Validate(); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	return g.namespaces.update(ns)
}

// SetReadCache gives the keyvalue namespace name a read cache of the first
// page of up to entries records (0 removes it), the plan's read_cache
// setting. The cache is kept exact by RecordsApplied, which the
// namespace's projector must call for every batch it commits (see
// projectors.WithAppliedHook); without that, do not set one. A cache of a
// new size starts empty. It returns an error if name is not a registered
// keyvalue namespace.
func (g *Gateway) SetReadCache(name string, entries int) error {
	e, ok := g.namespaces.get(name)
	if !ok || e.cache == nil {
		return fmt.Errorf("gateway: %s is not a registered keyvalue namespace", name)
	}
	e.cache.set(entries, g.opts.clock)
	return nil
}

// RecordsApplied tells the gateway that the primary projection of
// namespace ns committed changes to the records ids, through stream
// sequence through; call it before the projection reports through as
// applied. A read cache drops those records. Unknown namespaces are
// ignored.
func (g *Gateway) RecordsApplied(ns string, ids [][]byte, through uint64) {
	if e, ok := g.namespaces.get(ns); ok && e.cache != nil {
		e.cache.applied(ids, through)
	}
}

// MarkUnserved records that namespace name is registered but this process
// cannot serve it now (its backend failed to open, or another process
// projects it): its requests get UNAVAILABLE, which clients retry, rather
// than NAMESPACE_NOT_FOUND. AddNamespace and RemoveNamespace clear it. It
// does nothing for a namespace being served.
func (g *Gateway) MarkUnserved(name string) {
	t := &g.namespaces
	t.mu.Lock()
	defer t.mu.Unlock()
	if _, served := t.m[name]; served {
		return
	}
	if t.unserved == nil {
		t.unserved = make(map[string]bool)
	}
	t.unserved[name] = true
}

func (r *namespaceTable) isUnserved(name string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.unserved[name]
}

// RemoveNamespace stops serving namespace name: later requests get
// NAMESPACE_NOT_FOUND; requests in flight finish. It reports whether name
// was registered.
func (g *Gateway) RemoveNamespace(name string) bool { return g.namespaces.remove(name) }

// AddNamespace registers the keyvalue namespace ns, served by reader r with
// projection progress w. It is safe to call while the gateway runs; requests
// for ns are served from the moment it returns. It returns an error if ns is
// invalid or not a keyvalue namespace (use AddTimeSeriesNamespace for a
// timeseries one), r or w is nil, or a namespace of that name is already
// registered.
func (g *Gateway) AddNamespace(ns Namespace, r KeyValueReader, w AppliedWaiter) error {
	if err := checkAdd(ns, AbstractionKeyValue, r == nil || w == nil); err != nil {
		return err
	}
	return g.namespaces.add(&namespaceEntry{Namespace: ns.withDefaults(), reader: r, applied: w, cache: &cacheSlot{}})
}

// AddTimeSeriesNamespace registers the timeseries namespace ns, served by
// reader r with projection progress w, like AddNamespace. It returns an
// error if ns is invalid or not a timeseries namespace, r or w is nil, or a
// namespace of that name is already registered.
func (g *Gateway) AddTimeSeriesNamespace(ns Namespace, r TimeSeriesReader, w AppliedWaiter) error {
	if err := checkAdd(ns, AbstractionTimeSeries, r == nil || w == nil); err != nil {
		return err
	}
	return g.namespaces.add(&namespaceEntry{Namespace: ns.withDefaults(), tsReader: r, applied: w})
}

// adders names the method that registers a namespace of each abstraction.
var adders = map[string]string{
	AbstractionKeyValue:   "AddNamespace",
	AbstractionTimeSeries: "AddTimeSeriesNamespace",
	AbstractionLog:        "AddLogNamespace",
}

// checkAdd validates ns and checks that it has abstraction want and that
// what serves it is not missing (a nil reader or waiter).
func checkAdd(ns Namespace, want string, missing bool) error {
	if err := ns.Validate(); err != nil {
		return fmt.Errorf("gateway: %w", err)
	}
	if ns.Abstraction != want {
		return fmt.Errorf("gateway: namespace %s is a %s namespace, not %s; register it with %s", ns.Name, ns.Abstraction, want, adders[ns.Abstraction])
	}
	if missing {
		return fmt.Errorf("gateway: namespace %s needs a reader and an applied waiter", ns.Name)
	}
	return nil
}

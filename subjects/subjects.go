// Package subjects owns Prism's NATS address space: request subjects, event
// subjects, stream and consumer names, namespace name rules and the
// subject-safe encoding of record ids. No other package builds a subject
// string.
//
// Layout:
//
//	prism.<ns>.write.<op>            write requests (put, delete, mutate, append)
//	prism.<ns>.read.<op>             read requests (get, scan, range, search)
//	prism.<ns>.subscribe.<op>        subscription requests (open, next, close; subscribe.go)
//	prism.<ns>.events.kv.<id>        KeyValue events, one subject per record
//	prism.<ns>.events.ts.<series>    TimeSeries appends, one subject per series
//	prism.<ns>.events.log.<key>      Log appends, one subject per record key
//	prism.<ns>.events.gv.<vertex>    Graph vertex upserts and deletes, one subject per vertex
//	prism.<ns>.events.ge.<edge>      Graph edge upserts and deletes, one subject per (from NUL label NUL to)
//	prism.<ns>.events.tok.<token>    idempotency markers of atomic batches
//	prism.<ns>.changes.…             core NATS copies of the events (publish_changes)
//	prism.dlq.<ns>                   dead letters of a namespace
//	prism.$admin.<area>.<op>         admin requests (ns.apply, ns.list, …)
//	prism.$owner.<op>.<ns>           requests to the process that projects ns
//	prism.$fwd.<ns>.<kind>.<op>      requests forwarded to a gateway that serves ns
//	prism.$audit.<ns>.<op...>        audit records (audit.go)
//	prism.$deliver.<who>.<consumer>  what a subscription delivers (subscribe.go)
//
// Record ids, series ids and tokens are encoded with EncodeID.
//
// The stream of namespace ns is PRISM_<NS> (ns upper-cased) and captures
// prism.<ns>.events.>.
package subjects

import (
	"errors"
	"fmt"
	"strings"
)

// Root is the first token of every Prism subject.
const Root = "prism"

// AdminToken is the second token of admin subjects. '$' is not allowed in a
// namespace name, so no namespace's subjects can collide with them.
const AdminToken = "$admin"

// RegistryBucket is the NATS KV bucket of the namespace registry: one key
// per namespace name.
const RegistryBucket = "PRISM_NAMESPACES"

// PIIKeysBucket is the NATS KV bucket of PII key material: each
// namespace's data keys, wrapped by the key encryption key, and each
// record's secret (package pii, ADR 016).
const PIIKeysBucket = "PRISM_PII_KEYS"

// Admin is the subject of admin operation op, e.g. Admin("ns.apply") is
// prism.$admin.ns.apply.
func Admin(op string) string { return Root + "." + AdminToken + "." + op }

// OwnerToken is the second token of owner subjects, like AdminToken.
const OwnerToken = "$owner"

// Owner is the subject of operation op answered only by the process that
// runs namespace ns's projectors (ADR 010), e.g. Owner("orders",
// "verify") is prism.$owner.verify.orders: the work needs that process's
// backends. The namespace comes last so that no name (not even "read")
// makes it match the gateway's prism.*.read.* subscriptions.
func Owner(ns, op string) string { return Root + "." + OwnerToken + "." + op + "." + ns }

// ForwardToken is the second token of forwarded request subjects, like
// AdminToken.
const ForwardToken = "$fwd"

const forwardPrefix = Root + "." + ForwardToken + "."

// Forwarded is the subject a gateway that cannot serve the namespace of
// request subject (prism.<ns>.<kind>.<op>) forwards it on:
// prism.$fwd.<ns>.<kind>.<op>, subscribed to only by the gateways that
// serve ns (ADR 029).
func Forwarded(subject string) string { return forwardPrefix + strings.TrimPrefix(subject, Root+".") }

// AllForwarded matches the forwarded requests of namespace ns.
func AllForwarded(ns string) string { return forwardPrefix + ns + ".>" }

// Unforward returns the request subject a forwarded subject carries, and
// whether subject is a forwarded one.
func Unforward(subject string) (string, bool) {
	rest, ok := strings.CutPrefix(subject, forwardPrefix)
	if !ok {
		return "", false
	}
	return Root + "." + rest, true
}

// AllAdmin matches every admin subject.
func AllAdmin() string { return Root + "." + AdminToken + ".>" }

// DeadLetterStream is the stream that captures the dead letters of every
// namespace.
const DeadLetterStream = "PRISM_DLQ"

// Kinds of request subjects.
const (
	KindWrite = "write"
	KindRead  = "read"
)

// Abstraction tokens of event subjects.
const (
	AbstractionKeyValue   = "kv"
	AbstractionTimeSeries = "ts"
	AbstractionLog        = "log"
	markerToken           = "tok"
)

// MaxNamespaceLen is the longest namespace name.
const MaxNamespaceLen = 64

// ErrInvalidNamespace is returned for a namespace name that breaks the rules
// of ValidateNamespace.
var ErrInvalidNamespace = errors.New("invalid namespace name")

// ErrInvalidSubject is returned when a subject is not a Prism subject of the
// expected shape.
var ErrInvalidSubject = errors.New("not a prism subject")

// ValidateNamespace reports whether ns is a valid namespace name: 1 to 64
// characters of lower-case ASCII letters, digits, '_' and '-', starting with
// a letter. "dlq" is reserved.
func ValidateNamespace(ns string) error {
	if ns == "" || len(ns) > MaxNamespaceLen {
		return fmt.Errorf("%w %q: must be 1 to %d characters", ErrInvalidNamespace, ns, MaxNamespaceLen)
	}
	if ns == "dlq" {
		return fmt.Errorf("%w %q: reserved", ErrInvalidNamespace, ns)
	}
	if c := ns[0]; c < 'a' || c > 'z' {
		return fmt.Errorf("%w %q: must start with a lower-case letter", ErrInvalidNamespace, ns)
	}
	for i := 0; i < len(ns); i++ {
		c := ns[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return fmt.Errorf("%w %q: only a-z, 0-9, '_' and '-' are allowed", ErrInvalidNamespace, ns)
		}
	}
	return nil
}

// Write is the request subject of write operation op in namespace ns.
func Write(ns, op string) string { return Root + "." + ns + "." + KindWrite + "." + op }

// Read is the request subject of read operation op in namespace ns.
func Read(ns, op string) string { return Root + "." + ns + "." + KindRead + "." + op }

// AllWrites is the wildcard subject a gateway subscribes to for every
// namespace's writes.
func AllWrites() string { return Root + ".*." + KindWrite + ".*" }

// AllReads is the wildcard subject a gateway subscribes to for every
// namespace's reads.
func AllReads() string { return Root + ".*." + KindRead + ".*" }

// Request is a parsed request subject.
type Request struct {
	Namespace string
	Kind      string // KindWrite, KindRead or KindSubscribe
	Op        string
}

// ParseRequest parses prism.<ns>.<kind>.<op>, kind write, read or
// subscribe. It validates the namespace name and the kind; the op is
// returned as is for the caller to route.
func ParseRequest(subject string) (Request, error) {
	parts := strings.Split(subject, ".")
	if len(parts) != 4 || parts[0] != Root {
		return Request{}, fmt.Errorf("%w: %q is not prism.<namespace>.<write|read|subscribe>.<op>", ErrInvalidSubject, subject)
	}
	if err := ValidateNamespace(parts[1]); err != nil {
		return Request{}, err
	}
	if parts[2] != KindWrite && parts[2] != KindRead && parts[2] != KindSubscribe {
		return Request{}, fmt.Errorf("%w: %q: kind must be write, read or subscribe", ErrInvalidSubject, subject)
	}
	if parts[3] == "" {
		return Request{}, fmt.Errorf("%w: %q: empty operation", ErrInvalidSubject, subject)
	}
	return Request{Namespace: parts[1], Kind: parts[2], Op: parts[3]}, nil
}

// Stream is the JetStream stream name of namespace ns.
func Stream(ns string) string { return "PRISM_" + strings.ToUpper(ns) }

// StreamMetaPII is the metadata key set on the stream of a namespace
// with PII fields (value "sealed"): its events hold PII values sealed, so
// a subscriber that wants them shown (plaintext or masked) follows it
// through Prism, not straight from JetStream (ADR 017).
const StreamMetaPII = "prism-pii"

// StreamSubjects are the subjects captured by the stream of namespace ns.
func StreamSubjects(ns string) []string { return []string{Root + "." + ns + ".events.>"} }

// KeyValueEvent is the event subject of record id in namespace ns.
func KeyValueEvent(ns string, id []byte) string {
	return Root + "." + ns + ".events." + AbstractionKeyValue + "." + EncodeID(id)
}

// AllKeyValueEvents is the filter subject of every KeyValue event of ns.
func AllKeyValueEvents(ns string) string {
	return Root + "." + ns + ".events." + AbstractionKeyValue + ".*"
}

// TimeSeriesEvent is the event subject of series seriesID in namespace ns:
// every append to the series is stored there, in append order.
func TimeSeriesEvent(ns string, seriesID []byte) string {
	return Root + "." + ns + ".events." + AbstractionTimeSeries + "." + EncodeID(seriesID)
}

// AllTimeSeriesEvents is the filter subject of every TimeSeries event of ns.
func AllTimeSeriesEvents(ns string) string {
	return Root + "." + ns + ".events." + AbstractionTimeSeries + ".*"
}

// Marker is the subject of the idempotency marker that heads an atomic batch
// written with idempotency token token.
func Marker(ns, token string) string {
	return Root + "." + ns + ".events." + markerToken + "." + EncodeID([]byte(token))
}

// Event is a parsed event subject.
type Event struct {
	Namespace   string
	Abstraction string // AbstractionKeyValue, AbstractionTimeSeries, AbstractionLog, AbstractionEntity, AbstractionGraphVertex, AbstractionGraphEdge, or "tok" for a marker
	ID          []byte // record id, series id, log record key, or token of a marker
}

// IsMarker reports whether e carries no data change: an idempotency
// marker, or a unique-index claim of an entity namespace.
func (e Event) IsMarker() bool { return e.Abstraction == markerToken || e.Abstraction == claimToken }

// ParseEvent parses prism.<ns>.events.<abstraction>.<encoded id>.
func ParseEvent(subject string) (Event, error) {
	parts := strings.Split(subject, ".")
	if len(parts) != 5 || parts[0] != Root || parts[2] != "events" {
		return Event{}, fmt.Errorf("%w: %q is not prism.<namespace>.events.<abstraction>.<id>", ErrInvalidSubject, subject)
	}
	if err := ValidateNamespace(parts[1]); err != nil {
		return Event{}, err
	}
	switch parts[3] {
	case AbstractionKeyValue, AbstractionTimeSeries, AbstractionLog, AbstractionEntity, AbstractionGraphVertex, AbstractionGraphEdge, markerToken, claimToken:
	default:
		return Event{}, fmt.Errorf("%w: %q: unknown abstraction %q", ErrInvalidSubject, subject, parts[3])
	}
	id, err := DecodeID(parts[4])
	if err != nil {
		return Event{}, fmt.Errorf("%w: %q: %v", ErrInvalidSubject, subject, err)
	}
	return Event{Namespace: parts[1], Abstraction: parts[3], ID: id}, nil
}

// Changes is the core NATS subject pattern a namespace stream republishes
// its events to when the namespace publishes changes:
// prism.<ns>.changes.<abstraction>.<id>, mirroring the event subject.
// Listeners subscribe to prism.<ns>.changes.> (or .changes.kv.> for the
// KeyValue changes only; .changes.tok.* are idempotency markers).
func Changes(ns string) string { return Root + "." + ns + ".changes.>" }

// DeadLetter is the subject dead letters of namespace ns are published to.
func DeadLetter(ns string) string { return Root + ".dlq." + ns }

// DeadLetterSubjects are the subjects of the dead-letter stream.
func DeadLetterSubjects() []string { return []string{Root + ".dlq.*"} }

// Consumer is the durable consumer name of projection target target of
// namespace ns, e.g. "proj_sqlite".
func Consumer(target string) string { return "proj_" + target }

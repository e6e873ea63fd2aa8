package namespaces

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// RegistryHistory is how many revisions of each namespace the registry
// keeps: the last applies, with who and when, for audit.
const RegistryHistory = 16

// Registered is a namespace as stored in the registry.
type Registered struct {
	// Namespace is the declaration, defaults applied.
	Namespace Namespace `json:"namespace"`
	// Backend is the primary backend, BackendAuto resolved when it was
	// applied: a later change of the cluster never moves a namespace to
	// another backend by itself.
	Backend string `json:"backend"`
	// Revision is the registry revision of this declaration; an update or
	// delete names it to prove it saw the latest one.
	Revision uint64 `json:"revision"`
	// AppliedAt is when it was applied.
	AppliedAt time.Time `json:"applied_at"`
	// AppliedBy is who applied it, as the caller said (user@host for the
	// CLI); empty when unknown.
	AppliedBy string `json:"applied_by,omitempty"`
	// Primary is the target that serves reads once no migration says
	// otherwise; zero until a migration finalized (see PrimaryTarget).
	Primary Target `json:"primary,omitzero"`
	// Migration is the namespace's current or last migration; nil when it
	// never had one.
	Migration *Migration `json:"migration,omitempty"`
}

// registryRecord is the value stored under a namespace's key.
type registryRecord struct {
	Namespace Namespace  `json:"namespace"`
	Backend   string     `json:"backend"`
	AppliedAt time.Time  `json:"applied_at"`
	AppliedBy string     `json:"applied_by,omitempty"`
	Primary   Target     `json:"primary,omitzero"`
	Migration *Migration `json:"migration,omitempty"`
}

// Registry is the namespace registry: a NATS KV bucket (RegistryBucket)
// holding one key per namespace. Every change is revision-checked, so two
// concurrent applies cannot silently overwrite each other: one wins, the
// other gets status.ErrConflict. Gateways and projectors follow it with Watch. It
// is safe for concurrent use.
type Registry struct {
	kv jetstream.KeyValue
}

// OpenRegistry opens the registry bucket, creating it with replicas copies
// if it does not exist (created says whether it did not), and raising the
// replicas of an existing one that has fewer (never lowering them). It
// returns an error when JetStream refuses the bucket.
func OpenRegistry(ctx context.Context, js jetstream.JetStream, replicas int) (_ *Registry, created bool, _ error) {
	replicas = max(replicas, 1)
	kv, err := js.KeyValue(ctx, subjects.RegistryBucket)
	if err == nil {
		err = raiseReplicas(ctx, js, kv, replicas)
	}
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:      subjects.RegistryBucket,
			Description: "Prism namespace registry: one key per namespace",
			History:     RegistryHistory,
			Storage:     jetstream.FileStorage,
			Replicas:    replicas,
		})
		created = err == nil
		if errors.Is(err, jetstream.ErrBucketExists) {
			// Another process created it first.
			kv, err = js.KeyValue(ctx, subjects.RegistryBucket)
		}
	}
	if err != nil {
		return nil, false, fmt.Errorf("open registry %s: %w", subjects.RegistryBucket, err)
	}
	return &Registry{kv: kv}, created, nil
}

// raiseReplicas updates the bucket of kv to replicas copies if it has
// fewer: a registry created on one node must not stay a single copy once
// the deployment is a cluster.
func raiseReplicas(ctx context.Context, js jetstream.JetStream, kv jetstream.KeyValue, replicas int) error {
	st, err := kv.Status(ctx)
	if err != nil {
		return err
	}
	bs, ok := st.(*jetstream.KeyValueBucketStatus)
	if !ok || bs.StreamInfo().Config.Replicas >= replicas {
		return nil
	}
	cfg := bs.StreamInfo().Config
	cfg.Replicas = replicas
	if _, err := js.UpdateStream(ctx, cfg); err != nil {
		return err
	}
	return waitLeader(ctx, js, cfg.Name)
}

// Get returns namespace name. It returns status.ErrNamespaceNotFound (an *status.Error)
// when it is not registered.
func (r *Registry) Get(ctx context.Context, name string) (Registered, error) {
	if err := validName(name); err != nil {
		return Registered{}, err
	}
	e, err := r.kv.Get(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return Registered{}, notRegistered(name)
	}
	if err != nil {
		return Registered{}, registryUnavailable("get", err)
	}
	return decodeRegistered(e)
}

// List returns every registered namespace, in name order.
func (r *Registry) List(ctx context.Context) ([]Registered, error) {
	w, err := r.kv.WatchAll(ctx, jetstream.IgnoreDeletes())
	if err != nil {
		return nil, registryUnavailable("list", err)
	}
	defer w.Stop()
	var out []Registered
	for {
		select {
		case e := <-w.Updates():
			if e == nil {
				// Initial values delivered, in key order.
				return out, nil
			}
			reg, err := decodeRegistered(e)
			if err != nil {
				return nil, err
			}
			out = append(out, reg)
		case <-ctx.Done():
			return nil, &status.Error{Op: "registry list", Code: status.ErrDeadlineExceeded.Code, Message: "listing the namespace registry took too long", Err: ctx.Err()}
		}
	}
}

// RegistryRevision is one past revision of a namespace, for its history.
type RegistryRevision struct {
	// Revision is the registry revision.
	Revision uint64 `json:"revision"`
	// Op is "put" or "delete" (a purge leaves no history).
	Op string `json:"op"`
	// Entry is the namespace as applied at that revision; zero for a
	// delete.
	Entry *Registered `json:"entry,omitempty"`
	// At is when the revision was stored.
	At time.Time `json:"at"`
}

// History returns the kept revisions of namespace name (the last
// RegistryHistory), oldest first. It returns status.ErrNamespaceNotFound when the
// registry has none.
func (r *Registry) History(ctx context.Context, name string) ([]RegistryRevision, error) {
	if err := validName(name); err != nil {
		return nil, err
	}
	entries, err := r.kv.History(ctx, name)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, status.Newf(status.ErrNamespaceNotFound.Code, "namespace %s has no history in the registry", name)
	}
	if err != nil {
		return nil, registryUnavailable("history", err)
	}
	out := make([]RegistryRevision, 0, len(entries))
	for _, e := range entries {
		rev := RegistryRevision{Revision: e.Revision(), Op: "put", At: e.Created()}
		if e.Operation() != jetstream.KeyValuePut {
			rev.Op = "delete"
		} else {
			reg, err := decodeRegistered(e)
			if err != nil {
				return nil, err
			}
			rev.Entry = &reg
		}
		out = append(out, rev)
	}
	return out, nil
}

// Put stores e.Namespace, served by e.Backend and applied by e.AppliedBy,
// if e.Revision is the namespace's current revision, or, with revision 0,
// if the namespace does not exist. It validates the namespace first and
// stores nothing when it is invalid or e.Backend is not one of Backends
// (status.ErrInvalidArgument). It returns the new revision, or status.ErrConflict when the
// namespace changed (or was created) since e.Revision: whoever applies next
// must look at what is there first. Apply is Put with the checks of a plan.
func (r *Registry) Put(ctx context.Context, e Registered) (uint64, error) {
	ns, revision := e.Namespace, e.Revision
	if err := ns.Validate(); err != nil {
		return 0, status.Invalidf("%v", err)
	}
	if !slices.Contains(Backends, e.Backend) {
		return 0, status.Invalidf("namespace %s: resolved backend %q is not one of %s", ns.Name, e.Backend, strings.Join(Backends, ", "))
	}
	at := e.AppliedAt
	if at.IsZero() {
		at = time.Now().UTC()
	}
	rec, err := json.Marshal(registryRecord{Namespace: ns.WithDefaults(), Backend: e.Backend, AppliedAt: at, AppliedBy: e.AppliedBy, Primary: e.Primary, Migration: e.Migration})
	if err != nil {
		return 0, &status.Error{Op: "registry put", Code: status.ErrInternal.Code, Message: "cannot encode namespace", Err: err}
	}
	var rev uint64
	if revision == 0 {
		rev, err = r.kv.Create(ctx, ns.Name, rec)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return 0, r.conflict(ctx, ns.Name, revision)
		}
	} else {
		rev, err = r.kv.Update(ctx, ns.Name, rec, revision)
		if status.IsWrongLastSequence(err) {
			return 0, r.conflict(ctx, ns.Name, revision)
		}
	}
	if err != nil {
		return 0, registryUnavailable("put", err)
	}
	return rev, nil
}

// Delete removes namespace name if revision is its current revision (0:
// whatever it is). With purge its history goes too, and watchers are told
// to drop its data; without, they stop serving it and keep the data. It
// returns status.ErrNamespaceNotFound when it is not registered and status.ErrConflict
// when it changed since revision.
func (r *Registry) Delete(ctx context.Context, name string, revision uint64, purge bool) error {
	if err := validName(name); err != nil {
		return err
	}
	if revision == 0 {
		cur, err := r.Get(ctx, name)
		if err != nil {
			return err
		}
		revision = cur.Revision
	}
	op := r.kv.Delete
	if purge {
		op = r.kv.Purge
	}
	err := op(ctx, name, jetstream.LastRevision(revision))
	if status.IsWrongLastSequence(err) {
		return r.conflict(ctx, name, revision)
	}
	if err != nil {
		return registryUnavailable("delete", err)
	}
	return nil
}

// conflict builds the error of a revision check that failed, saying what is
// there now.
func (r *Registry) conflict(ctx context.Context, name string, revision uint64) error {
	cur, err := r.Get(ctx, name)
	switch {
	case err != nil && revision == 0:
		return status.Newf(status.ErrConflict.Code, "namespace %s was changed by someone else while applying; look at it again (prism plan) and retry", name)
	case err != nil:
		return status.Newf(status.ErrConflict.Code, "namespace %s was deleted or changed since revision %d; look at it again (prism plan) and retry", name, revision)
	case revision == 0:
		return status.Newf(status.ErrConflict.Code, "namespace %s already exists (revision %d, applied by %s at %s); look at it (prism plan) and apply again", name, cur.Revision, orUnknown(cur.AppliedBy), cur.AppliedAt.Format(time.RFC3339))
	default:
		return status.Newf(status.ErrConflict.Code, "namespace %s changed since revision %d: it is at revision %d, applied by %s at %s; look at it again (prism plan) and retry", name, revision, cur.Revision, orUnknown(cur.AppliedBy), cur.AppliedAt.Format(time.RFC3339))
	}
}

// validName refuses a name that is not a namespace name (INVALID_ARGUMENT):
// no key of the registry can hold it.
func validName(name string) error {
	if err := subjects.ValidateNamespace(name); err != nil {
		return status.Invalidf("name: %v", err)
	}
	return nil
}

// registryUnavailable is the error of a registry call JetStream did not
// answer (op: get, list, history, put, delete).
func registryUnavailable(op string, err error) *status.Error {
	return &status.Error{Op: "registry " + op, Code: status.ErrUnavailable.Code,
		Message: fmt.Sprintf("the namespace registry (KV bucket %s) did not answer %s; retry, and check JetStream (nats stream info KV_%s)", subjects.RegistryBucket, op, subjects.RegistryBucket), Err: err}
}

func orUnknown(s string) string {
	if s == "" {
		return "an unknown caller"
	}
	return s
}

func notRegistered(name string) *status.Error {
	return status.Newf(status.ErrNamespaceNotFound.Code, "namespace %s is not registered; apply it with prism apply -f", name)
}

// decodeRegistered decodes a registry entry.
func decodeRegistered(e jetstream.KeyValueEntry) (Registered, error) {
	var rec registryRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil {
		return Registered{}, &status.Error{Op: "registry", Code: status.ErrInternal.Code, Message: fmt.Sprintf("registry entry %s (revision %d) is not a namespace record", e.Key(), e.Revision()), Err: err}
	}
	if rec.Namespace.Name != e.Key() {
		return Registered{}, status.Newf(status.ErrInternal.Code, "registry entry %s (revision %d) holds namespace %q", e.Key(), e.Revision(), rec.Namespace.Name)
	}
	if err := rec.Namespace.Validate(); err != nil {
		return Registered{}, &status.Error{Op: "registry", Code: status.ErrInternal.Code, Message: fmt.Sprintf("registry entry %s (revision %d) is not a valid namespace", e.Key(), e.Revision()), Err: err}
	}
	if !slices.Contains(Backends, rec.Backend) {
		return Registered{}, status.Newf(status.ErrInternal.Code, "registry entry %s (revision %d) has no resolved backend", e.Key(), e.Revision())
	}
	return Registered{Namespace: rec.Namespace.WithDefaults(), Backend: rec.Backend, Revision: e.Revision(), AppliedAt: rec.AppliedAt, AppliedBy: rec.AppliedBy, Primary: rec.Primary, Migration: rec.Migration}, nil
}

// RegistryOp is what happened to a namespace in the registry.
type RegistryOp int

// The registry operations a watcher sees.
const (
	// RegistryPut: the namespace was created or changed.
	RegistryPut RegistryOp = iota + 1
	// RegistryDelete: the namespace was deleted; its data is kept.
	RegistryDelete
	// RegistryPurge: the namespace was deleted with --purge; its stream and
	// backend data are to be dropped.
	RegistryPurge
	// RegistrySynced: every namespace registered when the watch began has
	// been delivered; later changes follow. Name is empty.
	RegistrySynced
)

// String returns the operation's name.
func (o RegistryOp) String() string {
	switch o {
	case RegistryPut:
		return "put"
	case RegistryDelete:
		return "delete"
	case RegistryPurge:
		return "purge"
	case RegistrySynced:
		return "synced"
	}
	return fmt.Sprintf("RegistryOp(%d)", int(o))
}

// RegistryChange is one change a watcher sees.
type RegistryChange struct {
	Op RegistryOp
	// Name is the namespace name (empty for RegistrySynced).
	Name string
	// Entry is the namespace for RegistryPut; for the others only its
	// Revision is set.
	Entry Registered
	// Err is set when a put holds something that is not a valid namespace
	// (written to the bucket by hand); the change is to be skipped.
	Err error
}

// Watch delivers every registered namespace as a RegistryPut and every
// namespace deleted before the watch began as a RegistryDelete or
// RegistryPurge (its tombstone: a follower that serves it must stop), then
// RegistrySynced, then every change as it happens, in registry order, until
// ctx ends; then the channel is closed. A watcher that falls behind delays
// only itself.
func (r *Registry) Watch(ctx context.Context) (<-chan RegistryChange, error) {
	w, err := r.kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch registry: %w", err)
	}
	out := make(chan RegistryChange)
	go func() {
		defer close(out)
		defer w.Stop()
		for {
			var e jetstream.KeyValueEntry
			var ok bool
			select {
			case e, ok = <-w.Updates():
				if !ok {
					return
				}
			case <-ctx.Done():
				return
			}
			c := RegistryChange{Op: RegistrySynced}
			if e != nil {
				c = registryChange(e)
			}
			select {
			case out <- c:
			case <-ctx.Done():
				return
			}
		}
	}()
	return out, nil
}

func registryChange(e jetstream.KeyValueEntry) RegistryChange {
	c := RegistryChange{Name: e.Key(), Entry: Registered{Revision: e.Revision()}}
	switch e.Operation() {
	case jetstream.KeyValueDelete:
		c.Op = RegistryDelete
	case jetstream.KeyValuePurge:
		c.Op = RegistryPurge
	default:
		c.Op = RegistryPut
		c.Entry, c.Err = decodeRegistered(e)
	}
	return c
}

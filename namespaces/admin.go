package namespaces

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"

	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// The admin operations, answered on subjects.Admin(op). Bodies are JSON
// (docs/admin-api.md); errors are the gateway's error reply with the
// Prism-Error-Code header.
const (
	// AdminList: {} → AdminListReply.
	AdminList = "ns.list"
	// AdminGet: AdminNameRequest → AdminNamespace.
	AdminGet = "ns.get"
	// AdminPlan: AdminPlanRequest → ApplyResult; changes nothing.
	AdminPlan = "ns.plan"
	// AdminApply: AdminApplyRequest → ApplyResult.
	AdminApply = "ns.apply"
	// AdminDelete: AdminDeleteRequest → AdminDeleteReply.
	AdminDelete = "ns.delete"
	// AdminHistory: AdminNameRequest → AdminHistoryReply.
	AdminHistory = "ns.history"
	// AdminMigrateStart: AdminMigrateStartRequest → AdminNamespace.
	AdminMigrateStart = "migrate.start"
	// AdminMigrateCutover: AdminMigrateRequest → AdminNamespace.
	AdminMigrateCutover = "migrate.cutover"
	// AdminMigrateRollback: AdminMigrateRequest → AdminNamespace.
	AdminMigrateRollback = "migrate.rollback"
	// AdminMigrateFinalize: AdminMigrateRequest → AdminNamespace.
	AdminMigrateFinalize = "migrate.finalize"
)

// adminOps lists the admin operations, for the error naming them.
var adminOps = []string{AdminList, AdminGet, AdminPlan, AdminApply, AdminDelete, AdminHistory, AdminMigrateStart, AdminMigrateCutover, AdminMigrateRollback, AdminMigrateFinalize}

// AdminMigrateStartRequest starts a migration of namespace Name to To.
type AdminMigrateStartRequest struct {
	Name     string `json:"name"`
	To       Target `json:"to"`
	MaxRate  int    `json:"max_rate,omitempty"`
	Adaptive bool   `json:"adaptive"`
	// ShadowSample is the fraction of gets compared; 0: the default.
	ShadowSample float64 `json:"shadow_sample,omitempty"`
	By           string  `json:"by,omitempty"`
}

// AdminMigrateRequest asks for a transition of namespace Name's migration,
// made by By.
type AdminMigrateRequest struct {
	Name string `json:"name"`
	By   string `json:"by,omitempty"`
}

// AdminHistoryReply is the kept revisions of a namespace, oldest first.
type AdminHistoryReply struct {
	Name      string             `json:"name"`
	Revisions []RegistryRevision `json:"revisions"`
}

// AdminQueue is the queue group of the admin responders: a request is
// answered by one Prism process.
const AdminQueue = "prism-admin"

// AdminNameRequest names a namespace.
type AdminNameRequest struct {
	Name string `json:"name"`
}

// AdminPlanRequest asks what applying Namespace would do.
type AdminPlanRequest struct {
	Namespace Namespace `json:"namespace"`
}

// AdminApplyRequest applies Namespace if the namespace is at Revision (0:
// it must not exist), the revision its plan was made against.
type AdminApplyRequest struct {
	Namespace Namespace `json:"namespace"`
	Revision  uint64    `json:"revision"`
	// AppliedBy is who applies it, recorded in the registry (user@host).
	AppliedBy string `json:"applied_by,omitempty"`
}

// AdminDeleteRequest deletes namespace Name if it is at Revision (0:
// whatever it is). Without Purge the stream and backend data are kept.
type AdminDeleteRequest struct {
	Name     string `json:"name"`
	Revision uint64 `json:"revision"`
	Purge    bool   `json:"purge"`
}

// AdminDeleteReply confirms a delete.
type AdminDeleteReply struct {
	Name   string `json:"name"`
	Purged bool   `json:"purged"`
}

// TargetStatus is the state of one projection target of a namespace, as
// the Prism process answering knows it.
type TargetStatus struct {
	// Target is the target's name (Target.Name), e.g. "sqlite".
	Target string `json:"target"`
	// Backend is the backend the target projects into.
	Backend string `json:"backend,omitempty"`
	// Role is "primary" (it serves reads), "shadow" (a migration's other
	// target, caught up and compared against) or "backfill" (a
	// migration's new target catching up).
	Role string `json:"role"`
	// State is "running", "starting", "standby" (another process projects
	// it and this one serves it: ADR 022) or "failed".
	State string `json:"state"`
	// Error says why a failed target failed.
	Error string `json:"error,omitempty"`
	// Revision is the registry revision of the namespace the target is
	// serving; it lags the registry for the moment a change takes.
	Revision uint64 `json:"revision"`
	// Checkpoint is the last stream sequence the target applied.
	Checkpoint uint64 `json:"checkpoint"`
	// StreamLast is the last sequence of the namespace's stream.
	StreamLast uint64 `json:"stream_last"`
	// Lag is StreamLast minus Checkpoint.
	Lag uint64 `json:"lag"`
	// Throttle is the pace of a backfilling target; nil for the others.
	Throttle *ThrottleStatus `json:"throttle,omitempty"`
	// ShadowReads, on the target in role shadow, counts the sampled gets
	// the answering process compared against the namespace's shadow since
	// it started, by result (match, mismatch, skipped, dropped, error);
	// nil on the other targets and when none was sampled.
	ShadowReads map[string]int64 `json:"shadow_reads,omitempty"`
	// Indexes are the build states of an entity namespace's secondary
	// indexes in the target, by name; empty for other abstractions.
	Indexes []IndexStatus `json:"indexes,omitempty"`
}

// IndexStatus is how far a target filled one secondary index of an
// entity namespace (docs/entity.md, "Schema evolution").
type IndexStatus struct {
	Index string `json:"index"`
	// State is ready, building or failed.
	State string `json:"state"`
	// Done and Total count the records read and those stored when the
	// build started.
	Done  uint64 `json:"done"`
	Total uint64 `json:"total"`
	// Detail says why a build failed.
	Detail string `json:"detail,omitempty"`
}

// String is the status in a few words: "note building 1200/5000".
func (s IndexStatus) String() string {
	switch s.State {
	case "building":
		return fmt.Sprintf("%s building %d/%d", s.Index, s.Done, s.Total)
	case "failed":
		return fmt.Sprintf("%s FAILED (%s)", s.Index, s.Detail)
	}
	return s.Index + " " + s.State
}

// ThrottleStatus is what a backfill throttle allows now.
type ThrottleStatus struct {
	// Rate is the events per second allowed now; 0 is unlimited.
	Rate float64 `json:"rate"`
	// MaxRate is the migration's cap; 0 is none.
	MaxRate float64 `json:"max_rate"`
	// Reason says why the rate is below its ceiling; empty when it is not.
	Reason string `json:"reason,omitempty"`
}

// AdminNamespace is a registered namespace with its derived settings and
// the state of its targets.
type AdminNamespace struct {
	Registered
	// Plan is the derived settings on the cluster the admin runs on.
	Plan *PlanReport `json:"plan,omitempty"`
	// PlanError says why the namespace cannot be planned on this cluster
	// (it was applied on another one); then Plan is nil.
	PlanError string `json:"plan_error,omitempty"`
	// Targets is the state of its projection targets; empty when this
	// process does not serve it.
	Targets []TargetStatus `json:"targets"`
}

// AdminListReply lists the registered namespaces, in name order.
type AdminListReply struct {
	Namespaces []AdminNamespace `json:"namespaces"`
}

// AdminConfig configures an Admin.
type AdminConfig struct {
	// Cluster is the deployment namespaces are planned for.
	Cluster Cluster
	// Status returns the state of namespace ns's targets; nil reports none.
	Status func(ctx context.Context, ns string) []TargetStatus
	// Security, when set, identifies and authorizes every request
	// (AdminSecurity); Auditor, when set, records each one.
	Security AdminSecurity
	Auditor  AdminAuditor
	// CheckTarget, when set, is asked whether target t of namespace ns
	// can be served before the admin stores it: the primary target of a
	// namespace an apply creates, the new target of a migration start. It
	// returns nil, or an error saying what is missing (a PostgreSQL
	// connection string, a reachable Kafka broker) and how to give it;
	// the request is then refused with FAILED_PRECONDITION (unless the
	// error is a *status.Error, returned as it is) and nothing is stored.
	CheckTarget func(ctx context.Context, ns Namespace, t Target) error
	// Keys, when set, answers the PII key operations (keys.list,
	// keys.rotate, keys.rewrap, pii.forget).
	Keys AdminKeyring
	// Logger defaults to slog.Default().
	Logger *slog.Logger
}

// Admin answers the admin API (subjects.AllAdmin()): list, get, plan, apply
// and delete namespaces in the registry. Create it with NewAdmin, Start it,
// Drain it.
type Admin struct {
	nc  *nats.Conn
	reg *Registry
	cfg AdminConfig

	mu  sync.Mutex
	sub *nats.Subscription
}

// NewAdmin returns an admin responder over nc for registry reg.
func NewAdmin(nc *nats.Conn, reg *Registry, cfg AdminConfig) (*Admin, error) {
	if nc == nil || reg == nil {
		return nil, errors.New("namespaces: admin needs a NATS connection and a registry")
	}
	if cfg.Cluster.Nodes < 1 {
		return nil, fmt.Errorf("namespaces: admin cluster nodes %d: want at least 1", cfg.Cluster.Nodes)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	return &Admin{nc: nc, reg: reg, cfg: cfg}, nil
}

// Start subscribes to the admin subjects in queue group AdminQueue.
func (a *Admin) Start() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sub != nil {
		return errors.New("namespaces: admin already started")
	}
	sub, err := a.nc.QueueSubscribe(subjects.AllAdmin(), AdminQueue, a.serve)
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", subjects.AllAdmin(), err)
	}
	a.sub = sub
	return a.nc.Flush()
}

// Drain stops taking admin requests; those in flight finish.
func (a *Admin) Drain() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.sub == nil {
		return nil
	}
	err := a.sub.Drain()
	a.sub = nil
	return err
}

// adminTimeout bounds one admin request.
const adminTimeout = 10 * time.Second

func (a *Admin) serve(m *nats.Msg) {
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), adminTimeout)
	defer cancel()
	op := strings.TrimPrefix(m.Subject, subjects.Admin(""))
	p, ns, err := a.admit(op, m.Header, m.Data)
	var reply any
	if err == nil {
		reply, err = a.handle(context.WithValue(ctx, principalKey{}, p), op, m.Data)
	}
	if l, ok := reply.(AdminListReply); ok {
		reply = a.filterList(p, l)
	}
	if au := a.cfg.Auditor; au != nil {
		code := "OK"
		if err != nil {
			code = status.Convert(err).Code.String()
		}
		if aerr := au.AuditAdmin(ctx, AdminAccess{Principal: p, Namespace: ns, Op: op, Code: code, Latency: time.Since(start), IDs: forgetIDs(op, m.Data)}); aerr != nil {
			reply, err = nil, &status.Error{Code: status.ErrUnavailable.Code, Message: "audit stream unavailable: the admin request's audit record was not stored; check the outcome with prism ns get before retrying", Err: aerr}
		}
	}
	if err == nil {
		switch r := reply.(type) {
		case ApplyResult:
			if op == AdminApply {
				a.cfg.Logger.Info("namespace applied", "namespace", r.Plan.Namespace, "action", r.Action, "revision", r.Revision, "changes", len(r.Changes))
			}
		case AdminDeleteReply:
			a.cfg.Logger.Info("namespace deleted", "namespace", r.Name, "purge", r.Purged)
		case AdminNamespace:
			if m := r.Migration; m != nil && strings.HasPrefix(op, "migrate.") {
				a.cfg.Logger.Info("migration changed", "namespace", r.Namespace.Name, "op", op, "state", m.State, "from", m.From.Name, "to", m.To.Name)
			}
		}
	}
	ReplyAdmin(a.nc, m, op, reply, err, a.cfg.Logger)
}

// ReplyAdmin answers admin request m of operation op the way the admin API
// does: reply as JSON, or err as the error reply with the
// Prism-Error-Code header (logged, as a warning when it is INTERNAL or
// UNAVAILABLE). Responders of admin requests outside Admin (the
// namespace owner's, such as migrate verify) use it too.
func ReplyAdmin(nc *nats.Conn, m *nats.Msg, op string, reply any, err error, log *slog.Logger) {
	out := nats.NewMsg(m.Reply)
	out.Header.Set(subjects.HeaderContentTypeReq, subjects.ContentTypeJSON)
	if err == nil {
		if out.Data, err = json.Marshal(reply); err != nil {
			err = &status.Error{Op: "admin " + op, Code: status.ErrInternal.Code, Message: "cannot encode the reply", Err: err}
		}
	}
	if err != nil {
		e := status.Convert(err)
		level := slog.LevelInfo
		if e.Code == status.ErrInternal.Code || e.Code == status.ErrUnavailable.Code {
			level = slog.LevelWarn
		}
		log.Log(context.Background(), level, "admin request refused", "op", op, "code", e.Code.String(), "err", err)
		out.Header.Set(subjects.HeaderErrorCode, e.Code.String())
		out.Data, _ = protojson.Marshal(e.Proto())
	}
	if m.Reply != "" {
		_ = nc.PublishMsg(out)
	}
}

func (a *Admin) handle(ctx context.Context, op string, body []byte) (any, error) {
	if isKeyOp(op) {
		return a.handleKeys(ctx, op, body)
	}
	if isDLQOp(op) {
		return a.handleDLQ(ctx, op, body)
	}
	switch op {
	case AdminList:
		regs, err := a.reg.List(ctx)
		if err != nil {
			return nil, err
		}
		out := AdminListReply{Namespaces: make([]AdminNamespace, 0, len(regs))}
		for _, r := range regs {
			out.Namespaces = append(out.Namespaces, a.describe(ctx, r))
		}
		return out, nil
	case AdminGet:
		var req AdminNameRequest
		if err := decodeAdmin(body, &req); err != nil {
			return nil, err
		}
		r, err := a.reg.Get(ctx, req.Name)
		if err != nil {
			return nil, err
		}
		return a.describe(ctx, r), nil
	case AdminPlan:
		var req AdminPlanRequest
		if err := decodeAdmin(body, &req); err != nil {
			return nil, err
		}
		return PlanApply(ctx, a.reg, a.cfg.Cluster, req.Namespace)
	case AdminApply:
		var req AdminApplyRequest
		if err := decodeAdmin(body, &req); err != nil {
			return nil, err
		}
		if err := a.checkApply(ctx, req.Namespace, req.Revision); err != nil {
			return nil, err
		}
		return Apply(ctx, a.reg, a.cfg.Cluster, req.Namespace, req.Revision, by(ctx, req.AppliedBy))
	case AdminHistory:
		var req AdminNameRequest
		if err := decodeAdmin(body, &req); err != nil {
			return nil, err
		}
		revs, err := a.reg.History(ctx, req.Name)
		if err != nil {
			return nil, err
		}
		return AdminHistoryReply{Name: req.Name, Revisions: revs}, nil
	case AdminDelete:
		var req AdminDeleteRequest
		if err := decodeAdmin(body, &req); err != nil {
			return nil, err
		}
		if err := deleteNamespace(ctx, a.reg, req); err != nil {
			return nil, err
		}
		return AdminDeleteReply{Name: req.Name, Purged: req.Purge}, nil
	case AdminMigrateStart:
		var req AdminMigrateStartRequest
		if err := decodeAdmin(body, &req); err != nil {
			return nil, err
		}
		if err := a.checkMigration(ctx, req.Name, req.To); err != nil {
			return nil, err
		}
		r, err := StartMigration(ctx, a.reg, req.Name, req.To, MigrationOptions{MaxRate: req.MaxRate, Adaptive: req.Adaptive, ShadowSample: req.ShadowSample}, by(ctx, req.By))
		if err != nil {
			return nil, err
		}
		return a.describe(ctx, r), nil
	case AdminMigrateCutover, AdminMigrateRollback, AdminMigrateFinalize:
		var req AdminMigrateRequest
		if err := decodeAdmin(body, &req); err != nil {
			return nil, err
		}
		do := map[string]func(context.Context, *Registry, string, string) (Registered, error){
			AdminMigrateCutover: Cutover, AdminMigrateRollback: Rollback, AdminMigrateFinalize: Finalize,
		}[op]
		r, err := do(ctx, a.reg, req.Name, by(ctx, req.By))
		if err != nil {
			return nil, err
		}
		return a.describe(ctx, r), nil
	}
	return nil, status.Newf(status.ErrUnimplemented.Code, "admin operation %q does not exist; use one of %s", op, strings.Join(slices.Concat(adminOps, keyOps, dlqOps), ", "))
}

// checkApply asks CheckTarget whether the primary target of ns can be
// served, when applying ns at revision would create it. An update is not
// checked: it cannot change the backend or its settings (that needs a
// migration). A refusal of Apply's own (invalid, conflict) is left to it.
func (a *Admin) checkApply(ctx context.Context, ns Namespace, revision uint64) error {
	if a.cfg.CheckTarget == nil {
		return nil
	}
	res, err := PlanApply(ctx, a.reg, a.cfg.Cluster, ns)
	if err != nil || res.Action != ActionCreate || res.Revision != revision {
		return nil
	}
	ns = ns.WithDefaults()
	return a.checkTarget(ctx, ns, Target{Name: res.Backend, Backend: res.Backend, Postgres: ns.Postgres})
}

// checkMigration asks CheckTarget whether to, the new target of a
// migration of namespace name, can be served, when StartMigration would
// record it; its refusals (no such namespace, an invalid target, a
// migration in progress) are left to it.
func (a *Admin) checkMigration(ctx context.Context, name string, to Target) error {
	if a.cfg.CheckTarget == nil {
		return nil
	}
	r, err := a.reg.Get(ctx, name)
	if err != nil {
		return nil
	}
	if to.Name == "" {
		to.Name = to.Backend
	}
	if to.validate(r.Namespace.Abstraction) != nil || to.Name == r.PrimaryTarget().Name || (r.Migration != nil && r.Migration.State.Active()) {
		return nil
	}
	return a.checkTarget(ctx, r.Namespace, to)
}

// checkTarget is CheckTarget's answer for target t of ns as the admin
// API's error.
func (a *Admin) checkTarget(ctx context.Context, ns Namespace, t Target) error {
	err := a.cfg.CheckTarget(ctx, ns, t)
	if err == nil {
		return nil
	}
	if e := (*status.Error)(nil); errors.As(err, &e) {
		return err
	}
	return &status.Error{Code: status.ErrFailedPrecondition.Code, Message: fmt.Sprintf("namespace %s: target %s (backend %s) cannot be served: %v; nothing was stored", ns.Name, t.Name, t.Backend, err), Err: err}
}

// deleteNamespace deletes a namespace as req asks, unless it is migrating:
// a migration must be finalized or rolled back first, so that no target
// is left projecting a namespace that is gone.
func deleteNamespace(ctx context.Context, reg *Registry, req AdminDeleteRequest) error {
	r, err := reg.Get(ctx, req.Name)
	if err != nil {
		return err
	}
	if m := r.Migration; m != nil && m.State.Active() {
		return status.Newf(status.ErrFailedPrecondition.Code, "namespace %s is migrating to %s (state %s); roll the migration back or finalize it before deleting the namespace", req.Name, m.To.Name, m.State)
	}
	// At the revision checked, so that a migration started meanwhile makes
	// the delete fail rather than vanish with the namespace.
	revision := req.Revision
	if revision == 0 {
		revision = r.Revision
	}
	return reg.Delete(ctx, req.Name, revision, req.Purge)
}

// describe adds the plan and target states to r.
func (a *Admin) describe(ctx context.Context, r Registered) AdminNamespace {
	out := AdminNamespace{Registered: r, Targets: []TargetStatus{}}
	if p, err := Derive(r.Namespace, a.cfg.Cluster); err != nil {
		out.PlanError = err.Error()
	} else {
		rep := p.Report()
		out.Plan = &rep
	}
	if a.cfg.Status != nil {
		if ts := a.cfg.Status(ctx, r.Namespace.Name); ts != nil {
			out.Targets = ts
		}
	}
	return out
}

// decodeAdmin decodes a JSON admin request strictly: an unknown field is
// INVALID_ARGUMENT, so a misspelt one is never silently ignored.
func decodeAdmin(body []byte, v any) error {
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return status.Invalidf("request body: %v", err)
	}
	return nil
}

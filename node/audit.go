package node

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/auth/audit"
	"github.com/prism-data/prism/gateway"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/status"
)

// auditor adapts the audit writer to what the gateway and the admin API
// record: gateway.Auditor and namespaces.AdminAuditor.
type auditor struct{ w *audit.Writer }

var (
	_ gateway.Auditor         = auditor{}
	_ namespaces.AdminAuditor = auditor{}
)

// Audit records a request of the gateway.
func (a auditor) Audit(ctx context.Context, acc gateway.Access, wait bool) error {
	return a.w.Record(ctx, audit.Record{
		Principal: acc.Principal, Namespace: acc.Namespace, Op: acc.Op,
		Count: acc.Count, RawIDs: acc.IDs, Code: acc.Code, Latency: acc.Latency,
		RequestID: acc.RequestID, TraceID: acc.TraceID, Seq: acc.Seq,
	}, wait)
}

// AuditAdmin records an admin request; it returns once the record is
// stored.
func (a auditor) AuditAdmin(ctx context.Context, acc namespaces.AdminAccess) error {
	return a.w.Record(ctx, audit.Record{
		Principal: acc.Principal, Namespace: acc.Namespace, Op: "admin." + acc.Op,
		Code: acc.Code, Latency: acc.Latency, RawIDs: acc.IDs,
	}, true)
}

// Audit operations of the callout's decisions: one connect.admit per
// connection (code OK or PERMISSION_DENIED), and for an admitted one a
// changes.grant on each namespace whose change fan-out it may subscribe
// to (changes.grant_all on none for a global admin): the fan-out is core
// NATS, so these grants are its audit.
const (
	opConnect      = "connect.admit"
	opChanges      = "changes.grant"
	opChangesAll   = "changes.grant_all"
	connectRefused = "PERMISSION_DENIED"
)

// AuditAdmission records the callout's decision on one connection. It
// waits for the records to be stored when the connection gets a fan-out
// grant, which nothing else audits; the callout refuses the connection
// when they cannot be.
func (a auditor) AuditAdmission(ctx context.Context, adm auth.Admission) error {
	code := audit.CodeOK
	if !adm.Allowed {
		code = connectRefused
	}
	wait := adm.Grants()
	if err := a.w.Record(ctx, audit.Record{Principal: adm.Principal, Op: opConnect, Code: code, Latency: adm.Latency}, wait); err != nil {
		return err
	}
	if adm.ChangesAll {
		return a.w.Record(ctx, audit.Record{Principal: adm.Principal, Op: opChangesAll}, true)
	}
	for _, ns := range adm.Changes {
		if err := a.w.Record(ctx, audit.Record{Principal: adm.Principal, Namespace: ns, Op: opChanges}, true); err != nil {
			return err
		}
	}
	return nil
}

// Healthy is the writer's health: nil while records are being stored.
func (a auditor) Healthy() error { return a.w.Healthy() }

// startAudit ensures the audit stream (retention c.AuditRetention) and
// starts its writer.
func startAudit(ctx context.Context, js jetstream.JetStream, c Config, replicas int, owner string, reg prometheus.Registerer, log *slog.Logger) (*audit.Writer, error) {
	if _, err := retrySetup(ctx, func(ctx context.Context) (jetstream.Stream, error) {
		return audit.EnsureStream(ctx, js, audit.StreamConfig{Retention: c.AuditRetention, Replicas: replicas})
	}); err != nil {
		return nil, fmt.Errorf("audit stream: %w", err)
	}
	return audit.NewWriter(js, audit.WithNode(owner), audit.WithRegisterer(reg), audit.WithLogger(log.With("component", "audit")))
}

// admitOwner identifies the caller of an owner request on namespace ns
// (prism migrate verify) and checks it administers ns; development mode
// admits everyone as auth.Anonymous.
func (s *namespaceSet) admitOwner(h nats.Header, ns string) (auth.Principal, error) {
	if s.auditor != nil {
		if err := s.auditor.Healthy(); err != nil {
			return auth.Anonymous, err
		}
	}
	if s.sec == nil {
		return auth.Anonymous, nil
	}
	p, err := s.sec.Identify(h)
	if err != nil {
		return p, err
	}
	return p, s.sec.Authorize(p, ns, auth.Admin)
}

// auditOwner records an owner request; it returns the error to reply
// with when the record could not be stored.
func (s *namespaceSet) auditOwner(p auth.Principal, ns, op string, err error, d time.Duration) error {
	if s.auditor == nil {
		return nil
	}
	if aerr := s.auditor.AuditAdmin(s.ctx, namespaces.AdminAccess{Principal: p, Namespace: ns, Op: op, Code: audit.Code(err), Latency: d}); aerr != nil {
		return &status.Error{Code: status.ErrUnavailable.Code, Message: "audit stream unavailable: the request's audit record was not stored; check the outcome before retrying", Err: aerr}
	}
	return nil
}

// auditStep records a migration step this process made on its own (the
// service principal); a record that cannot be stored is logged, and the
// step stands: it is in the registry's history too.
func (s *namespaceSet) auditStep(ns, op string, err error, d time.Duration) {
	if aerr := s.auditOwner(auth.ServicePrincipal, ns, op, err, d); aerr != nil {
		s.log.Warn("audit a migration step", "namespace", ns, "op", op, "err", aerr)
	}
}

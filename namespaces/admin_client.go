package namespaces

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"time"

	"github.com/nats-io/nats.go"
	"google.golang.org/protobuf/encoding/protojson"

	prismv1 "github.com/prism-data/prism/proto/prism/v1"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// AdminClient calls the admin API of a running Prism over NATS; prism apply
// and prism ns use it. It is safe for concurrent use.
type AdminClient struct {
	nc      *nats.Conn
	timeout time.Duration
}

// NewAdminClient returns a client over nc whose calls time out after
// timeout unless their context ends first (0 means 10 s).
func NewAdminClient(nc *nats.Conn, timeout time.Duration) *AdminClient {
	if timeout <= 0 {
		timeout = adminTimeout
	}
	return &AdminClient{nc: nc, timeout: timeout}
}

// List returns every registered namespace.
func (c *AdminClient) List(ctx context.Context) (AdminListReply, error) {
	var out AdminListReply
	return out, c.call(ctx, AdminList, struct{}{}, &out)
}

// Get returns namespace name; status.ErrNamespaceNotFound when it is not
// registered.
func (c *AdminClient) Get(ctx context.Context, name string) (AdminNamespace, error) {
	var out AdminNamespace
	return out, c.call(ctx, AdminGet, AdminNameRequest{Name: name}, &out)
}

// Plan returns what applying ns would do; it changes nothing.
func (c *AdminClient) Plan(ctx context.Context, ns Namespace) (ApplyResult, error) {
	var out ApplyResult
	return out, c.call(ctx, AdminPlan, AdminPlanRequest{Namespace: ns}, &out)
}

// Apply applies ns if it is at revision (see AdminApplyRequest).
func (c *AdminClient) Apply(ctx context.Context, ns Namespace, revision uint64, by string) (ApplyResult, error) {
	var out ApplyResult
	return out, c.call(ctx, AdminApply, AdminApplyRequest{Namespace: ns, Revision: revision, AppliedBy: by}, &out)
}

// History returns the kept revisions of namespace name, oldest first.
func (c *AdminClient) History(ctx context.Context, name string) (AdminHistoryReply, error) {
	var out AdminHistoryReply
	return out, c.call(ctx, AdminHistory, AdminNameRequest{Name: name}, &out)
}

// Delete deletes namespace name if it is at revision (0: any).
func (c *AdminClient) Delete(ctx context.Context, name string, revision uint64, purge bool) (AdminDeleteReply, error) {
	var out AdminDeleteReply
	return out, c.call(ctx, AdminDelete, AdminDeleteRequest{Name: name, Revision: revision, Purge: purge}, &out)
}

// StartMigration starts a migration of namespace name to target to.
func (c *AdminClient) StartMigration(ctx context.Context, name string, to Target, o MigrationOptions, by string) (AdminNamespace, error) {
	var out AdminNamespace
	return out, c.call(ctx, AdminMigrateStart, AdminMigrateStartRequest{Name: name, To: to, MaxRate: o.MaxRate, Adaptive: o.Adaptive, ShadowSample: o.ShadowSample, By: by}, &out)
}

// Migrate makes transition op (AdminMigrateCutover, AdminMigrateRollback
// or AdminMigrateFinalize) of namespace name's migration.
func (c *AdminClient) Migrate(ctx context.Context, op, name, by string) (AdminNamespace, error) {
	var out AdminNamespace
	return out, c.call(ctx, op, AdminMigrateRequest{Name: name, By: by}, &out)
}

// call sends req to admin operation op and decodes the reply into out. An
// error reply becomes an *status.Error with its code.
func (c *AdminClient) call(ctx context.Context, op string, req, out any) error {
	return c.Request(ctx, subjects.Admin(op), op, req, out)
}

// Request sends req as JSON to the admin responder at subject (operation
// op, for errors) and decodes its JSON reply into out, like the admin
// operations: an error reply becomes an *status.Error with its code, no
// responder is UNAVAILABLE, no reply in time DEADLINE_EXCEEDED. ctx
// bounds it; without a deadline the client's timeout does.
func (c *AdminClient) Request(ctx context.Context, subject, op string, req, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	body, err := json.Marshal(req)
	if err != nil {
		return fmt.Errorf("admin %s: %w", op, err)
	}
	m := nats.NewMsg(subject)
	m.Data = body
	m.Header.Set(subjects.HeaderContentTypeReq, subjects.ContentTypeJSON)
	reply, err := c.nc.RequestMsgWithContext(ctx, m)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return &status.Error{Op: "admin " + op, Code: status.ErrUnavailable.Code, Message: fmt.Sprintf("no Prism answers admin requests at %s; is prism serve running there?", c.nc.ConnectedUrlRedacted()), Err: err}
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrTimeout):
		return &status.Error{Op: "admin " + op, Code: status.ErrDeadlineExceeded.Code, Message: fmt.Sprintf("no reply from Prism at %s within the timeout; retry, or raise --timeout", c.nc.ConnectedUrlRedacted()), Err: err}
	case err != nil:
		return &status.Error{Op: "admin " + op, Code: status.ErrUnavailable.Code, Message: fmt.Sprintf("admin request to %s failed", c.nc.ConnectedUrlRedacted()), Err: err}
	}
	if code := reply.Header.Get(subjects.HeaderErrorCode); code != "" {
		var er prismv1.ErrorReply
		if err := protojson.Unmarshal(reply.Data, &er); err != nil || er.GetError() == nil {
			return &status.Error{Op: "admin " + op, Code: status.ErrInternal.Code, Message: "error reply " + code + " without a readable body"}
		}
		return &status.Error{Op: "admin " + op, Code: er.GetError().GetCode(), Message: er.GetError().GetMessage()}
	}
	if err := json.Unmarshal(reply.Data, out); err != nil {
		return &status.Error{Op: "admin " + op, Code: status.ErrInternal.Code, Message: "unreadable admin reply", Err: err}
	}
	return nil
}

// LocalUser is who a command run here says applied a change (the by of
// Apply, StartMigration, Migrate, ...): user@host of the operating system.
// The admin API records the authenticated principal instead when the
// deployment authenticates.
func LocalUser() string {
	name := "unknown"
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, _ := os.Hostname()
	if host == "" {
		return name
	}
	return name + "@" + host
}

// DeleteNamespace deletes namespace name as prism ns delete does: at
// revision (0: the one it reads first), asking ok with a prompt that says
// what is lost, and reporting to out what became of the data. Errors:
// Get's and Delete's, or one saying it was not confirmed.
func (c *AdminClient) DeleteNamespace(ctx context.Context, name string, revision uint64, purge bool, ok func(prompt string) bool, out io.Writer) error {
	n, err := c.Get(ctx, name)
	if err != nil {
		return err
	}
	if revision == 0 {
		revision = n.Revision
	}
	what, done := "its stream and data are kept", "its stream and data are kept (apply it again to serve them)"
	if purge {
		what, done = "its stream and ALL ITS DATA ARE DELETED", "its stream and data are being purged"
	}
	if !ok(fmt.Sprintf("Delete namespace %s (revision %d, %s %s)? %s.", name, n.Revision, n.Namespace.Abstraction, n.Backend, what)) {
		return errors.New("delete: not confirmed; nothing deleted (pass --yes to skip the question)")
	}
	if _, err := c.Delete(ctx, name, revision, purge); err != nil {
		return err
	}
	_, err = fmt.Fprintf(out, "deleted namespace %s; %s\n", name, done)
	return err
}

package namespaces

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/prism-data/prism/pii"
	"github.com/prism-data/prism/status"
)

// The PII key operations of the admin API (docs/admin-api.md), answered
// when AdminConfig.Keys is set. Each needs admin of the namespace; rewrap
// touches every namespace and needs a global admin.
const (
	// AdminKeys: AdminNameRequest → AdminKeysReply.
	AdminKeys = "keys.list"
	// AdminKeysRotate: AdminKeysRotateRequest → AdminKeysReply.
	AdminKeysRotate = "keys.rotate"
	// AdminKeysRewrap: {} → AdminRewrapReply.
	AdminKeysRewrap = "keys.rewrap"
	// AdminForget: AdminForgetRequest → AdminForgetReply.
	AdminForget = "pii.forget"
)

// AdminKeyring is what the PII key operations need; *pii.Keyring is one.
type AdminKeyring interface {
	KEKID() string
	DataKeys(ctx context.Context, ns string) ([]pii.StoredKey, error)
	Rotate(ctx context.Context, ns string) (string, error)
	Rewrap(ctx context.Context) (int, error)
	Forget(ctx context.Context, ns string, id []byte, by string) (bool, error)
}

// AdminKeysRotateRequest rotates the data key of namespace Name.
type AdminKeysRotateRequest struct {
	Name string `json:"name"`
	By   string `json:"by,omitempty"`
}

// AdminDataKey describes one data key: never its material.
type AdminDataKey struct {
	ID      string    `json:"id"`
	KEKID   string    `json:"kek_id"`
	Created time.Time `json:"created"`
	Current bool      `json:"current"`
}

// AdminKeysReply lists a namespace's data keys, oldest first; the last is
// the one new values are sealed under.
type AdminKeysReply struct {
	Name string         `json:"name"`
	KEK  string         `json:"kek"`
	Keys []AdminDataKey `json:"keys"`
}

// AdminRewrapReply says how many data keys were rewrapped under KEK.
type AdminRewrapReply struct {
	KEK       string `json:"kek"`
	Rewrapped int    `json:"rewrapped"`
}

// AdminForgetRequest forgets the personal data of record ID (bytes, JSON
// base64) of namespace Name.
type AdminForgetRequest struct {
	Name string `json:"name"`
	ID   []byte `json:"id"`
	By   string `json:"by,omitempty"`
}

// AdminForgetReply: Forgotten is false when the record held no PII.
type AdminForgetReply struct {
	Name      string `json:"name"`
	Forgotten bool   `json:"forgotten"`
}

// keyOps are the PII key operations.
var keyOps = []string{AdminKeys, AdminKeysRotate, AdminKeysRewrap, AdminForget}

func isKeyOp(op string) bool { return slices.Contains(keyOps, op) }

// forgetIDs returns the record a forget request names, for its audit
// record (which stores it hashed).
func forgetIDs(op string, body []byte) [][]byte {
	if op != AdminForget {
		return nil
	}
	var req AdminForgetRequest
	if json.Unmarshal(body, &req) != nil || len(req.ID) == 0 {
		return nil
	}
	return [][]byte{req.ID}
}

func (a *Admin) handleKeys(ctx context.Context, op string, body []byte) (any, error) {
	k := a.cfg.Keys
	if k == nil {
		return nil, status.Newf(status.ErrFailedPrecondition.Code, "admin operation %s: this Prism process holds no PII keys", op)
	}
	switch op {
	case AdminKeysRewrap:
		if err := decodeAdmin(body, &struct{}{}); err != nil {
			return nil, err
		}
		n, err := k.Rewrap(ctx)
		if err != nil {
			return nil, keysUnavailable(err)
		}
		a.cfg.Logger.Info("pii: data keys rewrapped", "kek", k.KEKID(), "rewrapped", n)
		return AdminRewrapReply{KEK: k.KEKID(), Rewrapped: n}, nil
	case AdminForget:
		var req AdminForgetRequest
		if err := decodeAdmin(body, &req); err != nil {
			return nil, err
		}
		if len(req.ID) == 0 {
			return nil, status.Invalidf("id is empty: name the record to forget (base64 in JSON)")
		}
		if _, err := a.reg.Get(ctx, req.Name); err != nil {
			return nil, err
		}
		had, err := k.Forget(ctx, req.Name, req.ID, by(ctx, req.By))
		if err != nil {
			return nil, keysUnavailable(err)
		}
		a.cfg.Logger.Info("pii: record forgotten", "namespace", req.Name, "had_pii", had)
		return AdminForgetReply{Name: req.Name, Forgotten: had}, nil
	}
	var name string
	if op == AdminKeysRotate {
		var req AdminKeysRotateRequest
		if err := decodeAdmin(body, &req); err != nil {
			return nil, err
		}
		name = req.Name
	} else {
		var req AdminNameRequest
		if err := decodeAdmin(body, &req); err != nil {
			return nil, err
		}
		name = req.Name
	}
	r, err := a.reg.Get(ctx, name)
	if err != nil {
		return nil, err
	}
	if r.Namespace.PII.IsZero() {
		return nil, status.Newf(status.ErrFailedPrecondition.Code, "namespace %s declares no pii fields, so it has no data keys", name)
	}
	if op == AdminKeysRotate {
		id, err := k.Rotate(ctx, name)
		if err != nil {
			return nil, keysUnavailable(err)
		}
		a.cfg.Logger.Info("pii: data key rotated", "namespace", name, "key", id)
	}
	keys, err := k.DataKeys(ctx, name)
	if err != nil {
		return nil, keysUnavailable(err)
	}
	out := AdminKeysReply{Name: name, KEK: k.KEKID(), Keys: make([]AdminDataKey, len(keys))}
	for i, sk := range keys {
		out.Keys[i] = AdminDataKey{ID: sk.ID, KEKID: sk.KEKID, Created: sk.Created, Current: i == len(keys)-1}
	}
	return out, nil
}

func keysUnavailable(err error) error {
	return &status.Error{Code: status.ErrUnavailable.Code, Message: "the PII key bucket or the key encryption key did not answer: " + err.Error(), Err: err}
}

// Keys returns namespace name's data keys.
func (c *AdminClient) Keys(ctx context.Context, name string) (AdminKeysReply, error) {
	var out AdminKeysReply
	return out, c.call(ctx, AdminKeys, AdminNameRequest{Name: name}, &out)
}

// RotateKey adds a new data key to namespace name and returns its keys.
func (c *AdminClient) RotateKey(ctx context.Context, name, by string) (AdminKeysReply, error) {
	var out AdminKeysReply
	return out, c.call(ctx, AdminKeysRotate, AdminKeysRotateRequest{Name: name, By: by}, &out)
}

// Rewrap rewraps every data key under the serving process's KEK.
func (c *AdminClient) Rewrap(ctx context.Context) (AdminRewrapReply, error) {
	var out AdminRewrapReply
	return out, c.call(ctx, AdminKeysRewrap, struct{}{}, &out)
}

// Forget forgets the personal data of record id of namespace name.
func (c *AdminClient) Forget(ctx context.Context, name string, id []byte, by string) (AdminForgetReply, error) {
	var out AdminForgetReply
	return out, c.call(ctx, AdminForget, AdminForgetRequest{Name: name, ID: id, By: by}, &out)
}

// WriteText writes the keys as prism keys list shows them.
func (r AdminKeysReply) WriteText(out io.Writer) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintf(tw, "namespace %s: new values are sealed under the current data key; KEK of this process: %s\n", r.Name, r.KEK)
	fmt.Fprintln(tw, "KEY\tWRAPPED BY\tCREATED\tCURRENT")
	for _, k := range r.Keys {
		cur := ""
		if k.Current {
			cur = "yes"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", k.ID, k.KEKID, k.Created.Format(time.RFC3339), cur)
	}
	return tw.Flush()
}

// WriteText says how many data keys were rewrapped, under which KEK.
func (r AdminRewrapReply) WriteText(out io.Writer) error {
	_, err := fmt.Fprintf(out, "rewrapped %d data keys under %s\n", r.Rewrapped, r.KEK)
	return err
}

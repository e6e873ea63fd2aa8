package node

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/prism-data/prism/auth"
	"github.com/prism-data/prism/namespaces"
	"github.com/prism-data/prism/replay"
	"github.com/prism-data/prism/status"
	"github.com/prism-data/prism/subjects"
)

// OpVerify is the owner operation that verifies a namespace's migration:
// a request on subjects.Owner(ns, OpVerify) with a VerifyRequest body,
// answered by the node that projects ns with a VerifyReply (through
// namespaces.ReplyAdmin, as the admin API answers).
const OpVerify = "verify"

// VerifyRequest asks the node projecting a namespace to compare the two
// targets of its migration.
type VerifyRequest struct {
	// By is who asks, recorded with the result.
	By string `json:"by,omitempty"`
	// TimeoutMS bounds the verify; 0 is 10 minutes.
	TimeoutMS int64 `json:"timeout_ms,omitempty"`
}

// VerifyReply is the result of a verify and the migration state it led
// to.
type VerifyReply struct {
	Report replay.Report             `json:"report"`
	State  namespaces.MigrationState `json:"state"`
}

const defaultVerifyTimeout = 10 * time.Minute

// serveVerify answers prism.$owner.verify.<ns> for namespace ns while this
// process runs its projectors; it returns the subscription.
func (s *namespaceSet) serveVerify(ns string) (*nats.Subscription, error) {
	nc := s.js.Conn()
	return nc.QueueSubscribe(subjects.Owner(ns, OpVerify), "prism-owner", func(m *nats.Msg) {
		// A verify reads both targets whole: off the subscription's
		// goroutine, owned by the set so that stop waits for it.
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			start := time.Now()
			p, err := s.admitOwner(m.Header, ns)
			var reply any
			if err == nil {
				reply, err = s.verify(s.ctx, ns, m.Data, p)
			}
			if aerr := s.auditOwner(p, ns, "migrate.verify", err, time.Since(start)); aerr != nil {
				reply, err = nil, aerr
			}
			namespaces.ReplyAdmin(nc, m, "migrate.verify", reply, err, s.log)
		}()
	})
}

// verify compares the old and new targets of namespace ns's migration and
// records the result in the registry: verified when they hold the same
// records, back to (or still) shadowing otherwise.
func (s *namespaceSet) verify(ctx context.Context, ns string, body []byte, p auth.Principal) (VerifyReply, error) {
	var req VerifyRequest
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return VerifyReply{}, &status.Error{Code: status.ErrInvalidArgument.Code, Message: "request body: " + err.Error()}
		}
	}
	if p.Via != auth.ViaNone && p.Via != auth.ViaService {
		req.By = p.Name // who verified, as authenticated, not as claimed
	}
	timeout := defaultVerifyTimeout
	if req.TimeoutMS > 0 {
		timeout = time.Duration(req.TimeoutMS) * time.Millisecond
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()

	// The registry says where the migration stands: this process's own
	// view follows it a moment later (it may not have seen the caught-up
	// transition it recorded itself yet).
	e, err := s.reg.Get(ctx, ns)
	if err != nil {
		return VerifyReply{}, err
	}
	m := e.Migration
	s.mu.Lock()
	sv := s.served[ns]
	var old, new *targetRun
	var abstraction string
	if sv != nil && m != nil {
		old, new = sv.targets[m.From.Name], sv.targets[m.To.Name]
		abstraction = sv.ns.Abstraction
	}
	s.mu.Unlock()
	switch {
	case sv == nil:
		return VerifyReply{}, &status.Error{Code: status.ErrUnavailable.Code, Message: fmt.Sprintf("namespace %s is not served by this process any more; retry", ns)}
	case m == nil || !slices.Contains(shadowStates, m.State):
		state := "none"
		if m != nil {
			state = string(m.State)
		}
		return VerifyReply{}, &status.Error{Code: status.ErrFailedPrecondition.Code, Message: fmt.Sprintf("namespace %s: verify needs a migration that is shadowing, verified or cut over, not %s; see prism migrate status %s", ns, state, ns)}
	case old == nil || new == nil:
		return VerifyReply{}, &status.Error{Code: status.ErrUnavailable.Code, Message: fmt.Sprintf("namespace %s: the targets of its migration are not both running here yet; retry", ns)}
	}
	oldSrc, ok1 := verifySource(abstraction, old.store)
	newSrc, ok2 := verifySource(abstraction, new.store)
	if !ok1 || !ok2 {
		return VerifyReply{}, &status.Error{Code: status.ErrUnimplemented.Code, Message: fmt.Sprintf("namespace %s: verify compares keyvalue, entity and graph targets; %s namespaces are not compared yet", ns, abstraction)}
	}
	s.log.Info("verify started", "namespace", ns, "old", old.target.Name, "new", new.target.Name, "by", req.By)
	rep, err := replay.Verify(ctx, oldSrc, newSrc)
	if err != nil {
		return VerifyReply{}, &status.Error{Code: status.ErrUnavailable.Code, Message: fmt.Sprintf("namespace %s: verify stopped after %d records: %v", ns, rep.Compared, err), Err: err}
	}
	sum := namespaces.VerifySummary{At: time.Now().UTC(), By: req.By, Checkpoint: rep.Checkpoint, Compared: rep.Compared, Matched: rep.Matched,
		Missing: rep.Missing, Extra: rep.Extra, Differing: rep.Differing + rep.Unsettled, Passed: rep.Passed()}
	// Recorded even when the verify used up its time: the result is
	// worth keeping, and the operator may have gone.
	rctx, rcancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer rcancel()
	e, err = namespaces.RecordVerify(rctx, s.reg, ns, sum, req.By)
	if err != nil {
		return VerifyReply{}, err
	}
	s.log.Info("verify done", "namespace", ns, "passed", rep.Passed(), "compared", rep.Compared, "missing", rep.Missing, "extra", rep.Extra, "differing", rep.Differing, "unsettled", rep.Unsettled, "state", e.Migration.State)
	return VerifyReply{Report: rep, State: e.Migration.State}, nil
}

// verifySource is store as replay.Verify reads a target of abstraction:
// a keyvalue one as it is, an entity one with its records, lineage and
// index entries, a graph one with its edges and vertices.
func verifySource(abstraction string, store any) (replay.Source, bool) {
	switch abstraction {
	case namespaces.AbstractionEntity:
		es, ok := store.(replay.EntitySource)
		if !ok {
			return nil, false
		}
		return replay.EntityVerifySource(es), true
	case namespaces.AbstractionGraph:
		gs, ok := store.(replay.GraphSource)
		if !ok {
			return nil, false
		}
		return replay.GraphVerifySource(gs), true
	}
	src, ok := store.(replay.Source)
	return src, ok
}

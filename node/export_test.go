package node

import (
	"context"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/prism-data/prism/auth"
)

// What the external tests (package node_test) look at inside a Node.

// RegistryChanges is n's prism_registry_changes_total.
func RegistryChanges(n *Node) *prometheus.CounterVec { return n.set.changes }

// ServedBatchSize is the batch size the projectors of namespace ns were
// built with.
func ServedBatchSize(n *Node, ns string) int {
	n.set.mu.Lock()
	defer n.set.mu.Unlock()
	return n.set.served[ns].plan.BatchSize.Value
}

// ForgetUnseen stops the namespaces not in seen, as a new watch of the
// registry does.
func ForgetUnseen(ctx context.Context, n *Node, seen map[string]bool) { n.set.forgetUnseen(ctx, seen) }

func principal(name string, groups ...string) auth.Principal {
	return auth.Principal{Name: name, Groups: groups, Via: auth.ViaTLS}
}

func policyOf(perm auth.Permission, who ...string) auth.Policy {
	var p auth.Policy
	switch perm {
	case auth.Write:
		p.Write = who
	case auth.Read:
		p.Read = who
	}
	return p
}

// ProjectsPrimary reports whether n runs the projector of namespace ns's
// primary target (false on standby).
func ProjectsPrimary(n *Node, ns string) bool {
	n.set.mu.Lock()
	defer n.set.mu.Unlock()
	sv := n.set.served[ns]
	if sv == nil {
		return false
	}
	run := sv.primaryRun()
	return run != nil && run.proj != nil
}

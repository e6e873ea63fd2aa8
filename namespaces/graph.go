package namespaces

import (
	"fmt"
	"slices"
	"strings"
)

// AbstractionGraph: vertices and edges with labels and properties
// (upsert, delete, get, neighbours, bounded traversal, shortest path;
// docs/graph.md).
const AbstractionGraph = "graph"

// GraphBackends are the backends that serve the graph abstraction.
var GraphBackends = []string{"sqlite", "postgres", "neptune"}

// Defaults and ceilings of GraphConfig.
const (
	DefaultGraphMaxDepth   = 4
	DefaultGraphMaxResults = 1000
	// MaxGraphMaxDepth is the highest max_depth a namespace may set: a
	// traversal's work grows with the depth-th power of the degree.
	MaxGraphMaxDepth = 10
	// MaxGraphMaxResults is the highest max_results a namespace may set:
	// a traversal's reply is held in memory and sent in one message.
	MaxGraphMaxResults = 100_000
)

// GraphConfig bounds the traversals of a graph namespace. Zero values
// mean the defaults; it must be empty for the other abstractions.
type GraphConfig struct {
	// MaxDepth is the deepest traversal or shortest path, in hops:
	// 1 to MaxGraphMaxDepth, 0 for DefaultGraphMaxDepth.
	MaxDepth int `yaml:"max_depth,omitempty" json:"max_depth,omitempty"`
	// MaxResults is the most vertices one traversal returns: 1 to
	// MaxGraphMaxResults, 0 for DefaultGraphMaxResults. A traversal that
	// reaches more is refused (INVALID_ARGUMENT), not truncated.
	MaxResults int `yaml:"max_results,omitempty" json:"max_results,omitempty"`
}

// IsZero reports whether nothing is set.
func (c GraphConfig) IsZero() bool { return c == GraphConfig{} }

// Limits returns c's max depth and max results, defaults filled in.
func (c GraphConfig) Limits() (maxDepth, maxResults int) {
	maxDepth, maxResults = c.MaxDepth, c.MaxResults
	if maxDepth == 0 {
		maxDepth = DefaultGraphMaxDepth
	}
	if maxResults == 0 {
		maxResults = DefaultGraphMaxResults
	}
	return maxDepth, maxResults
}

// validateGraph checks the graph section against the abstraction.
func (n Namespace) validateGraph() error {
	if n.Abstraction != AbstractionGraph {
		if n.Backend == "neptune" {
			return fmt.Errorf("namespace %s: backend neptune serves abstraction %s only, not %s", n.Name, AbstractionGraph, n.Abstraction)
		}
		if !n.Graph.IsZero() {
			return fmt.Errorf("namespace %s: a graph section needs abstraction: %s, not %s", n.Name, AbstractionGraph, n.Abstraction)
		}
		return nil
	}
	if n.Backend != BackendAuto && !slices.Contains(GraphBackends, n.Backend) {
		return fmt.Errorf("namespace %s: backend %s does not serve abstraction %s; use %s", n.Name, n.Backend, AbstractionGraph, strings.Join(GraphBackends, ", "))
	}
	if !n.PII.IsZero() || !n.Fields.IsZero() {
		return fmt.Errorf("namespace %s: PII fields are not supported on abstraction %s yet; remove fields and pii", n.Name, AbstractionGraph)
	}
	if n.PublishChanges {
		return fmt.Errorf("namespace %s: publish_changes is not supported on abstraction %s yet", n.Name, AbstractionGraph)
	}
	if d := n.Graph.MaxDepth; d < 0 || d > MaxGraphMaxDepth {
		return fmt.Errorf("namespace %s: graph.max_depth %d: must be 1 to %d (0 for the default %d)", n.Name, d, MaxGraphMaxDepth, DefaultGraphMaxDepth)
	}
	if r := n.Graph.MaxResults; r < 0 || r > MaxGraphMaxResults {
		return fmt.Errorf("namespace %s: graph.max_results %d: must be 1 to %d (0 for the default %d)", n.Name, r, MaxGraphMaxResults, DefaultGraphMaxResults)
	}
	return nil
}

// graphLimits are the plan's rows of graph namespace ns.
func graphLimits(ns Namespace) (depth, results Derived[int]) {
	d, r := ns.Graph.Limits()
	depth = Derived[int]{d, fmt.Sprintf("the default (%d hops)", DefaultGraphMaxDepth)}
	if ns.Graph.MaxDepth != 0 {
		depth.Reason = "named in the spec (graph.max_depth)"
	}
	results = Derived[int]{r, fmt.Sprintf("the default (%d vertices)", DefaultGraphMaxResults)}
	if ns.Graph.MaxResults != 0 {
		results.Reason = "named in the spec (graph.max_results)"
	}
	return depth, results
}

package node

import (
	"context"
	"errors"
	"fmt"

	"github.com/prism-data/prism/backends/neptune"
)

// errNoNeptune is the error of a neptune target without a cluster.
var errNoNeptune = errors.New("backend neptune needs a cluster endpoint: start prism serve with --neptune-endpoint or PRISM_NEPTUNE_ENDPOINT (the region and credentials come from the AWS SDK's default chain: AWS_REGION, profile, IMDS, web identity)")

// openNeptune opens target target of graph namespace ns in the cluster
// c.NeptuneEndpoint, and says where it keeps the data.
func openNeptune(ctx context.Context, c Config, ns, target string) (*neptune.Store, string, error) {
	if c.NeptuneEndpoint == "" {
		return nil, "", errNoNeptune
	}
	graph := neptune.GraphName(ns, target)
	st, err := neptune.New(ctx, c.NeptuneEndpoint, graph)
	return st, "neptune graph " + graph + " at " + c.NeptuneEndpoint, err
}

// checkNeptune says what keeps this node from serving target target of
// namespace ns on Neptune: no endpoint, or a cluster that does not answer
// a signed checkpoint read (unreachable, wrong region or credentials, IAM
// policy).
func checkNeptune(ctx context.Context, c Config, ns, target string) error {
	st, _, err := openNeptune(ctx, c, ns, target)
	if err != nil {
		return err
	}
	defer st.Close()
	if _, err := st.Checkpoint(ctx); err != nil {
		return fmt.Errorf("the Neptune cluster at %s does not answer (%v): check the endpoint, the AWS region and credentials, and their neptune-db IAM policy", c.NeptuneEndpoint, err)
	}
	return nil
}

// dropNeptune deletes the graph of target target of namespace ns.
func dropNeptune(ctx context.Context, c Config, ns, target string) error {
	st, _, err := openNeptune(ctx, c, ns, target)
	if err != nil {
		return err
	}
	defer st.Close()
	return st.Drop(ctx)
}

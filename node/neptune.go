package node

import (
	"context"
	"errors"

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

// dropNeptune deletes the graph of target target of namespace ns.
func dropNeptune(ctx context.Context, c Config, ns, target string) error {
	st, _, err := openNeptune(ctx, c, ns, target)
	if err != nil {
		return err
	}
	defer st.Close()
	return st.Drop(ctx)
}

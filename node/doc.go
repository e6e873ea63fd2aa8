// Package node is the runtime one prism serve process runs: it connects to
// NATS (or embeds a server), serves the namespaces of the registry through
// the gateway, runs a projector per namespace target, follows the registry
// for changes (opening, reconfiguring and dropping namespaces live), runs
// the serving side of migrations (backfill throttle, shadow routing,
// verify), the TTL sweeper and the stream compactors, and answers
// /healthz, /readyz and /metrics.
//
// Start a Node with Start and stop it with Close:
//
//	n, err := node.Start(ctx, node.Config{DataDir: dir}, log, node.Seed{})
//	if err != nil {
//		return err
//	}
//	defer n.Close(ctx)
//
// The files split the runtime by concern: node.go (Start, Close,
// accessors), config.go, nats.go (the embedded server), namespaces.go (the
// set of served namespaces), follow.go (following the registry),
// lifecycle.go (opening, reconfiguring and removing a namespace),
// targets.go (backends and projectors of one target), migration.go,
// verify.go, background.go (sweeper, compactor), status.go, health.go.
package node

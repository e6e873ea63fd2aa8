// Package namespaces is Prism's control plane: the namespace spec and its
// YAML and JSON forms (Namespace), the settings Derive derives from it
// (Plan), plan and apply against the registry (PlanApply, Apply), the
// registry itself, a NATS KV bucket (Registry), the admin API over NATS
// (Admin, AdminClient), the migration state machine kept in the registry
// (StartMigration, Cutover, Rollback, Finalize), and the namespace streams a
// plan configures (ApplyStreams).
//
// It does not import the gateway: a command that only plans, applies or
// migrates pulls in no request server. The gateway (the data plane) imports
// it for the Namespace it serves; errors on the wire of both are
// status.Error.
package namespaces

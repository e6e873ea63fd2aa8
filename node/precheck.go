package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/prism-data/prism/backends/kafka"
	"github.com/prism-data/prism/namespaces"
)

// checkTimeout bounds checkTarget: an admin request waits for it.
const checkTimeout = 3 * time.Second

// checkTarget is the admin API's namespaces.AdminConfig.CheckTarget: it
// says what this node lacks to open target t of namespace n, before the
// namespace or the migration is stored. A postgres target needs a
// connection string (its own or --postgres-dsn) and a server that accepts
// a connection with it; a kafka target brokers (the namespace's or
// --kafka-brokers) of which one listens; a neptune target
// --neptune-endpoint and a cluster that answers a signed request. SQLite
// and NATS KV need nothing
// this node might lack. It takes at most checkTimeout.
func (c Config) checkTarget(ctx context.Context, n namespaces.Namespace, t namespaces.Target) error {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	switch t.Backend {
	case "postgres":
		dsn := targetDSN(c, t)
		if dsn == "" {
			return errors.New("no PostgreSQL connection string: set postgres.dsn in the namespace file (prism migrate start: --postgres-dsn), or start prism serve with --postgres-dsn or PRISM_POSTGRES_DSN")
		}
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			// pgx names host, user and database, never the password.
			return fmt.Errorf("PostgreSQL does not accept a connection (%v): check the connection string and that the server runs", err)
		}
		_ = conn.Close(ctx)
	case "neptune":
		return checkNeptune(ctx, c, n.Name, t.Name)
	case "kafka":
		brokers, err := kafkaBrokers(c, n)
		if err != nil {
			return err
		}
		if err := kafka.Reachable(ctx, brokers, checkTimeout); err != nil {
			return fmt.Errorf("%w; start one there, or name reachable ones in kafka.brokers or prism serve --kafka-brokers", err)
		}
	}
	return nil
}

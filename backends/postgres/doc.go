// Package postgres is the PostgreSQL projection target of Prism (pgx/v5).
package postgres

import _ "github.com/jackc/pgx/v5/pgxpool" // pinned for the adapter in progress

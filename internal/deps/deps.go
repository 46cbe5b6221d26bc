// Package deps pins the modules chosen for the project until the packages that use them land.
package deps

import (
	_ "github.com/EventStore/EventStore-Client-Go/v4/esdb"
	_ "github.com/google/uuid"
	_ "github.com/jackc/pgx/v5/pgxpool"
	_ "github.com/ory/dockertest/v3"
	_ "github.com/shopspring/decimal"
	_ "github.com/stretchr/testify/require"
	_ "google.golang.org/grpc"
	_ "modernc.org/sqlite"
)

module github.com/eventsourcing-go/eventsourcing/recorder/postgres

go 1.26.0

require (
	github.com/google/uuid v1.6.0
	github.com/jackc/pgx/v5 v5.12.0
	github.com/shopspring/decimal v1.6.0 // indirect
	github.com/stretchr/testify v1.12.1
	go.opentelemetry.io/otel v1.47.0 // indirect
	go.opentelemetry.io/otel/metric v1.47.0 // indirect
	go.opentelemetry.io/otel/trace v1.47.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/go-logr/logr v1.4.4 // indirect
	github.com/go-logr/stdr v1.2.2 // indirect
	github.com/jackc/pgpassfile v1.0.0 // indirect
	github.com/jackc/pgservicefile v0.0.0-20240606120523-5a60cdf6a761 // indirect
	github.com/jackc/puddle/v2 v2.2.3 // indirect
	go.opentelemetry.io/auto/sdk v1.2.1 // indirect
	go.opentelemetry.io/otel/log v1.47.0 // indirect
	golang.org/x/sync v0.24.0 // indirect
	golang.org/x/text v0.42.0 // indirect
)

require (
	github.com/eventsourcing-go/eventsourcing v0.0.0-00010101000000-000000000000
	github.com/eventsourcing-go/eventsourcing/projection/pgview v0.0.0-00010101000000-000000000000
)

// No version of the project's modules is published: each one is
// the directory beside this one (go.work does the same for make).
replace (
	github.com/eventsourcing-go/eventsourcing => ../..
	github.com/eventsourcing-go/eventsourcing/projection/pgview => ../../projection/pgview
)

module github.com/eventsourcing-go/eventsourcing/cmd/esdb-emulator

go 1.26.0

require (
	github.com/EventStore/EventStore-Client-Go/v4 v4.2.0
	github.com/dlclark/regexp2/v2 v2.13.0 // indirect
	github.com/dop251/goja v0.0.0-20260311135729-065cd970411c // indirect
	github.com/google/uuid v1.6.0
	github.com/shopspring/decimal v1.6.0 // indirect
	github.com/stretchr/testify v1.12.1
	go.opentelemetry.io/otel v1.47.0 // indirect
	go.opentelemetry.io/otel/metric v1.47.0 // indirect
	go.opentelemetry.io/otel/trace v1.47.0 // indirect
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	google.golang.org/genproto/googleapis/rpc v0.0.0-20260928230214-8a89bd6388cc // indirect
	google.golang.org/grpc v1.85.0
	google.golang.org/protobuf v1.36.12 // indirect
)

require (
	github.com/cespare/xxhash/v2 v2.3.0 // indirect
	github.com/dlclark/regexp2 v1.11.4 // indirect
	github.com/felixge/httpsnoop v1.1.0 // indirect
	github.com/go-logr/logr v1.4.4 // indirect
	github.com/go-logr/stdr v1.2.2 // indirect
	github.com/go-sourcemap/sourcemap v2.1.3+incompatible // indirect
	github.com/google/pprof v0.0.0-20261016150608-1facf8f91b50 // indirect
	go.opentelemetry.io/auto/sdk v1.2.1 // indirect
	go.opentelemetry.io/otel/log v1.47.0 // indirect
	golang.org/x/net v0.60.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.42.0 // indirect
)

require (
	github.com/eventsourcing-go/eventsourcing v0.0.0-00010101000000-000000000000 // indirect
	github.com/eventsourcing-go/eventsourcing/esdb v0.0.0-00010101000000-000000000000
	github.com/eventsourcing-go/eventsourcing/grpcapp v0.0.0-00010101000000-000000000000
)

// No version of the project's modules is published: each one is
// the directory beside this one (go.work does the same for make).
replace (
	github.com/eventsourcing-go/eventsourcing => ../..
	github.com/eventsourcing-go/eventsourcing/esdb => ../../esdb
	github.com/eventsourcing-go/eventsourcing/example => ../../example
	github.com/eventsourcing-go/eventsourcing/grpcapp => ../../grpcapp
	github.com/eventsourcing-go/eventsourcing/projection/pgview => ../../projection/pgview
	github.com/eventsourcing-go/eventsourcing/projection/sqlview => ../../projection/sqlview
	github.com/eventsourcing-go/eventsourcing/recorder/postgres => ../../recorder/postgres
	github.com/eventsourcing-go/eventsourcing/recorder/sqlite => ../../recorder/sqlite
)

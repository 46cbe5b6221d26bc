package benchreport

import "slices"

// Metrics the rows read. A Rate is a count per second (higher is better);
// anything else is a time per operation.
var (
	nsPerOp      = Metric{Unit: "ns/op", Time: 1}
	eventsPerSec = Metric{Unit: "events/s", Rate: true}
	gets         = Metric{Unit: "gets/s", Rate: true}
	cmdsPerSec   = Metric{Unit: "cmds/s", Rate: true}

	// The medians of benchmarks that alternate a workload and its substrate
	// operation by operation in one loop.
	moduleNs = Metric{Unit: "module-ns/op", Time: 1}
	rawNs    = Metric{Unit: "raw-ns/op", Time: 1}
	saveNs   = Metric{Unit: "save-ns/op", Time: 1}
	bareUs   = Metric{Unit: "bare-p50-µs", Time: 1e3}
	otelUs   = Metric{Unit: "otel-p50-µs", Time: 1e3}
	absentNs = Metric{Unit: "absent-ns/save", Time: 1}

	// The process's CPU time per unit of work while timed.
	cpuPerCmd   = Metric{Unit: "cpu-ns/cmd", Time: 1}
	cpuPerEvent = Metric{Unit: "cpu-ns/event", Time: 1}
)

// needsPostgres marks the rows whose benchmarks need a PostgreSQL server.
const needsPostgres = "postgres"

// Rows returns the report's rows, in the order of the table: each workload
// beside its substrate (the raw cost it is measured against) or an absolute
// target. Each call returns a fresh copy, so a caller's changes stay its own.
func Rows() []Row { return slices.Clone(rows) }

var rows = []Row{
	{
		Name:      "esdb recorder, batch of 10 events vs the bare client",
		Workload:  Side{Pkg: "./esdb", Bench: "BenchmarkPaired/InsertBatch10", Metric: moduleNs},
		Substrate: &Side{Pkg: "./esdb", Bench: "BenchmarkPaired/InsertBatch10", Metric: rawNs},
		Target:    Target{MaxRatio: 1.2},
	},
	{
		Name:      "esdb recorder, batch of 100 events vs the bare client",
		Workload:  Side{Pkg: "./esdb", Bench: "BenchmarkPaired/InsertBatch100", Metric: moduleNs},
		Substrate: &Side{Pkg: "./esdb", Bench: "BenchmarkPaired/InsertBatch100", Metric: rawNs},
		Target:    Target{MaxRatio: 1.2},
	},
	{
		Name:      "esdb recorder, single save vs the bare client",
		Workload:  Side{Pkg: "./esdb", Bench: "BenchmarkPaired/InsertOne", Metric: moduleNs},
		Substrate: &Side{Pkg: "./esdb", Bench: "BenchmarkPaired/InsertOne", Metric: rawNs},
		Target:    Target{MaxRatio: 1.05},
	},
	{
		Name:      "esdb recorder, get a 10-event aggregate vs the bare client",
		Workload:  Side{Pkg: "./esdb", Bench: "BenchmarkPaired/SelectAggregate10", Metric: moduleNs},
		Substrate: &Side{Pkg: "./esdb", Bench: "BenchmarkPaired/SelectAggregate10", Metric: rawNs},
		Target:    Target{MaxRatio: 1.05},
	},
	{
		Name:      "esdbtest, one-event appends from the official client (beside a do-nothing server)",
		Workload:  Side{Pkg: "./esdb/esdbtest", Bench: "BenchmarkAppendSingle/server", Metric: eventsPerSec, Also: cpuPerEvent},
		Substrate: &Side{Pkg: "./esdb/esdbtest", Bench: "BenchmarkAppendSingle/floor", Metric: eventsPerSec},
		Target:    Target{AtLeast: 30_000},
	},
	{
		// Both in one loop, alternating operation by operation on the same
		// pool: the commit's fsync dominates both and swings with the disk's
		// other traffic, which separate runs would not share.
		Name:      "PostgreSQL save vs a raw single-row insert transaction (medians of one alternating loop)",
		Workload:  Side{Pkg: "./recorder/postgres", Bench: "BenchmarkSaveVsRaw", Metric: saveNs},
		Substrate: &Side{Pkg: "./recorder/postgres", Bench: "BenchmarkSaveVsRaw", Metric: rawNs},
		Target:    Target{MaxRatio: 1.1},
		Needs:     needsPostgres,
	},
	{
		Name:      "PostgreSQL save vs a raw single-row insert transaction (separate benchmarks)",
		Workload:  Side{Pkg: "./recorder/postgres", Bench: "BenchmarkRecorder/InsertOne", Metric: nsPerOp},
		Substrate: &Side{Pkg: "./recorder/postgres", Bench: "BenchmarkRawInsert/Tx", Metric: nsPerOp},
		Target:    Target{MaxRatio: 1.1},
		Needs:     needsPostgres,
	},
	{
		Name:     "DogSchool → Counters, memory, no aggregate cache, single-threaded runner",
		Workload: Side{Pkg: "./example/dogschool", Bench: "BenchmarkDogSchoolCounters/SingleThreaded/memory/nocache", Metric: cmdsPerSec, Also: cpuPerCmd, Benchtime: "20x"},
		Target:   Target{AtLeast: 150_000},
	},
	{
		Name:     "DogSchool → Counters, memory, no aggregate cache, multi-threaded runner",
		Workload: Side{Pkg: "./example/dogschool", Bench: "BenchmarkDogSchoolCounters/MultiThreaded/memory/nocache", Metric: cmdsPerSec, Also: cpuPerCmd, Benchtime: "20x"},
		Target:   Target{AtLeast: 150_000},
	},
	{
		// The substrate does what the backend stores per command, in the
		// same binary: DogSchool's event, then Counters' event with its
		// tracking position, through the recorder interfaces.
		Name:      "DogSchool → Counters, SQLite NORMAL, no cache, vs the backend's own writes per command",
		Workload:  Side{Pkg: "./example/dogschool", Bench: "BenchmarkDogSchoolCounters/SingleThreaded/sqlite-normal/nocache", Metric: cmdsPerSec, Also: cpuPerCmd, Benchtime: "2x"},
		Substrate: &Side{Pkg: "./example/dogschool", Bench: "BenchmarkDogSchoolCountersSubstrate/sqlite-normal", Metric: cmdsPerSec, Benchtime: "300x"},
		Target:    Target{MaxRatio: 1.3},
	},
	{
		Name:      "DogSchool → Counters, PostgreSQL, no cache, vs the backend's own writes per command",
		Workload:  Side{Pkg: "./example/dogschool", Bench: "BenchmarkDogSchoolCounters/SingleThreaded/postgres/nocache", Metric: cmdsPerSec, Also: cpuPerCmd, Benchtime: "1x"},
		Substrate: &Side{Pkg: "./example/dogschool", Bench: "BenchmarkDogSchoolCountersSubstrate/postgres", Metric: cmdsPerSec, Benchtime: "300x"},
		Target:    Target{MaxRatio: 1.3},
		Needs:     needsPostgres,
	},
	{
		Name:     "save a new 1-event aggregate, memory",
		Workload: Side{Pkg: ".", Bench: "BenchmarkSave", Metric: eventsPerSec},
		Target:   Target{AtLeast: 1_000_000},
	},
	{
		Name:     "get a 10-event aggregate, memory",
		Workload: Side{Pkg: ".", Bench: "BenchmarkGet", Metric: gets},
		Target:   Target{AtLeast: 600_000},
	},
	{
		Name:      "gRPC remote GetOrder call vs a bare unary call (p50, alternating in one loop)",
		Workload:  Side{Pkg: "./grpcapp", Bench: "BenchmarkCallVsBare", Metric: Metric{Unit: "call-p50-µs", Time: 1e3}},
		Substrate: &Side{Pkg: "./grpcapp", Bench: "BenchmarkCallVsBare", Metric: bareUs},
		Target:    Target{MaxRatio: 1.5},
	},
	// Instrumentation: the same work without OpenTelemetry and with it,
	// alternating in one loop.
	{
		Name:      "save with instrumentation disabled (no-op providers) vs none, memory",
		Workload:  Side{Pkg: "./telemetry", Bench: "BenchmarkSaveOverhead", Metric: Metric{Unit: "disabled-ns/save", Time: 1}},
		Substrate: &Side{Pkg: "./telemetry", Bench: "BenchmarkSaveOverhead", Metric: absentNs},
		Target:    Target{MaxRatio: 1.02},
	},
	{
		Name:      "save with instrumentation enabled (in-memory exporter) vs none, memory",
		Workload:  Side{Pkg: "./telemetry", Bench: "BenchmarkSaveOverhead", Metric: Metric{Unit: "enabled-ns/save", Time: 1}},
		Substrate: &Side{Pkg: "./telemetry", Bench: "BenchmarkSaveOverhead", Metric: absentNs},
		Target:    Target{MaxRatio: 1.15},
	},
	{
		Name:      "gRPC GetOrder call with instrumentation disabled vs none (p50)",
		Workload:  Side{Pkg: "./grpcapp", Bench: "BenchmarkTelemetry/disabled", Metric: otelUs},
		Substrate: &Side{Pkg: "./grpcapp", Bench: "BenchmarkTelemetry/disabled", Metric: bareUs},
		Target:    Target{MaxRatio: 1.02},
	},
	{
		Name:      "gRPC GetOrder call with instrumentation enabled (in-memory exporter) vs none (p50)",
		Workload:  Side{Pkg: "./grpcapp", Bench: "BenchmarkTelemetry/enabled", Metric: otelUs},
		Substrate: &Side{Pkg: "./grpcapp", Bench: "BenchmarkTelemetry/enabled", Metric: bareUs},
		Target:    Target{MaxRatio: 1.15},
	},
}

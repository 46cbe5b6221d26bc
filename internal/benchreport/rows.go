package benchreport

// Metrics the rows read. A Rate is a count per second (higher is better);
// anything else is a time per operation.
var (
	nsPerOp      = Metric{Unit: "ns/op", Nanoseconds: true}
	eventsPerSec = Metric{Unit: "events/s", Rate: true}
	gets         = Metric{Unit: "gets/s", Rate: true}
	cmdsPerSec   = Metric{Unit: "cmds/s", Rate: true}
)

// needsPostgres marks the rows whose benchmarks need a PostgreSQL server.
const needsPostgres = "postgres"

// Rows are the report's rows, in the order of the table: each workload beside
// its substrate (the raw cost it is measured against) or an absolute target.
var Rows = []Row{
	{
		Name:      "esdb recorder, batch of 10 events vs the bare client",
		Workload:  Side{Pkg: "./esdb", Bench: "BenchmarkRecorders/InsertBatch10", Metric: nsPerOp},
		Substrate: &Side{Pkg: "./esdb", Bench: "BenchmarkRaw/InsertBatch10", Metric: nsPerOp},
		Target:    Target{MaxRatio: 1.2},
	},
	{
		Name:      "esdb recorder, batch of 100 events vs the bare client",
		Workload:  Side{Pkg: "./esdb", Bench: "BenchmarkRecorders/InsertBatch100", Metric: nsPerOp},
		Substrate: &Side{Pkg: "./esdb", Bench: "BenchmarkRaw/InsertBatch100", Metric: nsPerOp},
		Target:    Target{MaxRatio: 1.2},
	},
	{
		Name:      "esdb recorder, single save vs the bare client",
		Workload:  Side{Pkg: "./esdb", Bench: "BenchmarkRecorders/InsertOne", Metric: nsPerOp},
		Substrate: &Side{Pkg: "./esdb", Bench: "BenchmarkRaw/InsertOne", Metric: nsPerOp},
		Target:    Target{MaxRatio: 1.05},
	},
	{
		Name:      "esdb recorder, get a 10-event aggregate vs the bare client",
		Workload:  Side{Pkg: "./esdb", Bench: "BenchmarkRecorders/SelectAggregate10", Metric: nsPerOp},
		Substrate: &Side{Pkg: "./esdb", Bench: "BenchmarkRaw/SelectAggregate10", Metric: nsPerOp},
		Target:    Target{MaxRatio: 1.05},
	},
	{
		Name:      "esdbtest, one-event appends from the official client (beside a do-nothing server)",
		Workload:  Side{Pkg: "./esdb/esdbtest", Bench: "BenchmarkAppendSingle/server", Metric: eventsPerSec},
		Substrate: &Side{Pkg: "./esdb/esdbtest", Bench: "BenchmarkAppendSingle/floor", Metric: eventsPerSec},
		Target:    Target{AtLeast: 30_000},
	},
	{
		// Both in one loop, alternating operation by operation on the same
		// pool: the commit's fsync dominates both and swings with the disk's
		// other traffic, which separate runs would not share.
		Name:      "PostgreSQL save vs a raw single-row insert transaction (medians of one alternating loop)",
		Workload:  Side{Pkg: "./recorder/postgres", Bench: "BenchmarkSaveVsRaw", Metric: Metric{Unit: "save-ns", Nanoseconds: true}},
		Substrate: &Side{Pkg: "./recorder/postgres", Bench: "BenchmarkSaveVsRaw", Metric: Metric{Unit: "raw-ns", Nanoseconds: true}},
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
		Workload: Side{Pkg: "./example/dogschool", Bench: "BenchmarkDogSchoolCounters/SingleThreaded/memory/nocache", Metric: cmdsPerSec},
		Target:   Target{AtLeast: 150_000},
	},
	{
		Name:     "DogSchool → Counters, memory, no aggregate cache, multi-threaded runner",
		Workload: Side{Pkg: "./example/dogschool", Bench: "BenchmarkDogSchoolCounters/MultiThreaded/memory/nocache", Metric: cmdsPerSec},
		Target:   Target{AtLeast: 150_000},
	},
	{
		// A command saves twice: the dog's event, then Counters' event with
		// its tracking position.
		Name:      "DogSchool → Counters, SQLite NORMAL, no cache, vs two recorder saves per command",
		Workload:  Side{Pkg: "./example/dogschool", Bench: "BenchmarkDogSchoolCounters/SingleThreaded/sqlite-normal/nocache", Metric: cmdsPerSec},
		Substrate: &Side{Pkg: "./recorder/sqlite", Bench: "BenchmarkRecorder/NORMAL/InsertOne", Metric: nsPerOp, Scale: 2},
		Target:    Target{MaxRatio: 1.3},
	},
	{
		Name:      "DogSchool → Counters, PostgreSQL, no cache, vs two recorder saves per command",
		Workload:  Side{Pkg: "./example/dogschool", Bench: "BenchmarkDogSchoolCounters/SingleThreaded/postgres/nocache", Metric: cmdsPerSec},
		Substrate: &Side{Pkg: "./recorder/postgres", Bench: "BenchmarkRecorder/InsertOne", Metric: nsPerOp, Scale: 2},
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
}

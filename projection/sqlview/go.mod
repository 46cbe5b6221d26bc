module github.com/eventsourcing-go/eventsourcing/projection/sqlview

go 1.26.0

require (
	github.com/google/uuid v1.6.0 // indirect
	github.com/stretchr/testify v1.12.1
	go.yaml.in/yaml/v3 v3.0.5 // indirect
	modernc.org/sqlite v1.62.0
)

require (
	github.com/dustin/go-humanize v1.1.0 // indirect
	github.com/mattn/go-isatty v0.0.24 // indirect
	github.com/ncruces/go-strftime v1.1.0 // indirect
	github.com/remyoudompheng/bigfft v0.0.0-20230129092748-24d4a6f8daec // indirect
	golang.org/x/sys v0.49.0 // indirect
	modernc.org/libc v1.80.1 // indirect
	modernc.org/mathutil v1.7.1 // indirect
	modernc.org/memory v1.12.1 // indirect
)

require (
	github.com/eventsourcing-go/eventsourcing v0.0.0-00010101000000-000000000000
	github.com/eventsourcing-go/eventsourcing/recorder/sqlite v0.0.0-00010101000000-000000000000
)

// No version of the project's modules is published: each one is
// the directory beside this one (go.work does the same for make).
replace (
	github.com/eventsourcing-go/eventsourcing => ../..
	github.com/eventsourcing-go/eventsourcing/recorder/sqlite => ../../recorder/sqlite
)

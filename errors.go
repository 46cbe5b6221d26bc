package eventsourcing

import (
	"errors"

	"github.com/eventsourcing-go/eventsourcing/config"
	"github.com/eventsourcing-go/eventsourcing/internal/codec"
	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// Errors of the domain model, the mapper and the application. Test them with
// errors.Is: the values returned are wrapped with context.
var (
	// ErrAggregateNotFound reports that no events are recorded for an id.
	ErrAggregateNotFound = errors.New("aggregate not found")
	// ErrAggregateType reports that an id's events belong to another aggregate type
	// than the one asked for.
	ErrAggregateType = codec.ErrAggregateType
	// ErrOriginatorID reports an event applied to an aggregate it does not belong to.
	ErrOriginatorID = errors.New("originator id mismatch")
	// ErrOriginatorVersion reports an event whose version does not follow the aggregate's.
	ErrOriginatorVersion = errors.New("originator version mismatch")
	// ErrDeserialisation reports stored state that cannot be decrypted,
	// decompressed or decoded; the error names the topic, id and version.
	ErrDeserialisation = codec.ErrDeserialisation
	// ErrTranscodingNotRegistered reports a value type (on encode) or a tag
	// name (on decode) for which no transcoding is registered.
	ErrTranscodingNotRegistered = codec.ErrTranscodingNotRegistered
	// ErrTopicNotRegistered reports a topic or Go type missing from the Types registry.
	ErrTopicNotRegistered = codec.ErrTopicNotRegistered
	// ErrTopicTaken reports a topic registered for two different types.
	ErrTopicTaken = codec.ErrTopicTaken
	// ErrSnapshotting reports a snapshot asked for while snapshotting is disabled.
	ErrSnapshotting = errors.New("snapshotting is not enabled (set IS_SNAPSHOTTING_ENABLED=y or give snapshot intervals)")
	// ErrArgument reports an invalid argument, such as a limit above the section size.
	ErrArgument = codec.ErrArgument
	// ErrProcessRecorder reports a tracked save on an application built without
	// a process recorder (Options.Process).
	ErrProcessRecorder = errors.New("application has no process recorder")
)

// Storage error kinds, re-exported from package recorder so that applications
// need not import it to test for a conflict.
var (
	// ErrIntegrity is the optimistic-concurrency conflict: the aggregate (or the
	// tracking position) was written by someone else first.
	ErrIntegrity = recorder.ErrIntegrity
	// ErrConflict is ErrIntegrity.
	ErrConflict = recorder.ErrIntegrity
	// ErrPersistence is the parent of every storage error.
	ErrPersistence = recorder.ErrPersistence
	// ErrConfiguration reports a malformed or missing setting.
	ErrConfiguration = config.ErrConfiguration
	// ErrInfrastructureFactory reports that the persistence module could not be opened.
	ErrInfrastructureFactory = recorder.ErrInfrastructureFactory
	// ErrTimeout reports a wait that reached its deadline.
	ErrTimeout = recorder.ErrTimeout
	// ErrWaitInterrupted reports a wait whose context ended.
	ErrWaitInterrupted = recorder.ErrWaitInterrupted
)

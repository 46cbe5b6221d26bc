package eventsourcing

import (
	"context"
	"fmt"
	"iter"
	"strconv"
	"strings"

	"github.com/eventsourcing-go/eventsourcing/recorder"
)

// NotificationLog reads an application's notification log: every recorded
// event in commit order, numbered from 1 (on SQL and memory backends). Reads are
// limited to sections of SectionSize notifications.
type NotificationLog struct {
	recorder interface {
		SelectNotifications(context.Context, recorder.NotificationQuery) ([]recorder.Notification, error)
	}
	sectionSize int
}

// NewNotificationLog returns a log over rec with the given section size
// (DefaultSectionSize when ≤ 0).
func NewNotificationLog(rec recorder.ApplicationRecorder, sectionSize int) *NotificationLog {
	if sectionSize <= 0 {
		sectionSize = DefaultSectionSize
	}
	return &NotificationLog{recorder: rec, sectionSize: sectionSize}
}

// SectionSize returns the largest number of notifications one read returns.
func (l *NotificationLog) SectionSize() int { return l.sectionSize }

// Select returns notifications as the query says (see recorder.NotificationQuery).
// A limit above the section size fails with ErrArgument; a limit ≤ 0 means the
// section size.
func (l *NotificationLog) Select(ctx context.Context, q recorder.NotificationQuery) ([]recorder.Notification, error) {
	if q.Limit > l.sectionSize {
		return nil, fmt.Errorf("select notifications: %w: limit %d is above the section size %d", ErrArgument, q.Limit, l.sectionSize)
	}
	if q.Limit <= 0 {
		q.Limit = l.sectionSize
	}
	ns, err := l.recorder.SelectNotifications(ctx, q)
	if err != nil {
		return nil, fmt.Errorf("select notifications: %w", err)
	}
	return ns, nil
}

// Section is a page of the notification log, addressed as "first,last".
type Section struct {
	// ID is "first,last" of the items, empty when there are none.
	ID string
	// Items are the notifications of the section.
	Items []recorder.Notification
	// Next is the id of the following section when this one is full, else empty.
	Next string
}

// Section returns the section with the given id "a,b": notifications from
// max(1, a), at most min(b-a+1, SectionSize) of them.
func (l *NotificationLog) Section(ctx context.Context, id string) (Section, error) {
	first, last, ok := strings.Cut(id, ",")
	a, err1 := strconv.ParseInt(strings.TrimSpace(first), 10, 64)
	b, err2 := strconv.ParseInt(strings.TrimSpace(last), 10, 64)
	if !ok || err1 != nil || err2 != nil {
		return Section{}, fmt.Errorf("section %q: %w: want \"first,last\"", id, ErrArgument)
	}
	start := max(1, a)
	limit := min(max(0, b-start+1), int64(l.sectionSize))
	var s Section
	if limit == 0 {
		return s, nil
	}
	items, err := l.recorder.SelectNotifications(ctx, recorder.NotificationQuery{After: recorder.After(start), Inclusive: true, Limit: int(limit)})
	if err != nil {
		return Section{}, fmt.Errorf("section %q: %w", id, err)
	}
	s.Items = items
	if len(items) > 0 {
		lastID := items[len(items)-1].ID
		s.ID = fmt.Sprintf("%d,%d", items[0].ID, lastID)
		if int64(len(items)) == limit {
			s.Next = fmt.Sprintf("%d,%d", lastID+1, lastID+limit)
		}
	}
	return s, nil
}

// Read yields the notifications the query selects, all of them, reading pages
// of at most SectionSize (q.Limit, when positive, sets a smaller page size).
// Iteration stops at the first error, which is yielded.
func (l *NotificationLog) Read(ctx context.Context, q recorder.NotificationQuery) iter.Seq2[recorder.Notification, error] {
	return func(yield func(recorder.Notification, error) bool) {
		if q.Limit <= 0 || q.Limit > l.sectionSize {
			q.Limit = l.sectionSize
		}
		for {
			page, err := l.recorder.SelectNotifications(ctx, q)
			if err != nil {
				yield(recorder.Notification{}, fmt.Errorf("read notifications: %w", err))
				return
			}
			for _, n := range page {
				if !yield(n, nil) {
					return
				}
			}
			if len(page) < q.Limit {
				return
			}
			q.After, q.Inclusive = recorder.After(page[len(page)-1].ID), false
		}
	}
}

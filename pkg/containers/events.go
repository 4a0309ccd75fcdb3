package containers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
)

// errMalformedStream marks an event stream that ended because dockerd (or
// something posing as it) sent bytes that do not decode as an event.
var errMalformedStream = errors.New("malformed docker event")

// cursor remembers the last event handled so a new stream can resume with
// since= and skip what it already saw. Docker's since is inclusive, so the
// events at exactly the last timestamp are remembered by key.
type cursor struct {
	lastNano int64
	seen     map[string]bool
}

func eventNano(ev events.Message) int64 {
	if ev.TimeNano != 0 {
		return ev.TimeNano
	}
	return ev.Time * int64(time.Second)
}

func eventKey(ev events.Message) string {
	return string(ev.Type) + "\x00" + string(ev.Action) + "\x00" + ev.Actor.ID + "\x00" + strconv.FormatInt(eventNano(ev), 10)
}

// start sets the resume point when no event has been seen yet.
func (c *cursor) start(t time.Time) {
	if c.lastNano == 0 && !t.IsZero() {
		c.lastNano = t.UnixNano()
	}
}

// since is the value for EventsListOptions.Since: seconds.nanoseconds.
func (c *cursor) since() string {
	if c.lastNano == 0 {
		return ""
	}
	return fmt.Sprintf("%d.%09d", c.lastNano/int64(time.Second), c.lastNano%int64(time.Second))
}

// seenBefore reports whether ev was already handled, and records it if not.
func (c *cursor) seenBefore(ev events.Message) bool {
	n := eventNano(ev)
	if n == 0 {
		return false
	}
	switch {
	case n < c.lastNano:
		return true
	case n > c.lastNano:
		c.lastNano = n
		c.seen = map[string]bool{}
	}
	k := eventKey(ev)
	if c.seen[k] {
		return true
	}
	if c.seen == nil {
		c.seen = map[string]bool{}
	}
	c.seen[k] = true
	return false
}

// eventQueue drains the client's event channel without waiting for the
// handler, so a slow inventory never makes dockerd drop events for a slow
// subscriber. It ends with the stream's error.
type eventQueue struct {
	mu     sync.Mutex
	items  []events.Message
	err    error
	notify chan struct{}
}

func newEventQueue(res client.EventsResult) *eventQueue {
	q := &eventQueue{notify: make(chan struct{}, 1)}
	go q.pump(res)
	return q
}

func (q *eventQueue) pump(res client.EventsResult) {
	for {
		select {
		case m := <-res.Messages:
			q.mu.Lock()
			q.items = append(q.items, m)
			q.mu.Unlock()
		case err := <-res.Err:
			var syn *json.SyntaxError
			var typ *json.UnmarshalTypeError
			switch {
			case err == nil:
				err = errors.New("docker closed the event stream")
			case errors.As(err, &syn) || errors.As(err, &typ):
				err = fmt.Errorf("%w: %w", errMalformedStream, err)
			}
			q.mu.Lock()
			q.err = err
			q.mu.Unlock()
			q.signal()
			return
		}
		q.signal()
	}
}

func (q *eventQueue) signal() {
	select {
	case q.notify <- struct{}{}:
	default:
	}
}

// failed returns the stream's error if it has ended with nothing left.
func (q *eventQueue) failed() error {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.items) == 0 {
		return q.err
	}
	return nil
}

// next returns the next event, or the stream's error once every event
// before it has been returned.
func (q *eventQueue) next(ctx context.Context) (events.Message, error) {
	for {
		q.mu.Lock()
		if len(q.items) > 0 {
			ev := q.items[0]
			q.items[0] = events.Message{}
			q.items = q.items[1:]
			q.mu.Unlock()
			return ev, nil
		}
		err := q.err
		q.mu.Unlock()
		if err != nil {
			return events.Message{}, err
		}
		select {
		case <-ctx.Done():
			return events.Message{}, ctx.Err()
		case <-q.notify:
		}
	}
}

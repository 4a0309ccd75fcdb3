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

// replaySlack is how far before the newest handled event a resumed stream
// starts. dockerd stamps an event before it takes the lock that orders the
// stream, so concurrent events can arrive slightly out of time order; the
// slack replays them, and the keys remembered over the same window skip
// the ones already handled.
const replaySlack = 5 * time.Second

// cursor remembers what was handled so a new stream can resume with since=
// and skip what it already saw. An event is a duplicate only if its key was
// seen: an older timestamp alone proves nothing (see replaySlack).
type cursor struct {
	lastNano   int64            // newest event handled, or the start time
	handledAny bool             // lastNano is an event's time, not the start
	seen       map[string]int64 // key -> time, within replaySlack of lastNano
	pruneAt    int
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
	n := c.lastNano
	if c.handledAny {
		n -= int64(replaySlack)
	}
	if n <= 0 {
		return ""
	}
	return fmt.Sprintf("%d.%09d", n/int64(time.Second), n%int64(time.Second))
}

// seenBefore reports whether ev was already handled, and records it if not.
func (c *cursor) seenBefore(ev events.Message) bool {
	n := eventNano(ev)
	if n == 0 {
		return false
	}
	k := eventKey(ev)
	if _, ok := c.seen[k]; ok {
		return true
	}
	if c.seen == nil {
		c.seen = map[string]int64{}
	}
	c.seen[k] = n
	c.handledAny = true
	if n > c.lastNano {
		c.lastNano = n
	}
	if len(c.seen) > max(c.pruneAt, 1024) {
		floor := c.lastNano - int64(replaySlack)
		for key, t := range c.seen {
			if t < floor {
				delete(c.seen, key)
			}
		}
		c.pruneAt = 2 * len(c.seen)
	}
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

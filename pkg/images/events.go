package images

import (
	"context"
	"time"

	"github.com/moby/moby/api/types/events"
	"github.com/moby/moby/client"
	"go.uber.org/zap"
)

// change is what an event asks the loop to look at again.
type change struct{ images, containers bool }

// Backoff bounds for reconnecting to the event stream; variables so tests
// can shorten them.
var (
	reconnectMin = time.Second
	reconnectMax = 30 * time.Second
)

// watchEvents follows the Engine's image and container events until ctx
// ends, reconnecting with backoff. After each (re)connection it asks for a
// full look, since events may have been missed while it was away.
func (s *Source) watchEvents(ctx context.Context, out chan<- change) {
	backoff := reconnectMin
	for ctx.Err() == nil {
		connected := time.Now()
		s.follow(ctx, out)
		if ctx.Err() != nil {
			return
		}
		if time.Since(connected) > reconnectMax {
			backoff = reconnectMin
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, reconnectMax)
	}
}

// follow reads one event stream until it fails.
func (s *Source) follow(ctx context.Context, out chan<- change) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	f := make(client.Filters).Add("type", string(events.ImageEventType), string(events.ContainerEventType))
	res := s.eng.Events(ctx, client.EventsListOptions{Filters: f})
	send(ctx, out, change{images: true, containers: true})
	for {
		select {
		case <-ctx.Done():
			return
		case err := <-res.Err:
			if ctx.Err() == nil {
				s.log.Debug("event stream ended; reconnecting", zap.Error(err))
			}
			return
		case m := <-res.Messages:
			if c, ok := relevant(m); ok {
				send(ctx, out, c)
			}
		}
	}
}

func send(ctx context.Context, out chan<- change, c change) {
	select {
	case out <- c:
	case <-ctx.Done():
	}
}

// relevant maps an event to what must be looked at again: images on pull,
// load, import, tag, untag and delete; containers on start, die and
// destroy (only running containers are read).
func relevant(m events.Message) (change, bool) {
	switch m.Type {
	case events.ImageEventType:
		switch m.Action {
		case events.ActionPull, events.ActionLoad, events.ActionImport, events.ActionTag, events.ActionUnTag, events.ActionDelete:
			return change{images: true}, true
		}
	case events.ContainerEventType:
		switch m.Action {
		case events.ActionStart, events.ActionDie, events.ActionDestroy, events.ActionRestart:
			return change{containers: true}, true
		}
	}
	return change{}, false
}

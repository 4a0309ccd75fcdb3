package testenv

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"
)

// Runner is what every source is to the agent: Run blocks until ctx is
// done and calls ready once it has started.
type Runner interface {
	Run(ctx context.Context, ready func()) error
}

// How long a source may take to become ready, and to return once cancelled.
const (
	sourceReadyWait = 20 * time.Second
	sourceStopWait  = 10 * time.Second
)

// StartRunner starts r.Run and waits until it is ready. stop cancels it and
// returns what Run returned (every call returns the same, so a deferred
// stop is safe). A non-nil error is what Run returned before it was ready;
// a source not ready within sourceReadyWait fails t.
func StartRunner(t testing.TB, r Runner) (stop func() error, err error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ready := make(chan struct{})
	var readyOnce sync.Once
	done := make(chan error, 1)
	go func() { done <- r.Run(ctx, func() { readyOnce.Do(func() { close(ready) }) }) }()
	select {
	case <-ready:
	case err := <-done:
		cancel()
		return nil, err
	case <-time.After(sourceReadyWait):
		cancel()
		t.Fatalf("source not ready within %s", sourceReadyWait)
	}
	var once sync.Once
	var runErr error
	return func() error {
		once.Do(func() {
			cancel()
			select {
			case runErr = <-done:
			case <-time.After(sourceStopWait):
				runErr = errors.New("Run did not return within " + sourceStopWait.String() + " of cancellation")
			}
		})
		return runErr
	}, nil
}

// RunSource runs r until the test ends: it fails t if r does not become
// ready, and, at the end, if Run does not return nil once cancelled. It
// returns the stop function for a test that stops the source itself.
func RunSource(t testing.TB, r Runner) (stop func() error) {
	t.Helper()
	stop, err := StartRunner(t, r)
	if err != nil {
		t.Fatalf("Run returned before the source was ready: %v", err)
	}
	t.Cleanup(func() {
		if err := stop(); err != nil {
			t.Errorf("Run returned %v once cancelled, want nil", err)
		}
	})
	return stop
}

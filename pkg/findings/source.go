package findings

import "context"

// Source is one source of truth (containers, kernel audit, host files).
// Sources never import each other; cmd/agent builds them from their config
// section and passes any fact one needs from another as a function.
type Source interface {
	// Name is the source's name in logs, /readyz and config.
	Name() string
	// Run judges continuously until ctx is done. It calls ready once, after
	// its first complete judgement is in the sink; a source that cannot
	// reach its input yet (Docker down) still calls ready once it is
	// retrying, since the agent then serves that state as metrics.
	// Run returns nil on cancellation and an error only when it cannot go on.
	Run(ctx context.Context, ready func()) error
	// Scan judges everything once into the sink and returns.
	Scan(ctx context.Context) error
}

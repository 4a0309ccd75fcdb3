package auditd

// gapTracker counts serials that never arrived. go-libaudit's reassembler
// computes its own loss as `seq - lastSeq - 1` in uint32, so a single late
// serial reports about 2^32 lost events; dockward ignores that figure and
// tracks gaps itself: a missing serial is held for a window of later serials
// and counted as lost only if it never shows up.
type gapTracker struct {
	high    uint32
	oldest  uint32 // lowest missing serial, valid while missing is non-empty
	started bool
	missing map[uint32]struct{}
	// lost is the running total of serials given up on; late counts
	// serials that arrived after a later one.
	lost, late uint64
}

const (
	// gapWindow is how many serials a missing one may lag before it is
	// counted as lost.
	gapWindow = 4096
	// gapReset is a backwards jump treated as a new serial sequence (a
	// reboot in a log file, or wrap-around), not as a late serial.
	gapReset = 1 << 24
	// gapMaxPending bounds memory when a huge gap opens at once; the
	// excess is counted as lost straight away.
	gapMaxPending = 1 << 16
)

func newGapTracker() *gapTracker { return &gapTracker{missing: map[uint32]struct{}{}} }

// observe records one delivered serial.
func (g *gapTracker) observe(s uint32) {
	if !g.started {
		g.started, g.high = true, s
		return
	}
	switch d := s - g.high; {
	case s == g.high:
		return
	case d < gapReset: // ahead, modulo 2^32
		missed := d - 1
		if missed > gapMaxPending {
			g.lost += uint64(missed - gapMaxPending)
			missed = gapMaxPending
		}
		if len(g.missing) == 0 && missed > 0 {
			g.oldest = s - missed
		}
		for i := uint32(1); i <= missed; i++ {
			g.missing[s-i] = struct{}{}
		}
		g.high = s
		g.expire()
	case g.high-s < gapReset: // behind: a late serial
		if _, ok := g.missing[s]; ok {
			delete(g.missing, s)
			g.late++
		}
	default: // a new sequence
		g.flush()
		g.high = s
	}
}

// expire gives up on serials more than gapWindow behind the highest.
func (g *gapTracker) expire() {
	if len(g.missing) == 0 || g.high-g.oldest <= gapWindow {
		return
	}
	oldest := g.high
	for s := range g.missing {
		if g.high-s > gapWindow {
			delete(g.missing, s)
			g.lost++
		} else if g.high-s > g.high-oldest {
			oldest = s
		}
	}
	g.oldest = oldest
}

// flush counts every serial still missing as lost (at the end of input).
func (g *gapTracker) flush() {
	g.lost += uint64(len(g.missing))
	clear(g.missing)
}

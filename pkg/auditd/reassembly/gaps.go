package reassembly

// gapTracker counts serials that never arrived. go-libaudit's reassembler
// computes its own loss as `seq - lastSeq - 1` in uint32, so a single late
// serial reports about 2^32 lost events; dockward ignores that figure and
// tracks gaps itself: a missing serial is held for a window of later serials
// and counted as lost only if it never shows up.
type gapTracker struct {
	high    uint32
	started bool
	// missing are the serials not seen yet, as ranges, oldest first.
	missing []gapRange
	// lost is the running total of serials given up on; late counts
	// serials that arrived after a later one.
	lost, late uint64
}

// gapRange is an inclusive run of missing serials.
type gapRange struct{ lo, hi uint32 }

func (r gapRange) size() uint64 { return uint64(r.hi-r.lo) + 1 }

const (
	// gapWindow is how many serials a missing one may lag before it is
	// counted as lost.
	gapWindow = 4096
	// gapReset is a backwards jump treated as a new serial sequence (a
	// reboot in a log file, or wrap-around), not as a late serial.
	gapReset = 1 << 24
	// gapMaxRanges bounds memory under heavy loss; the oldest ranges
	// beyond it are counted as lost at once.
	gapMaxRanges = 1024
)

func newGapTracker() *gapTracker { return &gapTracker{} }

// observe records one delivered serial.
func (g *gapTracker) observe(s uint32) {
	if !g.started {
		g.started, g.high = true, s
		return
	}
	switch d := s - g.high; {
	case d == 0:
	case d < gapReset: // ahead, modulo 2^32
		if d > 1 {
			g.missing = append(g.missing, gapRange{g.high + 1, s - 1})
		}
		g.high = s
		g.expire()
	case g.high-s < gapReset: // behind: a late serial
		g.arrived(s)
	default: // a new sequence
		g.flush()
		g.high = s
	}
}

// arrived removes a late serial from the missing ranges.
func (g *gapTracker) arrived(s uint32) {
	for i, r := range g.missing {
		if s-r.lo > r.hi-r.lo { // not in r, modulo 2^32
			continue
		}
		g.late++
		switch {
		case r.lo == r.hi:
			g.missing = append(g.missing[:i], g.missing[i+1:]...)
		case s == r.lo:
			g.missing[i].lo++
		case s == r.hi:
			g.missing[i].hi--
		default:
			g.missing = append(g.missing[:i+1], g.missing[i:]...)
			g.missing[i].hi = s - 1
			g.missing[i+1].lo = s + 1
		}
		return
	}
}

// expire gives up on serials more than gapWindow behind the highest.
func (g *gapTracker) expire() {
	for len(g.missing) > 0 {
		r := &g.missing[0]
		switch {
		case g.high-r.hi > gapWindow || len(g.missing) > gapMaxRanges:
			g.lost += r.size()
			g.missing = g.missing[1:]
			continue
		case g.high-r.lo > gapWindow:
			lo := g.high - gapWindow
			g.lost += uint64(lo - r.lo)
			r.lo = lo
		}
		return
	}
}

// flush counts every serial still missing as lost (at the end of input).
func (g *gapTracker) flush() {
	for _, r := range g.missing {
		g.lost += r.size()
	}
	g.missing = g.missing[:0]
}

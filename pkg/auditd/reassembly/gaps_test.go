package reassembly

import "testing"

func TestGapTracker(t *testing.T) {
	cases := []struct {
		name       string
		serials    []uint32
		lost, late uint64
	}{
		{"in order", []uint32{5, 6, 7, 8}, 0, 0},
		{"one missing", []uint32{5, 6, 8, 9}, 1, 0},
		{"out of order is late, not lost", []uint32{10, 12, 11, 13}, 0, 1},
		{"duplicate serial", []uint32{10, 10, 11}, 0, 0},
		{"wrap around", []uint32{4294967294, 4294967295, 0, 2}, 1, 0},
		{"new sequence after reboot", []uint32{900000000, 900000001, 3, 4}, 0, 0},
		{"huge jump", []uint32{1, 1 + 200000}, 199999, 0},
		{"late inside a range", []uint32{1, 10, 5, 4, 9, 2, 11}, 4, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			g := newGapTracker()
			for _, s := range c.serials {
				g.observe(s)
			}
			g.flush()
			if g.lost != c.lost || g.late != c.late {
				t.Fatalf("lost %d late %d, want %d and %d", g.lost, g.late, c.lost, c.late)
			}
		})
	}
}

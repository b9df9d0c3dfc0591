package pricing

import "testing"

// TestHasControl checks the eight-bytes-at-a-time test against the plain
// loop: every length up to 20, a control or edge byte at each place.
func TestHasControl(t *testing.T) {
	for n := 0; n < 20; n++ {
		for i := -1; i < n; i++ {
			for _, c := range []byte{0, 0x1f, 0x20, 0x21, 0x7f, 0x80, 0x9f, 0xa0, 0xff} {
				p := make([]byte, n)
				for k := range p {
					p[k] = byte(0x20 + (k*37)%224)
				}
				if i >= 0 {
					p[i] = c
				}
				want := false
				for _, b := range p {
					want = want || b < 0x20
				}
				if got := hasControl(p); got != want {
					t.Fatalf("hasControl(%q) = %v, want %v", p, got, want)
				}
			}
		}
	}
}

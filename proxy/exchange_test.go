package proxy

import "testing"

func TestOverlaps(t *testing.T) {
	b := make([]byte, 100)
	if !overlaps(b[10:20], b) || !overlaps(b, b[99:]) || overlaps(b[:10], b[10:]) || overlaps(nil, b) || overlaps(make([]byte, 5), b) {
		t.Error("overlaps is wrong")
	}
}

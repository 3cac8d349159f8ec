package visiontest

import (
	"bytes"
	"image/jpeg"
	"testing"
)

func TestSized(t *testing.T) {
	for _, n := range []int{4 << 10, 10 << 10, 100<<10 + 1} {
		b := Sized(n, 1)
		if len(b) != n {
			t.Errorf("Sized(%d): got %d bytes", n, len(b))
		}
		if _, err := jpeg.Decode(bytes.NewReader(b)); err != nil {
			t.Errorf("Sized(%d): not a valid JPEG: %v", n, err)
		}
	}
}

package bufpool

import (
	"bytes"
	"io"
	"testing"
)

func TestShared(t *testing.T) {
	var p Pool
	buf := p.Get(100)
	*buf = append(*buf, "body"...)
	freed := 0
	var s Shared
	s.Init(func() { freed++; p.Put(buf) })

	r1 := s.Reader(bytes.NewReader(*buf))
	r2 := s.Reader(bytes.NewReader(*buf))
	s.Hold()
	s.Drop()
	s.Drop() // the creator lets go once only
	if freed != 0 || p.Live() != 1 {
		t.Fatalf("freed %d times, %d live, with three holders left", freed, p.Live())
	}
	if b, _ := io.ReadAll(r1); string(b) != "body" {
		t.Fatalf("reader read %q", b)
	}
	r1.Close()
	r1.Close() // a reader lets go once only
	r2.Close()
	if freed != 0 {
		t.Fatalf("freed with one holder left")
	}
	if r1.Shared() != &s {
		t.Fatal("Reader.Shared is not its Shared")
	}
	s.Release()
	if freed != 1 || p.Live() != 0 {
		t.Fatalf("freed %d times, %d live, after the last holder", freed, p.Live())
	}
}

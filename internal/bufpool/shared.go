package bufpool

import (
	"io"
	"sync"
	"sync/atomic"
)

// Shared is pooled memory with several holders: a request body that the
// request path, the HTTP transport's readers and work done after the
// answer all read. Each Hold is matched by one Release; the last calls
// the free function given to Init, which puts the memory back. A holder
// that never releases leaves the memory to the garbage collector, which
// is safe; a release too early would hand bytes still being read to
// another request, so whoever reads holds.
type Shared struct {
	refs    atomic.Int32
	free    func()
	creator sync.Once
}

// Init gives s one holder, its creator (see Drop), and the function that
// frees it.
func (s *Shared) Init(free func()) {
	s.free = free
	s.refs.Store(1)
}

// Hold adds a holder.
func (s *Shared) Hold() { s.refs.Add(1) }

// Release lets one holder go.
func (s *Shared) Release() {
	if s.refs.Add(-1) == 0 {
		s.free()
	}
}

// Drop releases the creator's hold; calling it again does nothing.
func (s *Shared) Drop() { s.creator.Do(s.Release) }

// Reader returns r as a ReadCloser that holds s until it is first
// closed: a request body, which net/http's transport always closes,
// possibly after RoundTrip has returned.
func (s *Shared) Reader(r io.Reader) *Reader {
	s.Hold()
	return &Reader{Reader: r, shared: s}
}

// Reader is a ReadCloser from Shared.Reader.
type Reader struct {
	io.Reader
	shared *Shared
	once   sync.Once
}

// Close releases the reader's hold; closing again does nothing.
func (r *Reader) Close() error {
	r.once.Do(r.shared.Release)
	return nil
}

// Shared is the memory r holds.
func (r *Reader) Shared() *Shared { return r.shared }

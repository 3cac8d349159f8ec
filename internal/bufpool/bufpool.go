// Package bufpool keeps large byte buffers for reuse, by power-of-two
// size class. A fresh large buffer costs more than filling it: on a VM
// every new page is a page fault, and at 200 requests/s of 1 MB bodies
// the faults alone kept a core busy. A reused buffer is already resident.
//
// A buffer must go back (Put) only when nothing reads it any more; one
// that is never put back is left to the garbage collector, which is safe.
package bufpool

import (
	"io"
	"math/bits"
	"net/http"
	"sync"
	"sync/atomic"
)

const (
	minClass = 14 // 16 KiB
	maxClass = 25 // 32 MiB
)

// Pool is a set of buffers by size class. The zero value is ready.
type Pool struct {
	classes [maxClass + 1]sync.Pool
	live    atomic.Int64
	poison  atomic.Bool
}

// Class is the smallest class whose buffers hold n bytes, or -1 when n is
// beyond the largest (such buffers are made to measure and not pooled).
func Class(n int) int {
	if n <= 1<<minClass {
		return minClass
	}
	c := bits.Len(uint(n - 1))
	if c > maxClass {
		return -1
	}
	return c
}

// Get returns an empty buffer with room for at least n bytes.
func (p *Pool) Get(n int) *[]byte {
	c := Class(n)
	if c < 0 {
		b := make([]byte, 0, n)
		return &b
	}
	p.live.Add(1)
	if v := p.classes[c].Get(); v != nil {
		b := v.(*[]byte)
		*b = (*b)[:0]
		return b
	}
	b := make([]byte, 0, 1<<c)
	return &b
}

// Put returns a buffer from Get. Buffers of other capacities are ignored.
func (p *Pool) Put(b *[]byte) {
	c := cap(*b)
	if c < 1<<minClass || c > 1<<maxClass || c&(c-1) != 0 {
		return
	}
	p.live.Add(-1)
	if p.poison.Load() {
		full := (*b)[:c]
		for i := range full {
			full[i] = 0xDB
		}
	}
	p.classes[bits.Len(uint(c))-1].Put(b)
}

// Live counts pooled buffers handed out and not yet put back: tests check
// that every path lets go of what it took.
func (p *Pool) Live() int64 { return p.live.Load() }

// Poison, for tests, overwrites buffers as they are put back, so that a
// use after Put shows as corrupted bytes.
func (p *Pool) Poison(on bool) { p.poison.Store(on) }

// Read reads at most limit bytes of body into a buffer from p. When
// there is more, tooLarge is true and the returned bytes must be
// re-joined with the rest. hint is the Content-Length (−1 if unknown).
func (p *Pool) Read(body io.Reader, limit, hint int64) (buf *[]byte, tooLarge bool, err error) {
	if body == nil || body == http.NoBody {
		return nil, false, nil
	}
	// Room for the whole body and one byte more, to see EOF without
	// growing; unknown lengths start small and grow by class.
	n := hint + 1
	if hint < 0 || hint > limit {
		n = min(limit+1, 64<<10)
	}
	buf = p.Get(int(n))
	b := *buf
	for {
		if len(b) == cap(b) {
			if int64(len(b)) > limit {
				break
			}
			nb := p.Get(min(2*cap(b), int(limit)+1))
			*nb = append(*nb, b...)
			p.Put(buf)
			buf, b = nb, *nb
		}
		room := b[len(b):min(cap(b), int(limit)+1)]
		m, rerr := body.Read(room)
		b = b[:len(b)+m]
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			*buf = b
			p.Put(buf)
			return nil, false, rerr
		}
		if int64(len(b)) > limit {
			break
		}
	}
	*buf = b
	return buf, int64(len(b)) > limit, nil
}

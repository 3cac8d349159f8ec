package bufpool

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"testing"
	"testing/iotest"
)

// TestReadBody: every size around the buffer classes and the limit, with
// the length known or not and the reader returning odd chunks, reads the
// exact bytes; over the limit, the bytes read and the rest re-join into
// the whole body.
func TestReadBody(t *testing.T) {
	var p Pool
	const limit = 200 << 10
	sizes := []int{0, 1, 100, 16<<10 - 1, 16 << 10, 16<<10 + 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 100_141, limit - 1, limit, limit + 1, limit + 12345, 3 * limit}
	for _, size := range sizes {
		want := make([]byte, size)
		for i := range want {
			want[i] = byte(rand.IntN(256))
		}
		for _, known := range []bool{true, false} {
			for _, odd := range []bool{false, true} {
				var r io.Reader = bytes.NewReader(want)
				if odd {
					r = iotest.OneByteReader(io.LimitReader(r, int64(size))) // worst case: a byte at a time
					if size > 70<<10 {
						r = iotest.HalfReader(bytes.NewReader(want))
					}
				}
				hint := int64(-1)
				if known {
					hint = int64(size)
				}
				buf, tooLarge, err := p.Read(r, limit, hint)
				if err != nil {
					t.Fatalf("size %d: %v", size, err)
				}
				if tooLarge != (size > limit) {
					t.Fatalf("size %d: tooLarge %v", size, tooLarge)
				}
				got := *buf
				if tooLarge {
					if len(got) != limit+1 {
						t.Fatalf("size %d: read %d bytes before stopping, want limit+1", size, len(got))
					}
					got, _ = io.ReadAll(io.MultiReader(bytes.NewReader(got), r))
				}
				if !bytes.Equal(got, want) {
					t.Fatalf("size %d (known %v, odd %v): %d bytes differ from the %d sent", size, known, odd, len(got), size)
				}
				p.Put(buf)
			}
		}
	}
	if n := p.Live(); n != 0 {
		t.Errorf("%d buffers not returned", n)
	}
}

// TestReadBodyWrongHint: a Content-Length that lies (shorter or longer
// than the stream) changes nothing about the bytes read.
func TestReadBodyWrongHint(t *testing.T) {
	var p Pool
	want := bytes.Repeat([]byte("0123456789"), 5000)
	for _, hint := range []int64{0, 10, 49_999, 50_001, 1 << 20} {
		buf, tooLarge, err := p.Read(bytes.NewReader(want), 1<<20, hint)
		if err != nil || tooLarge || !bytes.Equal(*buf, want) {
			t.Fatalf("hint %d: %d bytes, tooLarge %v, err %v", hint, len(*buf), tooLarge, err)
		}
		p.Put(buf)
	}
}

// TestReadBodyError: a client that goes away mid-body is an error, and
// the buffer goes back to the pool.
func TestReadBodyError(t *testing.T) {
	var p Pool
	before := p.Live()
	r := io.MultiReader(bytes.NewReader(make([]byte, 40<<10)), iotest.ErrReader(errors.New("connection reset")))
	if _, _, err := p.Read(r, 1<<20, 80<<10); err == nil {
		t.Fatal("no error")
	}
	if buf, _, err := p.Read(http.NoBody, 1<<20, 0); buf != nil || err != nil {
		t.Fatalf("NoBody: %v %v", buf, err)
	}
	if n := p.Live() - before; n != 0 {
		t.Errorf("%d buffers not returned", n)
	}
}

func TestClass(t *testing.T) {
	var p Pool
	for _, c := range []struct{ n, class int }{{0, 14}, {1, 14}, {16 << 10, 14}, {16<<10 + 1, 15}, {1 << 20, 20}, {1<<20 + 1, 21}, {32 << 20, 25}, {32<<20 + 1, -1}} {
		if got := Class(c.n); got != c.class {
			t.Errorf("Class(%d) = %d, want %d", c.n, got, c.class)
		}
	}
	// Beyond the largest class a buffer is made to measure and not pooled.
	b := p.Get(40 << 20)
	if cap(*b) != 40<<20 {
		t.Fatalf("cap %d", cap(*b))
	}
	p.Put(b)
	if n := p.Live(); n != 0 {
		t.Errorf("live %d after an unpooled buffer", n)
	}
}

// TestPoison: a buffer put back is overwritten when poisoning is on, and
// comes back out of the pool for the next Get of its class.
func TestPoison(t *testing.T) {
	var p Pool
	p.Poison(true)
	b := p.Get(20 << 10)
	*b = append(*b, "image bytes"...)
	kept := *b
	p.Put(b)
	if string(kept[:5]) != "\xdb\xdb\xdb\xdb\xdb" {
		t.Errorf("not poisoned: %q", kept[:5])
	}
	if p.Live() != 0 {
		t.Errorf("live %d", p.Live())
	}
}

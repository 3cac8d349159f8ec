package vision

import (
	"encoding/base64"
	"math/rand/v2"
	"testing"
)

// The vectorised encoder must give encoding/base64's bytes exactly, for
// every length around its block sizes and with a non-empty dst.
func TestAppendBase64MatchesStdlib(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	for n := range 200 {
		src := make([]byte, n)
		for i := range src {
			src[i] = byte(r.Uint32())
		}
		want := "prefix" + base64.StdEncoding.EncodeToString(src)
		if got := string(AppendBase64([]byte("prefix"), src)); got != want {
			t.Fatalf("len %d: got %q, want %q", n, got, want)
		}
		if got := EncodeBase64(src); got != want[len("prefix"):] {
			t.Fatalf("len %d: EncodeBase64 got %q", n, got)
		}
	}
	big := make([]byte, 75_001)
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	if string(AppendBase64(nil, big)) != base64.StdEncoding.EncodeToString(big) {
		t.Fatal("75 KB image: encodings differ")
	}
}

// go test ./vision -bench Base64 -run XXX: the vectorised encoder against
// encoding/base64 on a 75 KB image.
func BenchmarkBase64(b *testing.B) {
	src := make([]byte, 75_000)
	dst := make([]byte, 0, base64.StdEncoding.EncodedLen(len(src)))
	b.Run("vision.AppendBase64", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			dst = AppendBase64(dst[:0], src)
		}
	})
	b.Run("encoding/base64", func(b *testing.B) {
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			dst = base64.StdEncoding.AppendEncode(dst[:0], src)
		}
	})
}

package sim

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/rekognition"
	"github.com/cutover/cutover/vision/visiontest"
)

// BenchmarkServe measures the simulator's handler alone (no network) at
// time-scale 0 for 10 KB and 100 KB images.
func BenchmarkServe(b *testing.B) {
	tx := mustTaxonomy(b)
	for _, size := range []int{10 << 10, 100 << 10} {
		b.Run(fmt.Sprintf("rekognition/%dKB", size>>10), func(b *testing.B) {
			s := simConfig(b, "rekognition", "latency: {median: 20ms, p99: 40ms}")
			m, _ := NewModel("x", s, tx, nil, 1)
			srv, _ := NewServer(m, s, 0)
			hr, _ := rekognition.NewCodec("http://x", "us-east-1", rekognition.NoCredentials).NewRequest(context.Background(),
				vision.Request{Image: vision.NewImage(visiontest.Sized(size, 1)), Attributes: []vision.AttributeKind{vision.KindColor}})
			body, _ := io.ReadAll(hr.Body)
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				r := httptest.NewRequest(http.MethodPost, "/", bytes.NewReader(body))
				r.Header = hr.Header.Clone()
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, r)
				if w.Code != 200 {
					b.Fatalf("status %d: %s", w.Code, w.Body)
				}
			}
		})
	}
}

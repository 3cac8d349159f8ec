package pipeline

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"image/png"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/sim"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/formats"
	"github.com/cutover/cutover/vision/visiontest"
)

var (
	taxOnce sync.Once
	taxV    *vision.Taxonomy
)

func taxonomy(t testing.TB) *vision.Taxonomy {
	taxOnce.Do(func() {
		var err error
		if taxV, err = vision.LoadTaxonomy(filepath.Join(srcDir, "..", "taxonomy.yaml")); err != nil {
			panic(err)
		}
	})
	return taxV
}

var srcDir, _ = os.Getwd()

// provider serves a simulated holysheep classify API in process (time
// scale 0 unless the profile says otherwise); wrap may intercept requests.
func provider(t testing.TB, profile string, wrap func(http.Handler) http.Handler) string {
	t.Helper()
	if profile == "" {
		profile = "{latency: {median: 1ms, p99: 2ms}}"
	}
	sc, err := config.Parse("sim.yaml", []byte(fmt.Sprintf(`simulate:
  hs: {format: holysheep, listen: "127.0.0.1:0", credentials: {api_key: k-test}, profile: %s}`, profile)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := sim.NewModel("hs", sc.Simulate["hs"], taxonomy(t), nil, 1)
	if err != nil {
		t.Fatal(err)
	}
	s, err := sim.NewServer(m, sc.Simulate["hs"], 0)
	if err != nil {
		t.Fatal(err)
	}
	var h http.Handler = s
	if wrap != nil {
		h = wrap(h)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return srv.URL
}

// testConfig is a pipeline config with provider at url and the store at storeURL.
func testConfig(t testing.TB, url, storeURL, extra string) *config.Config {
	t.Helper()
	return testConfigWith(t, fmt.Sprintf(`{format: holysheep, base_url: "%s", credentials: {api_key: k-test}, timeout: 5s}`, url), storeURL, extra)
}

// testConfigWith is testConfig with the provider hs given in YAML.
func testConfigWith(t testing.TB, providerYAML, storeURL, extra string) *config.Config {
	t.Helper()
	y := fmt.Sprintf(`taxonomy: %s
providers:
  hs: %s
pipeline:
  provider: hs
  store: {url: "%s"}
  retry: {max_attempts: 5, base_delay: 1ms, max_delay: 20ms}
%s
`, filepath.Join(srcDir, "..", "taxonomy.yaml"), providerYAML, storeURL, extra)
	dir := t.TempDir()
	cfg, err := config.Parse(filepath.Join(dir, "config.yaml"), []byte(y))
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	return cfg
}

func newTagger(t testing.TB, cfg *config.Config, st *Store) *Tagger {
	t.Helper()
	client, err := formats.NewClient(cfg, taxonomy(t), cfg.Pipeline.Provider, &http.Client{Transport: vision.DefaultTransport()})
	if err != nil {
		t.Fatal(err)
	}
	return &Tagger{Store: st, Rules: NewRules(cfg.Pipeline.Rules), Tax: taxonomy(t), Client: client, Provider: cfg.Pipeline.Provider, Retry: cfg.Pipeline.Retry}
}

// imageDir writes n small distinct PNGs as p00000.png … and returns the folder.
func imageDir(t testing.TB, n int) string {
	t.Helper()
	dir := t.TempDir()
	base := visiontest.PNG(8, 8, 1)
	for i := range n {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("p%05d.png", i)), distinctPNG(base, i), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// distinctPNG is base with a tEXt chunk "seed" = i after its IHDR: a valid
// PNG of the same pixels whose bytes (and SHA-256) differ for every i,
// made without encoding an image (20,000 encodings take minutes under the
// race detector).
func distinctPNG(base []byte, i int) []byte {
	const ihdrEnd = 8 + 4 + 4 + 13 + 4 // signature, IHDR length, type, data, CRC
	data := append([]byte("tEXtseed\x00"), strconv.Itoa(i)...)
	chunk := binary.BigEndian.AppendUint32(nil, uint32(len(data)-4))
	chunk = append(chunk, data...)
	chunk = binary.BigEndian.AppendUint32(chunk, crc32.ChecksumIEEE(data))
	out := make([]byte, 0, len(base)+len(chunk))
	out = append(out, base[:ihdrEnd]...)
	out = append(out, chunk...)
	return append(out, base[ihdrEnd:]...)
}

func waitFor(t testing.TB, d time.Duration, cond func() bool) bool {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return true
		}
		time.Sleep(20 * time.Millisecond)
	}
	return cond()
}

// reRequest gives a handler r with body restored.
func reRequest(r *http.Request, body []byte) *http.Request {
	r2 := r.Clone(r.Context())
	r2.Body = io.NopCloser(bytes.NewReader(body))
	r2.ContentLength = int64(len(body))
	return r2
}

// TestDistinctPNG: the images imageDir writes decode as PNGs and differ.
func TestDistinctPNG(t *testing.T) {
	t.Parallel()
	base := visiontest.PNG(8, 8, 1)
	seen := map[string]bool{}
	for i := range 50 {
		b := distinctPNG(base, i)
		img, err := png.Decode(bytes.NewReader(b))
		if err != nil || img.Bounds().Dx() != 8 || vision.SniffMediaType(b) != "image/png" {
			t.Fatalf("image %d: %v %v", i, err, img)
		}
		seen[vision.NewImage(b).SHA256] = true
	}
	if len(seen) != 50 {
		t.Errorf("%d distinct hashes of 50", len(seen))
	}
}

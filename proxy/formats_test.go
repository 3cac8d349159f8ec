package proxy

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jonboulle/clockwork"

	vapi "cloud.google.com/go/vision/v2/apiv1"
	"cloud.google.com/go/vision/v2/apiv1/visionpb"
	"github.com/googleapis/gax-go/v2/callctx"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	tiia "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/tiia/v20190529"
	"google.golang.org/api/option"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/sim"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/baidu"
)

// Credentials of the format tests' parties.
const (
	cnID     = "AKIDformatsCandidate01"
	cnKey    = "cn-candidate-secret-Pp5"
	gcvKey   = "gcv-legacy-key-Rr7"
	cnLegacy = "AKIDformatsLegacy0001"
	cnLegSK  = "cn-legacy-secret-Mm3"
	cnClient = "AKIDformatsClient0001"
	cnCliSK  = "cn-client-secret-Qq8"
	bdKey    = "baidu-legacy-api-key-1"
	bdSecret = "baidu-legacy-secret-Tt4"
	bdClient = "baidu-client-key-Vv9"
)

// formatsOpts picks the primary's and the candidate's formats.
type formatsOpts struct {
	primary    string // rekognition, tencent or gcv
	candidate  string // openai or tencent
	proxyExtra string
}

// newFormatsEnv is newEnv for other formats: a simulated primary and
// candidate of the given formats behind capture fronts, and a proxy.
// A tencent primary's simulator checks TC3 signatures with the legacy's
// pair: the proxy verifies the client's signature (proxy.clients) and
// re-signs with the legacy's.
func newFormatsEnv(t *testing.T, o formatsOpts) *env {
	t.Helper()
	tx, fx := taxonomy(t), fixtureSet(t)
	prof := "{latency: {median: 2ms, p99: 5ms}, accuracy: {misclassification: {fashion: 0.23, default: 0.1}}}"
	simLegacy := map[string]string{
		"rekognition": fmt.Sprintf("{format: rekognition, listen: \"127.0.0.1:0\", credentials: {access_key_id: %s, secret_access_key: %s}, profile: %s}", legacyAK, legacySK, prof),
		"tencent":     fmt.Sprintf("{format: tencent, listen: \"127.0.0.1:0\", credentials: {secret_id: %s, secret_key: %s}, profile: %s}", cnLegacy, cnLegSK, prof),
		"gcv":         fmt.Sprintf("{format: gcv, listen: \"127.0.0.1:0\", credentials: {api_key: %s}, profile: %s}", gcvKey, prof),
		"baidu":       fmt.Sprintf("{format: baidu, listen: \"127.0.0.1:0\", credentials: {api_key: %s, secret_key: %s}, profile: %s}", bdKey, bdSecret, prof),
	}[o.primary]
	simCand := map[string]string{
		"openai":  fmt.Sprintf("{format: openai, listen: \"127.0.0.1:0\", credentials: {api_key: %s}, profile: {latency: {median: 2ms, p99: 5ms}, accuracy: {misclassification: {default: 0.05}}}}", candidateKey),
		"tencent": fmt.Sprintf("{format: tencent, listen: \"127.0.0.1:0\", credentials: {secret_id: %s, secret_key: %s}, profile: {latency: {median: 2ms, p99: 5ms}, accuracy: {misclassification: {default: 0.05}}}}", cnID, cnKey),
	}[o.candidate]
	sc, err := config.Parse("sim.yaml", []byte(fmt.Sprintf("simulate:\n  legacy: %s\n  cand: %s\n", simLegacy, simCand)))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{logs: &bytes.Buffer{}}
	serve := func(name string) *httptest.Server {
		m, err := sim.NewModel(name, sc.Simulate[name], tx, fx, 1)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := sim.NewServer(m, sc.Simulate[name], 0)
		return httptest.NewServer(s)
	}
	legacySrv, candSrv := serve("legacy"), serve("cand")
	e.legacy, e.candidate = &capture{h: legacySrv.Config.Handler}, &capture{h: candSrv.Config.Handler}
	legacyFront, candFront := httptest.NewServer(e.legacy), httptest.NewServer(e.candidate)
	t.Cleanup(func() { legacyFront.Close(); legacySrv.Close(); candFront.Close(); candSrv.Close() })
	e.legacyURL = legacyFront.URL
	legacyProv := map[string]string{
		"rekognition": fmt.Sprintf("{format: rekognition, base_url: %q, region: ap-southeast-1, credentials: {access_key_id: %s, secret_access_key: %s}, pricing: {tiers: [{per_1000: 1.75}]}}", e.legacyURL, legacyAK, legacySK),
		"tencent":     fmt.Sprintf("{format: tencent, base_url: %q, credentials: {secret_id: %s, secret_key: %s}, pricing: {currency: CNY, tiers: [{per_1000: 7.3}]}}", e.legacyURL, cnLegacy, cnLegSK),
		"gcv":         fmt.Sprintf("{format: gcv, base_url: %q, credentials: {api_key: %s}, pricing: {tiers: [{per_1000: 1.5}]}}", e.legacyURL, gcvKey),
		"baidu":       fmt.Sprintf("{format: baidu, base_url: %q, credentials: {api_key: %s, secret_key: %s}}", e.legacyURL, bdKey, bdSecret),
	}[o.primary]
	candProv := map[string]string{
		"openai":  fmt.Sprintf("{format: openai, base_url: \"%s/v1\", model: gemini-2.5-flash, credentials: {api_key: %s}, timeout: 2s}", candFront.URL, candidateKey),
		"tencent": fmt.Sprintf("{format: tencent, base_url: %q, credentials: {secret_id: %s, secret_key: %s}, timeout: 2s, pricing: {currency: CNY, tiers: [{per_1000: 7.3}]}}", candFront.URL, cnID, cnKey),
	}[o.candidate]
	y := fmt.Sprintf(`
fx: {CNY: 0.137}
models:
  gemini-2.5-flash: {input_per_million: 0.30, cached_input_per_million: 0.075, output_per_million: 2.50}
providers:
  legacy: %s
  cand: %s
proxy:
  primary: legacy
  candidate: cand
  shutdown_timeout: 5s
%s
%s
  mirror:
    max_in_flight: 64
`, legacyProv, candProv, clientsFor(o.primary), indentYAML(o.proxyExtra, 2))
	cfg, err := config.Parse(filepath.Join(t.TempDir(), "proxy.yaml"), []byte(y))
	if err != nil {
		t.Fatalf("%v\n%s", err, y)
	}
	cfg.Fixtures = ""
	e.cfg = cfg
	e.dir = filepath.Join(t.TempDir(), "run")
	if e.rec, err = record.Create(e.dir, record.Run{Kind: "proxy", Mode: "shadow"}, record.Options{HlogInterval: 100 * time.Millisecond}); err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(&lockedWriter{w: e.logs}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e.clock = clockwork.NewRealClock()
	if e.p, err = New(cfg, tx, e.rec, Options{Logger: logger, Fixtures: fx, Clock: e.clock}); err != nil {
		t.Fatal(err)
	}
	addr, admin, err := e.p.Listen("127.0.0.1:0", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.proxyURL, e.adminURL = "http://"+addr, "http://"+admin
	ctx, cancel := context.WithCancel(context.Background())
	e.cancel, e.done = cancel, make(chan error, 1)
	go func() { e.done <- e.p.Run(ctx) }()
	t.Cleanup(func() { e.stop(t) })
	return e
}

// clientsFor lists the proxy's client for a primary format (a TC3 pair
// for tencent); the others' clients are not verified in these tests.
func clientsFor(primary string) string {
	switch primary {
	case "tencent":
		return fmt.Sprintf("  clients: [{name: catalogue-cn, access_key_id: %s, secret_access_key: %s}]", cnClient, cnCliSK)
	case "baidu":
		return fmt.Sprintf("  clients: [{name: catalogue-bd, api_key: %s}]", bdClient)
	}
	return ""
}

// TestFormatsBaiduPrimary: a client of a Baidu primary presents its own
// key as the access_token; the proxy checks it and calls the primary with
// a token of the legacy's own (from the primary's token endpoint), which
// the simulated primary checks. An unknown key is refused with Baidu's
// error and reaches nothing.
func TestFormatsBaiduPrimary(t *testing.T) {
	e := newFormatsEnv(t, formatsOpts{primary: "baidu", candidate: "openai"})
	post := func(token string, img []byte) result {
		form := url.Values{"image": {base64.StdEncoding.EncodeToString(img)}}
		r, _ := http.NewRequest(http.MethodPost, e.proxyURL+baidu.Path+"?access_token="+url.QueryEscape(token), strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return do(r)
	}
	img := e.images(t)[0]
	if got := post("not-a-client", img); !bytes.Contains(got.body, []byte(`"error_code":110`)) {
		t.Fatalf("an unknown key: %d %s, want Baidu's error 110 (invalid access token)", got.status, got.body)
	}
	if n := e.legacy.count(); n != 0 {
		t.Fatalf("a refused call reached the primary (%d requests)", n)
	}
	got := post(bdClient, img)
	if got.status != 200 || bytes.Contains(got.body, []byte("error_code")) || !bytes.Contains(got.body, []byte("keyword")) {
		t.Fatalf("a client's call: %d %s", got.status, got.body)
	}
	prim, _ := byRole(e.observations(t))
	if len(prim) != 1 || prim[0].Client != "catalogue-bd" || prim[0].Code != "" {
		t.Errorf("primary observations %+v", prim)
	}
	if strings.Contains(e.logs.String(), bdSecret) || strings.Contains(e.logs.String(), bdClient) {
		t.Error("a Baidu secret is in the log")
	}
}

// tiiaVia is Tencent's official client pointed at base over plain http.
func tiiaVia(t *testing.T, base, id, key string) *tiia.Client {
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = strings.TrimPrefix(base, "http://")
	cpf.HttpProfile.Scheme = "HTTP"
	cpf.HttpProfile.ReqTimeout = 10
	c, err := tiia.NewClient(common.NewCredential(id, key), "ap-guangzhou", cpf)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// detectLabelPro sends one image with the official SDK, tagged seq.
func detectLabelPro(c *tiia.Client, seq string, img []byte) (*tiia.DetectLabelProResponse, error) {
	req := tiia.NewDetectLabelProRequest()
	req.ImageBase64 = common.StringPtr(base64.StdEncoding.EncodeToString(img))
	req.SetHeader(map[string]string{"X-Test-Seq": seq})
	return c.DetectLabelProWithContext(context.Background(), req)
}

// tiiaLabels is the SDK's answer as vision labels.
func tiiaLabels(ls []*tiia.DetectLabelItem) []vision.Label {
	var out []vision.Label
	for _, l := range ls {
		out = append(out, vision.Label{Name: *l.Name, Confidence: float64(*l.Confidence) / 100, Parents: []string{*l.SecondCategory, *l.FirstCategory}})
	}
	return out
}

// byRole splits a run's observations into primary and candidate ones.
func byRole(obs []record.Observation) (prim, cand []record.Observation) {
	for _, o := range obs {
		if o.Role == record.RolePrimary {
			prim = append(prim, o)
		} else {
			cand = append(cand, o)
		}
	}
	return prim, cand
}

// TestFormatsTencentPrimaryShadow: Tencent's SDK through the proxy, with
// Tencent as the primary: every answer is the primary's own, every call
// is mirrored to the candidate, and both are recorded, normalised through
// the taxonomy's Chinese names, the primary priced in CNY.
func TestFormatsTencentPrimaryShadow(t *testing.T) {
	e := newFormatsEnv(t, formatsOpts{primary: "tencent", candidate: "openai"})
	// A wrong secret, or the legacy's own pair, is refused with Tencent's
	// own error and reaches neither side.
	for _, k := range [][2]string{{cnClient, "wrong-secret"}, {cnLegacy, cnLegSK}} {
		_, err := detectLabelPro(tiiaVia(t, e.proxyURL, k[0], k[1]), "refused", e.images(t)[0])
		if err == nil || !strings.Contains(err.Error(), "AuthFailure") {
			t.Errorf("%s: %v, want Tencent's AuthFailure", k[0], err)
		}
	}
	if e.legacy.count() != 0 || e.candidate.count() != 0 {
		t.Fatalf("refused calls reached the primary (%d) or the candidate (%d)", e.legacy.count(), e.candidate.count())
	}
	c := tiiaVia(t, e.proxyURL, cnClient, cnCliSK)
	imgs := e.images(t)[:20]
	for i, img := range imgs {
		seq := fmt.Sprint("t", i)
		resp, err := detectLabelPro(c, seq, img)
		if err != nil {
			t.Fatalf("%s: %v", seq, err)
		}
		ex := e.legacy.get(seq)
		if ex == nil {
			t.Fatalf("%s: the primary never saw the call", seq)
		}
		var sent struct {
			Response struct{ Labels []map[string]any }
		}
		if err := json.Unmarshal(ex.body, &sent); err != nil || len(sent.Response.Labels) != len(resp.Response.Labels) {
			t.Errorf("%s: the SDK read %d labels, the primary sent %s", seq, len(resp.Response.Labels), ex.body)
		}
	}
	prim, cand := byRole(e.observations(t))
	if len(prim) != len(imgs) || len(cand) != len(imgs) {
		t.Fatalf("%d primary and %d candidate observations for %d calls", len(prim), len(cand), len(imgs))
	}
	for _, o := range prim {
		if o.Code != "" || o.Tags == nil || o.Tags.Top() == "" || o.FixtureID == "" || o.Currency != "CNY" || o.Cost <= 0 {
			t.Errorf("primary observation %+v", o)
		}
	}
	for _, o := range cand {
		if o.Code != "" || o.Tags == nil || o.FixtureID == "" {
			t.Errorf("candidate observation %+v", o)
		}
	}
}

// TestFormatsTencentPrimaryCanary: with the candidate answering every
// call, Tencent's SDK receives the candidate's answers translated into
// TIIA's shapes (DetectLabelPro's Labels, DetectProduct's Products), in
// Chinese, which normalise back to the fixture's category.
func TestFormatsTencentPrimaryCanary(t *testing.T) {
	e := newFormatsEnv(t, formatsOpts{primary: "tencent", candidate: "openai",
		proxyExtra: canaryYAML("canary", "percent: 100, compare_with_legacy: false")})
	c := tiiaVia(t, e.proxyURL, cnClient, cnCliSK)
	fx, tx := fixtureSet(t), taxonomy(t)
	right := 0
	for i, it := range fx.Items[:30] {
		b, _ := fx.ReadImage(it)
		resp, err := detectLabelPro(c, fmt.Sprint("c", i), b)
		if err != nil {
			t.Fatalf("DetectLabelPro answered by the candidate: %v", err)
		}
		if *resp.Response.RequestId == "" || len(resp.Response.Labels) == 0 {
			t.Fatalf("translated answer without labels or RequestId: %s", resp.ToJsonString())
		}
		for _, l := range resp.Response.Labels {
			if *l.Name == "" || *l.Confidence < 0 || *l.Confidence > 100 || *l.FirstCategory == "" || *l.SecondCategory == "" {
				t.Fatalf("label %s", resp.ToJsonString())
			}
		}
		if tx.Normalize("tencent", vision.Result{Labels: tiiaLabels(resp.Response.Labels)}).Top() == it.Category {
			right++
		}
	}
	// The simulated candidate is 95 % right: its answers survive the
	// round trip through TIIA's Chinese vocabulary.
	if right < 24 {
		t.Errorf("%d/30 right after translation", right)
	}
	b, _ := fx.ReadImage(fx.Items[0])
	preq := tiia.NewDetectProductRequest()
	preq.ImageBase64 = common.StringPtr(base64.StdEncoding.EncodeToString(b))
	presp, err := c.DetectProductWithContext(context.Background(), preq)
	if err != nil || len(presp.Response.Products) == 0 || *presp.Response.Products[0].Parents == "" {
		t.Errorf("DetectProduct answered by the candidate: %v %v", presp, err)
	}
	if e.legacy.count() != 0 {
		t.Errorf("the primary saw %d calls at 100 %% without compare", e.legacy.count())
	}
}

// TestFormatsTencentCandidate: Rekognition primary, Tencent candidate:
// mirrored calls reach the TIIA simulator signed with the candidate's own
// SecretId (verified there) and are recorded with Chinese answers
// normalised to canonical categories.
func TestFormatsTencentCandidate(t *testing.T) {
	e := newFormatsEnv(t, formatsOpts{primary: "rekognition", candidate: "tencent"})
	imgs := e.images(t)[:20]
	for i, img := range imgs {
		if r := e.send(t, fmt.Sprint("k", i), img); !e.checkTransparent(t, fmt.Sprint("k", i), r) {
			t.FailNow()
		}
	}
	_, cand := byRole(e.observations(t))
	if len(cand) != len(imgs) {
		t.Fatalf("%d candidate observations for %d calls", len(cand), len(imgs))
	}
	right := 0
	fx := fixtureSet(t)
	for _, o := range cand {
		if o.Code != "" || o.Tags == nil || o.Currency != "CNY" {
			t.Errorf("candidate observation %+v", o)
			continue
		}
		for _, it := range fx.Items {
			if it.ID == o.FixtureID && o.Tags.Top() == it.Category {
				right++
			}
		}
	}
	if right < 15 {
		t.Errorf("%d/%d candidate answers right", right, len(cand))
	}
	// Mirrored calls carry no test sequence: the last one is kept under "".
	if ex := e.candidate.get(""); ex == nil || !strings.HasPrefix(ex.reqHeader.Get("Authorization"), "TC3-HMAC-SHA256 Credential="+cnID+"/") {
		t.Errorf("the candidate was not called with its own SecretId: %+v", ex)
	}
}

// gcvVia is Google's official Cloud Vision client (REST) pointed at base.
func gcvVia(t *testing.T, base string) *vapi.ImageAnnotatorClient {
	c, err := vapi.NewImageAnnotatorRESTClient(context.Background(), option.WithEndpoint(base), option.WithAPIKey(gcvKey))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func annotate(c *vapi.ImageAnnotatorClient, seq string, img []byte) (*visionpb.BatchAnnotateImagesResponse, error) {
	ctx := callctx.SetHeaders(context.Background(), "X-Test-Seq", seq)
	return c.BatchAnnotateImages(ctx, &visionpb.BatchAnnotateImagesRequest{Requests: []*visionpb.AnnotateImageRequest{{
		Image:    &visionpb.Image{Content: img},
		Features: []*visionpb.Feature{{Type: visionpb.Feature_LABEL_DETECTION, MaxResults: 10}, {Type: visionpb.Feature_IMAGE_PROPERTIES}},
	}}})
}

// TestFormatsGCVOfficialClient: Google's own client (proto3 JSON, enums as
// numbers) through the proxy with GCV as the primary: in shadow mode its
// calls are decoded, mirrored and recorded; in canary mode it reads the
// candidate's answers translated into images:annotate.
func TestFormatsGCVOfficialClient(t *testing.T) {
	t.Run("shadow", func(t *testing.T) {
		e := newFormatsEnv(t, formatsOpts{primary: "gcv", candidate: "openai"})
		c := gcvVia(t, e.proxyURL)
		imgs := e.images(t)[:20]
		for i, img := range imgs {
			resp, err := annotate(c, fmt.Sprint("g", i), img)
			if err != nil || len(resp.Responses) != 1 || len(resp.Responses[0].LabelAnnotations) == 0 {
				t.Fatalf("g%d: %v %v", i, resp, err)
			}
		}
		prim, cand := byRole(e.observations(t))
		if len(prim) != len(imgs) || len(cand) != len(imgs) {
			t.Fatalf("%d primary and %d candidate observations for %d calls", len(prim), len(cand), len(imgs))
		}
		for _, o := range append(prim, cand...) {
			if o.Code != "" || o.Tags == nil || o.FixtureID == "" {
				t.Errorf("observation %+v", o)
			}
		}
	})
	t.Run("canary", func(t *testing.T) {
		e := newFormatsEnv(t, formatsOpts{primary: "gcv", candidate: "openai",
			proxyExtra: canaryYAML("canary", "percent: 100, compare_with_legacy: false")})
		c := gcvVia(t, e.proxyURL)
		fx, tx := fixtureSet(t), taxonomy(t)
		right := 0
		for i, it := range fx.Items[:30] {
			b, _ := fx.ReadImage(it)
			resp, err := annotate(c, fmt.Sprint("gc", i), b)
			if err != nil || len(resp.Responses) != 1 || resp.Responses[0].Error != nil {
				t.Fatalf("annotate answered by the candidate: %v %v", resp, err)
			}
			var res vision.Result
			for _, l := range resp.Responses[0].LabelAnnotations {
				res.Labels = append(res.Labels, vision.Label{Name: l.Description, Confidence: float64(l.Score)})
			}
			if tx.Normalize("gcv", res).Top() == it.Category {
				right++
			}
		}
		if right < 24 {
			t.Errorf("%d/30 right after translation", right)
		}
		if e.legacy.count() != 0 {
			t.Errorf("the primary saw %d calls at 100 %% without compare", e.legacy.count())
		}
	})
}

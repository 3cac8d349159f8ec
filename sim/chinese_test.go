package sim

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
	tiia "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/tiia/v20190529"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/formats"
)

const (
	tcID  = "AKIDsimTencent0001"
	tcKey = "sim-tencent-secret-K2"
	bdAK  = "sim-baidu-api-key"
	bdSK  = "sim-baidu-secret-S3"
)

// chineseSim serves one simulator of format with the given profile YAML
// and its credentials, and returns its URL.
func chineseSim(t *testing.T, format, profile string, fx *fixtures.Set) string {
	t.Helper()
	creds := fmt.Sprintf("{secret_id: %s, secret_key: %s}", tcID, tcKey)
	if format == "baidu" {
		creds = fmt.Sprintf("{api_key: %s, secret_key: %s}", bdAK, bdSK)
	}
	cfg, err := config.Parse("sim.yaml", []byte(fmt.Sprintf("simulate:\n  s: {format: %s, listen: \"127.0.0.1:0\", credentials: %s, profile: %s}\n", format, creds, profile)))
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewModel("s", cfg.Simulate["s"], mustTaxonomy(t), fx, 1)
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := NewServer(m, cfg.Simulate["s"], 0)
	r, err := Listen("s", "127.0.0.1:0", srv)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Shutdown(context.Background()) })
	return r.URL
}

func tiiaClient(t *testing.T, url, id, key string) *tiia.Client {
	cpf := profile.NewClientProfile()
	cpf.HttpProfile.Endpoint = strings.TrimPrefix(url, "http://")
	cpf.HttpProfile.Scheme = "HTTP"
	cpf.HttpProfile.ReqTimeout = 5
	c, err := tiia.NewClient(common.NewCredential(id, key), "ap-guangzhou", cpf)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// TestTencentOfficialSDK: Tencent's Go SDK (tiia v1.3.70 with common
// v1.3.213), pointed at the tencent simulator over plain http, tags
// fixture images with DetectLabelPro and DetectProduct (Chinese labels and
// categories that normalise to the fixture's category), gets each
// injected failure as TIIA's own error code, and is refused with a wrong
// SecretKey or an unknown SecretId.
func TestTencentOfficialSDK(t *testing.T) {
	tx := mustTaxonomy(t)
	fx, err := fixtures.Generate(t.TempDir(), tx, fixtures.GenerateOptions{N: 30, Seed: 8})
	if err != nil {
		t.Fatal(err)
	}
	url := chineseSim(t, "tencent", "{latency: {median: 1ms, p99: 2ms}, accuracy: {misclassification: {default: 0}}}", fx)
	c := tiiaClient(t, url, tcID, tcKey)
	ctx := context.Background()
	for _, it := range fx.Items {
		b, _ := fx.ReadImage(it)
		req := tiia.NewDetectLabelProRequest()
		req.ImageBase64 = common.StringPtr(base64.StdEncoding.EncodeToString(b))
		resp, err := c.DetectLabelProWithContext(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", it.ID, err)
		}
		var res vision.Result
		for _, l := range resp.Response.Labels {
			if *l.Confidence < 0 || *l.Confidence > 100 || *l.FirstCategory == "" || *l.SecondCategory == "" {
				t.Errorf("%s: label %s", it.ID, resp.ToJsonString())
			}
			res.Labels = append(res.Labels, vision.Label{Name: *l.Name, Confidence: float64(*l.Confidence) / 100, Parents: []string{*l.SecondCategory, *l.FirstCategory}})
		}
		if got := tx.Normalize("tencent", res).Top(); got != it.Category {
			t.Errorf("%s: DetectLabelPro normalised to %s, want %s (%s)", it.ID, got, it.Category, resp.ToJsonString())
		}
		preq := tiia.NewDetectProductRequest()
		preq.ImageBase64 = req.ImageBase64
		presp, err := c.DetectProductWithContext(ctx, preq)
		if err != nil {
			t.Fatalf("%s DetectProduct: %v", it.ID, err)
		}
		if ps := presp.Response.Products; len(ps) == 0 || *ps[0].Name != tx.ProviderLabel("tencent", it.Category) || *ps[0].XMax <= 0 {
			t.Errorf("%s: products %s", it.ID, presp.ToJsonString())
		}
	}
	b, _ := fx.ReadImage(fx.Items[0])
	img := common.StringPtr(base64.StdEncoding.EncodeToString(b))
	sdkCode := func(c *tiia.Client) string {
		req := tiia.NewDetectLabelProRequest()
		req.ImageBase64 = img
		_, err := c.DetectLabelProWithContext(ctx, req)
		var se *tcerr.TencentCloudSDKError
		if !errors.As(err, &se) {
			return fmt.Sprint(err)
		}
		return se.Code
	}
	if got := sdkCode(tiiaClient(t, url, tcID, "wrong-secret")); got != "AuthFailure.SignatureFailure" {
		t.Errorf("wrong SecretKey: got %s", got)
	}
	if got := sdkCode(tiiaClient(t, url, "AKIDnobody", tcKey)); got != "AuthFailure.SecretIdNotFound" {
		t.Errorf("unknown SecretId: got %s", got)
	}
	for code, want := range map[vision.Code]string{
		vision.CodeThrottled: "RequestLimitExceeded", vision.CodeTimeout: "FailedOperation.RequestTimeout",
		vision.CodeServerError: "InternalError", vision.CodeBadImage: "FailedOperation.ImageDecodeFailed",
		vision.CodeUnauthorized: "AuthFailure.SignatureFailure", vision.CodeQuotaExceeded: "ResourceUnavailable.InArrears",
		vision.CodeTooLarge: "LimitExceeded.TooLargeFileError", vision.CodeBadRequest: "InvalidParameter",
		vision.CodeInvalidResponse: "ClientError.ParseJsonError",
	} {
		u := chineseSim(t, "tencent", fmt.Sprintf("{latency: {median: 1ms, p99: 2ms}, errors: {%s: 1}}", code), fx)
		if got := sdkCode(tiiaClient(t, u, tcID, tcKey)); got != want {
			t.Errorf("injected %s: the SDK got %s, want %s", code, got, want)
		}
		// Our own client reads the same answer as the typed code.
		cfg := &config.Config{Providers: map[string]*config.Provider{"x": {Format: config.FormatTencent, BaseURL: config.URL(u),
			Region: "ap-guangzhou", Timeout: config.Duration(2 * time.Second),
			Credentials: config.Credentials{SecretID: tcID, SecretKey: tcKey}}}}
		oc, _ := formats.NewClient(cfg, tx, "x", &http.Client{})
		if _, err := oc.Classify(ctx, vision.NewImageRequest(b)); vision.ErrorCode(err) != code {
			t.Errorf("injected %s: our client got %v", code, err)
		}
	}
}

// TestBaiduOnSimulator: our baidu client against the simulator: a token
// from its token endpoint, Chinese keywords with roots that normalise to
// the fixture's category, each injected failure as Baidu's error_code and
// the typed code it maps to, and wrong credentials refused.
func TestBaiduOnSimulator(t *testing.T) {
	tx := mustTaxonomy(t)
	fx, err := fixtures.Generate(t.TempDir(), tx, fixtures.GenerateOptions{N: 30, Seed: 8})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	client := func(u, ak, sk string) *vision.Client {
		cfg := &config.Config{Providers: map[string]*config.Provider{"x": {Format: config.FormatBaidu, BaseURL: config.URL(u),
			Timeout: config.Duration(2 * time.Second), Credentials: config.Credentials{APIKey: config.Secret(ak), SecretKey: config.Secret(sk)}}}}
		c, err := formats.NewClient(cfg, tx, "x", &http.Client{})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	url := chineseSim(t, "baidu", "{latency: {median: 1ms, p99: 2ms}, accuracy: {misclassification: {default: 0}}}", fx)
	c := client(url, bdAK, bdSK)
	for _, it := range fx.Items {
		b, _ := fx.ReadImage(it)
		res, err := c.Classify(ctx, vision.Request{Image: vision.NewImage(b), Attributes: vision.AttributeKinds})
		if err != nil {
			t.Fatalf("%s: %v", it.ID, err)
		}
		tags := tx.Normalize("baidu", res)
		if tags.Top() != it.Category {
			t.Errorf("%s: normalised to %s, want %s (%+v)", it.ID, tags.Top(), it.Category, res.Labels)
		}
		if len(tags.Unmapped) > 0 {
			t.Errorf("%s: unmapped words %v", it.ID, tags.Unmapped)
		}
	}
	b, _ := fx.ReadImage(fx.Items[0])
	for _, c := range []struct{ ak, sk string }{{"nobody", bdSK}, {bdAK, "wrong"}} {
		_, err := client(url, c.ak, c.sk).Classify(ctx, vision.NewImageRequest(b))
		if e := vision.AsError(err); e.Code != vision.CodeUnauthorized || e.VendorCode != "invalid_client" {
			t.Errorf("%s/%s: got %v", c.ak, c.sk, err)
		}
	}
	for code, want := range map[vision.Code]string{
		vision.CodeThrottled: "18", vision.CodeQuotaExceeded: "17", vision.CodeServerError: "282000",
		vision.CodeBadImage: "216201", vision.CodeTooLarge: "216202", vision.CodeUnauthorized: "6",
		vision.CodeBadRequest: "216100", vision.CodeTimeout: "",
	} {
		u := chineseSim(t, "baidu", fmt.Sprintf("{latency: {median: 1ms, p99: 2ms}, errors: {%s: 1}}", code), fx)
		_, err := client(u, bdAK, bdSK).Classify(ctx, vision.NewImageRequest(b))
		if e := vision.AsError(err); e.Code != code || e.VendorCode != want {
			t.Errorf("injected %s: got %v, want error_code %q", code, err, want)
		}
	}
}

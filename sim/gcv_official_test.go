package sim

import (
	"context"
	"errors"
	"net/http"
	"testing"

	vapi "cloud.google.com/go/vision/v2/apiv1"
	"cloud.google.com/go/vision/v2/apiv1/visionpb"
	"github.com/googleapis/gax-go/v2/apierror"
	"google.golang.org/api/option"

	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/vision"
)

// TestGoogleOfficialClient: Google's own Cloud Vision Go client
// (cloud.google.com/go/vision/v2/apiv1, REST transport, proto3 JSON with
// enums as numbers and $alt=json;enum-encoding=int) annotates fixture
// images on the gcv simulator, reads labels and dominant colours, and
// gets Google's errors for a wrong key and an unserved feature.
func TestGoogleOfficialClient(t *testing.T) {
	tx := mustTaxonomy(t)
	fx, err := fixtures.Generate(t.TempDir(), tx, fixtures.GenerateOptions{N: 20, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	cfg := exampleConfig(t)
	cfg.Simulate["gcv"].Credentials.APIKey = "gcv-official-key"
	url := startOne(t, cfg, "gcv", tx, fx, 0)
	ctx := context.Background()
	newClient := func(key string) *vapi.ImageAnnotatorClient {
		c, err := vapi.NewImageAnnotatorRESTClient(ctx, option.WithEndpoint(url), option.WithAPIKey(key))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c := newClient("gcv-official-key")
	right, colours := 0, 0
	for _, it := range fx.Items {
		b, _ := fx.ReadImage(it)
		resp, err := c.BatchAnnotateImages(ctx, &visionpb.BatchAnnotateImagesRequest{Requests: []*visionpb.AnnotateImageRequest{{
			Image:    &visionpb.Image{Content: b},
			Features: []*visionpb.Feature{{Type: visionpb.Feature_LABEL_DETECTION, MaxResults: 5}, {Type: visionpb.Feature_IMAGE_PROPERTIES}},
		}}})
		if err != nil {
			t.Fatalf("%s: %v", it.ID, err)
		}
		if len(resp.Responses) != 1 || resp.Responses[0].Error != nil {
			t.Fatalf("%s: responses %v", it.ID, resp.Responses)
		}
		r := resp.Responses[0]
		var res vision.Result
		for _, l := range r.LabelAnnotations {
			res.Labels = append(res.Labels, vision.Label{Name: l.Description, Confidence: float64(l.Score)})
		}
		if len(r.LabelAnnotations) > 5 {
			t.Errorf("%s: %d labels for maxResults 5", it.ID, len(r.LabelAnnotations))
		}
		if r.ImagePropertiesAnnotation != nil && len(r.ImagePropertiesAnnotation.DominantColors.Colors) > 0 {
			colours++
		}
		if tx.Normalize("gcv", res).Top() == it.Category {
			right++
		}
	}
	if right < len(fx.Items)/2 || colours == 0 {
		t.Errorf("official client: %d/%d right, %d with colours", right, len(fx.Items), colours)
	}

	// A wrong key: PERMISSION_DENIED, HTTP 403, as Google answers it.
	b, _ := fx.ReadImage(fx.Items[0])
	_, err = newClient("wrong-key").BatchAnnotateImages(ctx, &visionpb.BatchAnnotateImagesRequest{Requests: []*visionpb.AnnotateImageRequest{{
		Image: &visionpb.Image{Content: b}, Features: []*visionpb.Feature{{Type: visionpb.Feature_LABEL_DETECTION}}}}})
	var ae *apierror.APIError
	if !errors.As(err, &ae) || ae.HTTPCode() != http.StatusForbidden {
		t.Errorf("wrong key: got %v, want an API error with HTTP 403", err)
	}
	// A feature the simulator does not serve: INVALID_ARGUMENT, HTTP 400.
	_, err = c.BatchAnnotateImages(ctx, &visionpb.BatchAnnotateImagesRequest{Requests: []*visionpb.AnnotateImageRequest{{
		Image: &visionpb.Image{Content: b}, Features: []*visionpb.Feature{{Type: visionpb.Feature_FACE_DETECTION}}}}})
	if !errors.As(err, &ae) || ae.HTTPCode() != http.StatusBadRequest {
		t.Errorf("FACE_DETECTION: got %v, want an API error with HTTP 400", err)
	}
	// An undecodable image: a per-image error inside HTTP 200.
	resp, err := c.BatchAnnotateImages(ctx, &visionpb.BatchAnnotateImagesRequest{Requests: []*visionpb.AnnotateImageRequest{{
		Image: &visionpb.Image{Content: []byte("not an image")}, Features: []*visionpb.Feature{{Type: visionpb.Feature_LABEL_DETECTION}}}}})
	if err != nil || len(resp.Responses) != 1 || resp.Responses[0].Error == nil || resp.Responses[0].Error.Code != 3 {
		t.Errorf("bad image: got %v, %v; want responses[0].error code 3", resp, err)
	}
}

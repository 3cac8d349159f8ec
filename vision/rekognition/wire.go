// Package rekognition speaks AWS Rekognition DetectLabels (AWS JSON 1.1):
// a client that signs with SigV4 (aws-sdk-go-v2's signer) and a server side
// that decodes requests and answers in Rekognition's own shapes and errors.
//
// It covers DetectLabels only: other targets are not classification calls.
package rekognition

// Target is the X-Amz-Target of DetectLabels.
const Target = "RekognitionService.DetectLabels"

// ContentType is the AWS JSON 1.1 media type.
const ContentType = "application/x-amz-json-1.1"

// MaxImageBytes is Rekognition's documented limit for image bytes (5 MB).
const MaxImageBytes = 5 * 1024 * 1024

// maxBody leaves room for base64 (4/3) and the JSON around it.
const maxBody = MaxImageBytes*4/3 + 64<<10

// DetectLabelsInput is the request body.
type DetectLabelsInput struct {
	Image         Image     `json:"Image"`
	MaxLabels     *int      `json:"MaxLabels,omitempty"`
	MinConfidence *float64  `json:"MinConfidence,omitempty"`
	Features      []string  `json:"Features,omitempty"`
	Settings      *Settings `json:"Settings,omitempty"`
}

// Image is bytes (base64 in JSON) or an S3 object.
type Image struct {
	Bytes    []byte    `json:"Bytes,omitempty"`
	S3Object *S3Object `json:"S3Object,omitempty"`
}

// S3Object names an image stored in S3.
type S3Object struct {
	Bucket  string `json:"Bucket"`
	Name    string `json:"Name"`
	Version string `json:"Version,omitempty"`
}

// Settings filter labels and size the image-properties answer.
type Settings struct {
	GeneralLabels   *GeneralLabelsSettings   `json:"GeneralLabels,omitempty"`
	ImageProperties *ImagePropertiesSettings `json:"ImageProperties,omitempty"`
}

// GeneralLabelsSettings are label inclusion and exclusion filters.
type GeneralLabelsSettings struct {
	LabelInclusionFilters         []string `json:"LabelInclusionFilters,omitempty"`
	LabelExclusionFilters         []string `json:"LabelExclusionFilters,omitempty"`
	LabelCategoryInclusionFilters []string `json:"LabelCategoryInclusionFilters,omitempty"`
	LabelCategoryExclusionFilters []string `json:"LabelCategoryExclusionFilters,omitempty"`
}

// ImagePropertiesSettings sizes the dominant-colour answer.
type ImagePropertiesSettings struct {
	MaxDominantColors int `json:"MaxDominantColors,omitempty"`
}

// DetectLabelsOutput is the response body.
type DetectLabelsOutput struct {
	Labels            []Label          `json:"Labels"`
	LabelModelVersion string           `json:"LabelModelVersion,omitempty"`
	ImageProperties   *ImageProperties `json:"ImageProperties,omitempty"`
}

// Label is one detected label, confidence 0–100.
type Label struct {
	Name       string     `json:"Name"`
	Confidence float64    `json:"Confidence"`
	Instances  []Instance `json:"Instances"`
	Parents    []Named    `json:"Parents"`
	Aliases    []Named    `json:"Aliases"`
	Categories []Named    `json:"Categories"`
}

// Named is {"Name": …}.
type Named struct {
	Name string `json:"Name"`
}

// Instance is one bounding box of a label.
type Instance struct {
	BoundingBox BoundingBox `json:"BoundingBox"`
	Confidence  float64     `json:"Confidence"`
}

// BoundingBox is relative to the image, 0–1.
type BoundingBox struct {
	Width  float64 `json:"Width"`
	Height float64 `json:"Height"`
	Left   float64 `json:"Left"`
	Top    float64 `json:"Top"`
}

// ImageProperties is the IMAGE_PROPERTIES feature's answer.
type ImageProperties struct {
	Quality        *Quality        `json:"Quality,omitempty"`
	DominantColors []DominantColor `json:"DominantColors"`
}

// Quality scores, 0–100.
type Quality struct {
	Brightness float64 `json:"Brightness"`
	Sharpness  float64 `json:"Sharpness"`
	Contrast   float64 `json:"Contrast"`
}

// DominantColor is one dominant colour.
type DominantColor struct {
	Red             int     `json:"Red"`
	Green           int     `json:"Green"`
	Blue            int     `json:"Blue"`
	HexCode         string  `json:"HexCode"`
	CSSColor        string  `json:"CSSColor,omitempty"`
	SimplifiedColor string  `json:"SimplifiedColor,omitempty"`
	PixelPercent    float64 `json:"PixelPercent"`
}

// ErrorBody is an AWS JSON 1.1 error.
type ErrorBody struct {
	Type    string `json:"__type"`
	Message string `json:"message,omitempty"`
	Code    string `json:"code,omitempty"`
}

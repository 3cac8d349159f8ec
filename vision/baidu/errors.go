package baidu

import (
	"bytes"
	"image"
	_ "image/jpeg" // DecodeConfig: the longest-side check
	_ "image/png"

	"github.com/cutover/cutover/vision"
)

// Codes maps Baidu's error_code values to typed codes: the platform codes
// of the image-recognition error table, and the 216xxx/282xxx codes its
// sibling tables (image search, OCR) share.
var Codes = map[int]vision.Code{
	1:  vision.CodeServerError,   // Unknown error
	2:  vision.CodeServerError,   // Service temporarily unavailable
	3:  vision.CodeBadRequest,    // Unsupported openapi method
	4:  vision.CodeThrottled,     // Open api request limit reached (cluster over limit)
	6:  vision.CodeUnauthorized,  // No permission to access data
	13: vision.CodeUnauthorized,  // Get service token failed
	14: vision.CodeUnauthorized,  // IAM Certification failed
	15: vision.CodeUnauthorized,  // app not exsits or create failed
	17: vision.CodeQuotaExceeded, // Open api daily request limit reached
	18: vision.CodeThrottled,     // Open api qps request limit reached
	19: vision.CodeQuotaExceeded, // Open api total request limit reached

	100: vision.CodeUnauthorized, // Invalid parameter (access_token)
	110: vision.CodeUnauthorized, // Access token invalid or no longer valid
	111: vision.CodeUnauthorized, // Access token expired

	216100: vision.CodeBadRequest,   // invalid param
	216101: vision.CodeBadRequest,   // not enough param
	216102: vision.CodeBadRequest,   // service not support
	216103: vision.CodeBadRequest,   // param too long
	216110: vision.CodeUnauthorized, // appid not exist
	216200: vision.CodeBadImage,     // empty image
	216201: vision.CodeBadImage,     // image format error
	216202: vision.CodeTooLarge,     // image size error
	216203: vision.CodeBadImage,     // image size error (in practice: bad base64)
	216630: vision.CodeServerError,  // recognize error
	282000: vision.CodeServerError,  // internal error
}

// CodeOf maps an error_code to a typed code; an unlisted one is a
// server_error.
func CodeOf(n int) vision.Code {
	if c, ok := Codes[n]; ok {
		return c
	}
	return vision.CodeServerError
}

// answerFor is the error_code and error_msg a server answers a typed code
// with, when the error carries no Baidu code of its own.
func answerFor(c vision.Code) (int, string) {
	switch c {
	case vision.CodeThrottled:
		return 18, "Open api qps request limit reached"
	case vision.CodeQuotaExceeded:
		return 17, "Open api daily request limit reached"
	case vision.CodeUnauthorized:
		return 6, "No permission to access data"
	case vision.CodeBadImage:
		return 216201, "image format error"
	case vision.CodeTooLarge:
		return 216202, "image size error"
	case vision.CodeBadRequest:
		return 216100, "invalid param"
	}
	return 282000, "internal error"
}

// imageSize is a JPEG or PNG image's size in pixels (0, 0 otherwise).
func imageSize(b []byte) (int, int) {
	cfg, _, err := image.DecodeConfig(bytes.NewReader(b))
	if err != nil {
		return 0, 0
	}
	return cfg.Width, cfg.Height
}

package tencent

import (
	"strings"

	"github.com/cutover/cutover/vision"
)

// Codes maps TIIA's error codes to typed codes: the common API 3.0 codes
// and those tiia/v20190529/errors.go (SDK v1.3.70) lists for the actions
// cutover calls, plus the image codes of its sibling actions.
var Codes = map[string]vision.Code{
	"RequestLimitExceeded":                  vision.CodeThrottled,
	"RequestLimitExceeded.IPLimitExceeded":  vision.CodeThrottled,
	"RequestLimitExceeded.UinLimitExceeded": vision.CodeThrottled,

	"FailedOperation.RequestTimeout": vision.CodeTimeout,

	"FailedOperation.ImageDecodeFailed":           vision.CodeBadImage,
	"FailedOperation.ImageNotSupported":           vision.CodeBadImage,
	"InvalidParameter.ImageFormatNotSupport":      vision.CodeBadImage,
	"FailedOperation.EmptyImageError":             vision.CodeBadImage,
	"InvalidParameterValue.ImageEmpty":            vision.CodeBadImage,
	"FailedOperation.ImageUnQualified":            vision.CodeBadImage,
	"FailedOperation.ImageResolutionInsufficient": vision.CodeBadImage,
	"InvalidParameter.PictureSolidColorError":     vision.CodeBadImage,
	"FailedOperation.ImageDownloadError":          vision.CodeBadImage,
	"FailedOperation.DownLoadError":               vision.CodeBadImage,
	"FailedOperation.ImageUrlInvalid":             vision.CodeBadImage,
	"InvalidParameterValue.UrlIllegal":            vision.CodeBadImage,

	"FailedOperation.TooLargeFileError":     vision.CodeTooLarge,
	"LimitExceeded.TooLargeFileError":       vision.CodeTooLarge,
	"FailedOperation.ImageSizeExceed":       vision.CodeTooLarge,
	"FailedOperation.ImageResolutionExceed": vision.CodeTooLarge,
	"RequestSizeLimitExceeded":              vision.CodeTooLarge,

	"AuthFailure.SignatureFailure":      vision.CodeUnauthorized,
	"AuthFailure.SignatureExpire":       vision.CodeUnauthorized,
	"AuthFailure.SecretIdNotFound":      vision.CodeUnauthorized,
	"AuthFailure.InvalidSecretId":       vision.CodeUnauthorized,
	"AuthFailure.InvalidAuthorization":  vision.CodeUnauthorized,
	"AuthFailure.TokenFailure":          vision.CodeUnauthorized,
	"AuthFailure.MFAFailure":            vision.CodeUnauthorized,
	"AuthFailure.UnauthorizedOperation": vision.CodeUnauthorized,
	"UnauthorizedOperation":             vision.CodeUnauthorized,
	"FailedOperation.UnOpenError":       vision.CodeUnauthorized,
	"ResourceUnavailable.NotExist":      vision.CodeUnauthorized,
	"ResourceUnavailable.IsOpening":     vision.CodeUnauthorized,

	"ResourceUnavailable.InArrears":          vision.CodeQuotaExceeded,
	"ResourceUnavailable.StopUsing":          vision.CodeQuotaExceeded,
	"FailedOperation.BalanceInsufficient":    vision.CodeQuotaExceeded,
	"ResourcesSoldOut.ChargeStatusException": vision.CodeQuotaExceeded,
	"LimitExceeded":                          vision.CodeQuotaExceeded,

	"InvalidParameter":                                 vision.CodeBadRequest,
	"InvalidParameter.InvalidParameter":                vision.CodeBadRequest,
	"InvalidParameterValue":                            vision.CodeBadRequest,
	"InvalidParameterValue.InvalidParameterValueLimit": vision.CodeBadRequest,
	"MissingParameter":                                 vision.CodeBadRequest,
	"UnknownParameter":                                 vision.CodeBadRequest,
	"InvalidAction":                                    vision.CodeBadRequest,
	"NoSuchVersion":                                    vision.CodeBadRequest,
	"UnsupportedRegion":                                vision.CodeBadRequest,
	"UnsupportedProtocol":                              vision.CodeBadRequest,
	"UnsupportedOperation":                             vision.CodeBadRequest,
	"InvalidRequest":                                   vision.CodeBadRequest,

	"InternalError":                        vision.CodeServerError,
	"FailedOperation.InnerError":           vision.CodeServerError,
	"FailedOperation.RpcFail":              vision.CodeServerError,
	"FailedOperation.ServerError":          vision.CodeServerError,
	"FailedOperation.UnKnowError":          vision.CodeServerError,
	"FailedOperation.Unknown":              vision.CodeServerError,
	"FailedOperation.InvokeChargeError":    vision.CodeServerError,
	"FailedOperation.RequestError":         vision.CodeServerError,
	"FailedOperation.RecognizeFailded":     vision.CodeServerError,
	"ServiceUnavailable":                   vision.CodeServerError,
	"ResourceInsufficient":                 vision.CodeServerError,
	"FailedOperation.NoObjectDetected":     vision.CodeBadImage,
	"FailedOperation.ImageNotFoundInfo":    vision.CodeBadImage,
	"FailedOperation.ParameterEmpty":       vision.CodeBadRequest,
	"MissingParameter.ErrorParameterEmpty": vision.CodeBadRequest,
}

// CodeOf maps a TIIA error code to a typed code: the table, then the
// code's family (the part before the first dot), then server_error.
func CodeOf(code string) vision.Code {
	if c, ok := Codes[code]; ok {
		return c
	}
	family, _, _ := strings.Cut(code, ".")
	switch family {
	case "AuthFailure", "UnauthorizedOperation":
		return vision.CodeUnauthorized
	case "RequestLimitExceeded":
		return vision.CodeThrottled
	case "InvalidParameter", "InvalidParameterValue", "MissingParameter", "UnknownParameter", "UnsupportedOperation":
		return vision.CodeBadRequest
	case "ResourceUnavailable", "ResourcesSoldOut", "LimitExceeded":
		return vision.CodeQuotaExceeded
	}
	if strings.HasPrefix(code, "FailedOperation.Image") {
		return vision.CodeBadImage
	}
	return vision.CodeServerError
}

// answerFor is the TIIA code and message a server answers a typed code
// with, when the error carries no TIIA code of its own.
func answerFor(c vision.Code) (code, msg string) {
	switch c {
	case vision.CodeThrottled:
		return "RequestLimitExceeded", "Your current request times equals to `21` in a second, which exceeds the frequency limit `20` for a second. Please reduce the frequency of calls."
	case vision.CodeTimeout:
		return "FailedOperation.RequestTimeout", "后端服务超时。"
	case vision.CodeBadImage:
		return "FailedOperation.ImageDecodeFailed", "图片解码失败。"
	case vision.CodeTooLarge:
		return "LimitExceeded.TooLargeFileError", "文件太大。"
	case vision.CodeUnauthorized:
		return "AuthFailure.SignatureFailure", "The provided credentials could not be validated. Please check your signature is correct."
	case vision.CodeQuotaExceeded:
		return "ResourceUnavailable.InArrears", "帐号已欠费。"
	case vision.CodeBadRequest:
		return "InvalidParameter", "参数错误。"
	}
	return "InternalError", "内部错误。"
}

package vision

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"
)

// Code classifies a provider failure so that it can be counted, retried and
// recorded independently of the wire format that reported it.
type Code string

// The typed error codes. Every wire format maps its own errors onto these.
const (
	CodeThrottled       Code = "throttled"
	CodeTimeout         Code = "timeout"
	CodeBadImage        Code = "bad_image"
	CodeTooLarge        Code = "too_large"
	CodeUnauthorized    Code = "unauthorized"
	CodeBadRequest      Code = "bad_request"
	CodeServerError     Code = "server_error"
	CodeNetwork         Code = "network"
	CodeInvalidResponse Code = "invalid_response"
	// CodeQuotaExceeded is a spent account or budget (OpenAI's
	// insufficient_quota): unlike throttling, waiting does not help.
	CodeQuotaExceeded Code = "quota_exceeded"

	// Vision-LLM outcomes: the call succeeded but its answer is unusable.
	// They are counted, never crashed on and never scored as right.
	CodeLLMInvalidJSON     Code = "llm_invalid_json"     // content is not JSON
	CodeLLMSchemaViolation Code = "llm_schema_violation" // JSON that breaks the response schema
	CodeLLMRefusal         Code = "llm_refusal"          // message.refusal or finish_reason content_filter
	CodeLLMTruncated       Code = "llm_truncated"        // finish_reason length
)

// Codes lists every code in report order.
var Codes = []Code{CodeThrottled, CodeTimeout, CodeBadImage, CodeTooLarge, CodeUnauthorized,
	CodeBadRequest, CodeServerError, CodeNetwork, CodeInvalidResponse, CodeQuotaExceeded,
	CodeLLMInvalidJSON, CodeLLMSchemaViolation, CodeLLMRefusal, CodeLLMTruncated}

// Valid reports whether c is one of Codes.
func (c Code) Valid() bool {
	for _, v := range Codes {
		if c == v {
			return true
		}
	}
	return false
}

// Retryable reports whether a request that failed with c may succeed if sent
// again unchanged: throttling, timeouts, server errors and network failures.
func (c Code) Retryable() bool {
	switch c {
	case CodeThrottled, CodeTimeout, CodeServerError, CodeNetwork:
		return true
	}
	return false
}

// Error is a provider failure with its typed code. Status is the HTTP status
// when there was one; VendorCode is the provider's own error name.
type Error struct {
	Code       Code
	Status     int
	VendorCode string
	Message    string
	// RetryAfter is the provider's requested back-off, if it sent one.
	RetryAfter time.Duration
	// Usage is the token accounting of a call that failed after the model
	// ran (a refusal, a truncated or malformed answer): it still costs.
	Usage *Usage
	Err   error
}

func (e *Error) Error() string {
	s := string(e.Code)
	if e.VendorCode != "" {
		s += " (" + e.VendorCode + ")"
	}
	if e.Status != 0 {
		s += fmt.Sprintf(" HTTP %d", e.Status)
	}
	if e.Message != "" {
		s += ": " + e.Message
	}
	if e.Err != nil {
		s += ": " + e.Err.Error()
	}
	return s
}

func (e *Error) Unwrap() error { return e.Err }

// Errorf returns an *Error with code c and a formatted message.
func Errorf(c Code, format string, args ...any) *Error {
	return &Error{Code: c, Message: fmt.Sprintf(format, args...)}
}

// ErrorCode returns the typed code of err: the code of an *Error in its
// chain, CodeTimeout for deadline errors, CodeNetwork for any other
// transport failure, and "" for nil.
func ErrorCode(err error) Code {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return CodeTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) {
		if ne.Timeout() {
			return CodeTimeout
		}
		return CodeNetwork
	}
	return CodeNetwork
}

// TransportError classifies an error from http.Client.Do: deadlines become
// CodeTimeout, everything else CodeNetwork.
func TransportError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	return &Error{Code: ErrorCode(err), Err: err}
}

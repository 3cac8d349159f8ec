// Package openai speaks OpenAI-compatible Chat Completions with image input
// — the shape HolySheep's relay (https://api.holysheep.ai/v1) and most
// vision LLMs share — as a tagging API: a prompt plus one image in, a strict
// json_schema answer constrained to the taxonomy's vocabulary out.
//
// The client turns LLM failure modes into typed codes (invalid JSON, schema
// violations, refusals, truncation) instead of crashing or counting them as
// right; the server side decodes such requests and answers completions with
// consistent token usage, for the simulator.
package openai

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/cutover/cutover/internal/jsonx"
)

// Path is the operation below the base URL (which ends in /v1).
const Path = "/chat/completions"

// MaxImageBytes is the image size limit cutover applies (20 MB, OpenAI's
// documented per-image limit).
const MaxImageBytes = 20 * 1024 * 1024

const maxBody = MaxImageBytes*4/3 + 1<<20

// ChatRequest is the request body.
type ChatRequest struct {
	Model               string          `json:"model"`
	Messages            []Message       `json:"messages"`
	ResponseFormat      *ResponseFormat `json:"response_format,omitempty"`
	MaxCompletionTokens int             `json:"max_completion_tokens,omitempty"`
	MaxTokens           int             `json:"max_tokens,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	Seed                *int64          `json:"seed,omitempty"`
	Logprobs            bool            `json:"logprobs,omitempty"`
	TopLogprobs         int             `json:"top_logprobs,omitempty"`
}

// Message is one chat message; Content is a string or a list of parts.
type Message struct {
	Role    string         `json:"role"`
	Content MessageContent `json:"content"`
}

// MessageContent is a message's content: Text, or Parts when it was a list.
type MessageContent struct {
	Text  string
	Parts []Part
}

// MarshalJSON writes a string when there are no parts.
func (c MessageContent) MarshalJSON() ([]byte, error) {
	if c.Parts == nil {
		return json.Marshal(c.Text)
	}
	return json.Marshal(c.Parts)
}

// UnmarshalJSON reads a string or a list of parts.
func (c *MessageContent) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) > 0 && b[0] == '"':
		return jsonx.Unmarshal(b, &c.Text)
	case len(b) > 0 && b[0] == '[':
		// segmentio's decoder: a part holds the image as a data URL, and
		// encoding/json scans it several times over.
		return jsonx.Unmarshal(b, &c.Parts)
	case string(b) == "null":
		return nil
	}
	return fmt.Errorf("message content must be a string or a list of parts")
}

// Part is one content part: text or image_url.
type Part struct {
	Type     string    `json:"type"`
	Text     string    `json:"text,omitempty"`
	ImageURL *ImageURL `json:"image_url,omitempty"`
}

// ImageURL is a data: URI or an http(s) URL, with the detail level.
type ImageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

// ResponseFormat asks for structured output.
type ResponseFormat struct {
	Type       string      `json:"type"`
	JSONSchema *JSONSchema `json:"json_schema,omitempty"`
}

// JSONSchema is a named, strict JSON schema.
type JSONSchema struct {
	Name   string          `json:"name"`
	Strict bool            `json:"strict,omitempty"`
	Schema json.RawMessage `json:"schema"`
}

// ChatCompletion is the response body.
type ChatCompletion struct {
	ID                string   `json:"id"`
	Object            string   `json:"object"`
	Created           int64    `json:"created"`
	Model             string   `json:"model"`
	SystemFingerprint string   `json:"system_fingerprint,omitempty"`
	Choices           []Choice `json:"choices"`
	Usage             *Usage   `json:"usage,omitempty"`
}

// Choice is one answer.
type Choice struct {
	Index        int             `json:"index"`
	Message      ResponseMessage `json:"message"`
	FinishReason string          `json:"finish_reason"`
	Logprobs     *ChoiceLogprobs `json:"logprobs"`
}

// ResponseMessage is the assistant's message: content, or a refusal.
type ResponseMessage struct {
	Role    string  `json:"role"`
	Content *string `json:"content"`
	Refusal *string `json:"refusal"`
}

// ChoiceLogprobs are per-token log-probabilities of the content.
type ChoiceLogprobs struct {
	Content []TokenLogprob `json:"content"`
}

// TokenLogprob is one token and its log-probability.
type TokenLogprob struct {
	Token       string       `json:"token"`
	Logprob     float64      `json:"logprob"`
	Bytes       []int        `json:"bytes,omitempty"`
	TopLogprobs []TopLogprob `json:"top_logprobs,omitempty"`
}

// TopLogprob is an alternative token.
type TopLogprob struct {
	Token   string  `json:"token"`
	Logprob float64 `json:"logprob"`
}

// Usage is the token accounting.
type Usage struct {
	PromptTokens        int64         `json:"prompt_tokens"`
	CompletionTokens    int64         `json:"completion_tokens"`
	TotalTokens         int64         `json:"total_tokens"`
	PromptTokensDetails *TokenDetails `json:"prompt_tokens_details,omitempty"`
}

// TokenDetails breaks prompt tokens down.
type TokenDetails struct {
	CachedTokens int64 `json:"cached_tokens"`
}

// ErrorBody is the error envelope.
type ErrorBody struct {
	Error ErrorDetail `json:"error"`
}

// ErrorDetail describes an error; Param and Code may be null.
type ErrorDetail struct {
	Message string  `json:"message"`
	Type    string  `json:"type"`
	Param   *string `json:"param"`
	Code    *string `json:"code"`
}

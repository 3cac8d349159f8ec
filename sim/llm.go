package sim

import (
	"crypto/sha256"
	"fmt"
	"math"
	"net/http"
	"strconv"

	"github.com/cutover/cutover/vision"
	"github.com/cutover/cutover/vision/openai"
)

// completion renders a vision LLM's answer to req: the tagging JSON, or the
// drawn failure mode, with token usage consistent with the request (prompt
// text and schema, image tokens by the model family's rule, cached prompt
// prefix on repeats) and with the content. It returns the completion and
// its output tokens, which set the generation time.
func (m *Model) completion(req vision.Request, out Outcome) (openai.ChatCompletion, int64) {
	llm := req.LLM
	if llm == nil {
		llm = &vision.LLMParams{Model: "sim"}
	}
	content := openai.Content(out.Result, req.Attributes)
	finish := "stop"
	var refusal *string
	switch out.LLMFailure {
	case vision.CodeLLMInvalidJSON:
		content = "Here are the tags you asked for: " + content[:len(content)/2]
	case vision.CodeLLMSchemaViolation:
		top := ""
		if len(out.Result.Categories) > 0 {
			top = out.Result.Categories[0].Name
		}
		content = fmt.Sprintf(`{"category":%q,"confidence":0.9}`, top)
	case vision.CodeLLMRefusal:
		r := "I'm sorry, but I can't help with identifying the contents of this image."
		refusal, content = &r, ""
	case vision.CodeLLMTruncated:
		content = content[:len(content)/2]
		finish = "length"
	}
	text := openai.TextTokens(llm.PromptText)
	usage := vision.Usage{
		InputTokens:  text + openai.ImageTokens(openai.ImageRule("", llm.Model), llm.Detail, llm.Width, llm.Height) + 8,
		OutputTokens: max(openai.TextTokens(content), 1),
	}
	if refusal != nil {
		usage.OutputTokens = openai.TextTokens(*refusal)
	}
	if out.LLMFailure == vision.CodeLLMTruncated && llm.MaxTokens > 0 {
		usage.OutputTokens = int64(llm.MaxTokens)
	}
	// Prompt caching: a prefix of at least 1,024 tokens seen before is
	// served from cache in 128-token steps, as OpenAI and Gemini bill it.
	if text >= 1024 {
		key := sha256.Sum256([]byte(llm.PromptText))
		if _, seen := m.prompts.LoadOrStore(key, true); seen {
			usage.CachedTokens = text / 128 * 128
		}
	}
	cc := openai.Completion(req, content, finish, usage)
	if refusal != nil {
		cc.Choices[0].Message.Content = nil
		cc.Choices[0].Message.Refusal = refusal
	}
	if llm.Logprobs && out.LLMFailure == "" {
		cc.Choices[0].Logprobs = &openai.ChoiceLogprobs{Content: openai.Logprobs(content, out.Result)}
	}
	return cc, usage.OutputTokens
}

// rateHeaders writes OpenAI's rate-limit headers from the token bucket.
func (m *Model) rateHeaders(h http.Header) {
	perMin := int(math.Round(m.Profile.ThrottleRPS * 60))
	h.Set("X-Ratelimit-Limit-Requests", strconv.Itoa(perMin))
	h.Set("X-Ratelimit-Remaining-Requests", strconv.Itoa(int(math.Max(0, m.limiter.Tokens()))))
	h.Set("X-Ratelimit-Reset-Requests", fmt.Sprintf("%dms", int(math.Ceil(1000/m.Profile.ThrottleRPS))))
}

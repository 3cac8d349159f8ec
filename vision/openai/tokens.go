package openai

import (
	"math"
	"strconv"
	"strings"

	"github.com/cutover/cutover/vision"
)

// TextTokens estimates the tokens of s: about four characters a token for
// English prose and JSON, the rule of thumb OpenAI documents.
func TextTokens(s string) int64 { return int64((len(s) + 3) / 4) }

// ImageRule returns the image-token rule for a model: the configured one,
// else one chosen from the model's name.
func ImageRule(configured, model string) string {
	if configured != "" {
		return configured
	}
	m := strings.ToLower(model)
	switch {
	case strings.Contains(m, "gemini"):
		return "gemini"
	case strings.Contains(m, "claude"):
		return "claude"
	case strings.Contains(m, "4.1-nano"):
		return "gpt-4.1-nano"
	case strings.Contains(m, "4.1-mini"):
		return "gpt-4.1-mini"
	}
	return "gpt-4o"
}

// ImageTokens estimates an image's input tokens under rule, from the model
// families' public documentation:
//   - gpt-4o (gpt-4o, gpt-4.1): 85 at detail low; otherwise the image is
//     fitted in 2048×2048, its short side scaled to 768, and each 512 px
//     tile costs 170 on top of 85.
//   - gpt-4.1-mini / gpt-4.1-nano: 32 px patches (at most 1,536) times 1.62
//     or 2.46.
//   - gemini: 258 for an image up to 384×384, else 258 per 768 px tile.
//   - claude: width·height/750, at most about 1,600.
//   - fixed:N: N.
//
// Unknown dimensions count as 512×512.
func ImageTokens(rule, detail string, w, h int) int64 {
	if w <= 0 || h <= 0 {
		w, h = 512, 512
	}
	fw, fh := float64(w), float64(h)
	switch rule {
	case "gemini":
		if w <= 384 && h <= 384 {
			return 258
		}
		return int64(258 * math.Ceil(fw/768) * math.Ceil(fh/768))
	case "claude":
		return int64(math.Min(fw*fh/750, 1600))
	case "gpt-4.1-mini", "gpt-4.1-nano":
		p := math.Ceil(fw/32) * math.Ceil(fh/32)
		if p > 1536 {
			// OpenAI's documented shrink: fit 1,536 patches, then snap the
			// tighter side to a whole number of patches.
			s := math.Sqrt(32 * 32 * 1536 / (fw * fh))
			s *= math.Min(math.Floor(fw*s/32)/(fw*s/32), math.Floor(fh*s/32)/(fh*s/32))
			p = math.Ceil(math.Round(fw*s*1e6)/1e6/32) * math.Ceil(math.Round(fh*s*1e6)/1e6/32)
		}
		mult := 1.62
		if rule == "gpt-4.1-nano" {
			mult = 2.46
		}
		return int64(math.Ceil(p * mult))
	}
	if n, ok := strings.CutPrefix(rule, "fixed:"); ok {
		v, _ := strconv.ParseInt(n, 10, 64)
		return v
	}
	if detail == "low" {
		return 85
	}
	if s := math.Min(1, 2048/math.Max(fw, fh)); s < 1 {
		fw, fh = fw*s, fh*s
	}
	if short := math.Min(fw, fh); short > 768 {
		fw, fh = fw*768/short, fh*768/short
	}
	return int64(85 + 170*math.Ceil(fw/512)*math.Ceil(fh/512))
}

// EstimateUsage is the token usage expected before a call: the prompt text
// (messages and schema), the image and expected output tokens. It budgets
// spend before sending; actual usage replaces it afterwards.
func EstimateUsage(promptText, rule, detail string, w, h int, output int64) vision.Usage {
	return vision.Usage{InputTokens: TextTokens(promptText) + ImageTokens(rule, detail, w, h) + 8, OutputTokens: output}
}

// EstimateRequest is the usage expected for req before it is sent: the
// codec's prompt and schema, the image under rule at the prompt's detail
// (dimensions read from the image bytes), and expectedOutput tokens.
func (c *Codec) EstimateRequest(req vision.Request, rule string, expectedOutput int64) vision.Usage {
	w, h := imageSize(req.Image.Bytes)
	return EstimateUsage(c.PromptText(), ImageRule(rule, c.Model), c.Prompt.Detail, w, h, expectedOutput)
}

package config

import (
	"fmt"
	"time"
)

// Proxy modes.
const (
	// ModeShadow: the primary answers every client; the candidate gets a copy.
	ModeShadow = "shadow"
	// ModeCanary: canary.percent of classification calls are answered by
	// the candidate, translated into the primary's wire format.
	ModeCanary = "canary"
	// ModeCutover: the candidate answers every classification call; the
	// primary is the fallback, behind a circuit breaker on the candidate.
	ModeCutover = "cutover"
)

// Canary configures proxy.mode canary (and the fallback of cutover mode).
type Canary struct {
	// Percent of classification calls answered by the candidate, 0–100,
	// when no steps are configured (with steps, the first step's). Default 0.
	Percent *float64 `yaml:"percent"`
	// StickyBy is image (the same image always goes the same way) or
	// request. Default image.
	StickyBy string `yaml:"sticky_by"`
	// CandidateTimeout bounds the candidate's answer; past it the request
	// goes to the primary. Default 2s.
	CandidateTimeout Duration `yaml:"candidate_timeout"`
	// FallbackOn lists the typed error codes that send a request to the
	// primary; "all" (the default) is every code. A candidate error whose
	// code is not listed is answered to the client in the primary's format.
	FallbackOn []string `yaml:"fallback_on"`
	// HedgeAfter asks the primary too when the candidate has not answered
	// by then; the first good answer wins, the other is cancelled and
	// recorded. 0 = no hedging. Default 0.
	HedgeAfter Duration `yaml:"hedge_after"`
	// CompareWithLegacy mirrors requests the candidate answered to the
	// primary, off the request path, so agreement keeps being measured.
	// Default true.
	CompareWithLegacy *bool `yaml:"compare_with_legacy"`
	// Window is the rolling window the rollback gates are judged over.
	// Default 1m.
	Window Duration `yaml:"window"`
	// EvaluateEvery is how often the controller judges the gates. Default 5s.
	EvaluateEvery Duration `yaml:"evaluate_every"`
	// Rollback gates: crossing any drops the share to 0 % at once.
	Rollback RollbackGates `yaml:"rollback"`
	// Steps is the progressive rollout, in order (e.g. 5, 25, 50, 100 %).
	Steps []Step `yaml:"steps"`
	// StateFile persists the controller's state (step, percent, history)
	// across restarts, written atomically. Default out/canary-state.json.
	StateFile string `yaml:"state_file"`
	// AdminTokenEnv names the environment variable holding the bearer
	// token that mutating admin calls need. Default CUTOVER_ADMIN_TOKEN.
	AdminTokenEnv string `yaml:"admin_token_env"`
}

// RollbackGates are judged on the candidate over the rolling window.
type RollbackGates struct {
	// ErrorRate: the share of the candidate's calls that failed (timeouts
	// included) above which the canary rolls back. Default 5%.
	ErrorRate *Rate `yaml:"error_rate"`
	// P99Latency above which the canary rolls back. 0 = not judged.
	P99Latency Duration `yaml:"p99_latency"`
	// MinRequests in the window before the gates are judged. Default 20.
	MinRequests int `yaml:"min_requests"`
}

// Step is one stage of a progressive rollout.
type Step struct {
	// Percent answered by the candidate during the step, 0–100. Required.
	Percent float64 `yaml:"percent"`
	// MinDuration the step lasts at least. Default 1m.
	MinDuration Duration `yaml:"min_duration"`
	// MinRequests the candidate answers in the step before it may advance.
	// Default 100.
	MinRequests int `yaml:"min_requests"`
	// Gates judged over the step: advance when they pass, hold when
	// inconclusive, roll back when they fail.
	Gates StepGates `yaml:"gates"`
}

// StepGates are a step's criteria, judged on 95 % intervals.
type StepGates struct {
	// ErrorRate the candidate must stay under. 0 = not judged.
	ErrorRate Rate `yaml:"error_rate"`
	// P99Latency the candidate must stay under. 0 = not judged.
	P99Latency Duration `yaml:"p99_latency"`
}

// Breaker is the circuit breaker on the candidate in cutover mode.
type Breaker struct {
	// FailureRate over the window above which the breaker opens. Default 50%.
	FailureRate Rate `yaml:"failure_rate"`
	// MinRequests in the window before it can open. Default 20.
	MinRequests int `yaml:"min_requests"`
	// Window the failure rate is measured over. Default 30s.
	Window Duration `yaml:"window"`
	// Cooldown an open breaker waits before letting probes through. Default 30s.
	Cooldown Duration `yaml:"cooldown"`
	// HalfOpenProbes are the requests let through half-open; all must
	// succeed to close the breaker. Default 5.
	HalfOpenProbes int `yaml:"half_open_probes"`
}

func (c *Config) setCanaryDefaults() {
	k := &c.Proxy.Canary
	if k.StickyBy == "" {
		k.StickyBy = "image"
	}
	if k.CandidateTimeout == 0 {
		k.CandidateTimeout = Duration(2 * time.Second)
	}
	if len(k.FallbackOn) == 0 {
		k.FallbackOn = []string{"all"}
	}
	if k.CompareWithLegacy == nil {
		t := true
		k.CompareWithLegacy = &t
	}
	if k.Window == 0 {
		k.Window = Duration(time.Minute)
	}
	if k.EvaluateEvery == 0 {
		k.EvaluateEvery = Duration(5 * time.Second)
	}
	if k.Rollback.ErrorRate == nil {
		r := Rate(0.05)
		k.Rollback.ErrorRate = &r
	}
	if k.Rollback.MinRequests == 0 {
		k.Rollback.MinRequests = 20
	}
	for i := range k.Steps {
		s := &k.Steps[i]
		if s.MinDuration == 0 {
			s.MinDuration = Duration(time.Minute)
		}
		if s.MinRequests == 0 {
			s.MinRequests = 100
		}
	}
	if k.Percent == nil {
		p := 0.0
		if len(k.Steps) > 0 {
			p = k.Steps[0].Percent
		}
		k.Percent = &p
	}
	if k.StateFile == "" {
		k.StateFile = "out/canary-state.json"
	}
	if k.AdminTokenEnv == "" {
		k.AdminTokenEnv = "CUTOVER_ADMIN_TOKEN"
	}
	b := &c.Proxy.Breaker
	if b.FailureRate == 0 {
		b.FailureRate = 0.5
	}
	if b.MinRequests == 0 {
		b.MinRequests = 20
	}
	if b.Window == 0 {
		b.Window = Duration(30 * time.Second)
	}
	if b.Cooldown == 0 {
		b.Cooldown = Duration(30 * time.Second)
	}
	if b.HalfOpenProbes == 0 {
		b.HalfOpenProbes = 5
	}
}

func (v *validator) canary() {
	k := &v.c.Proxy.Canary
	if p := *k.Percent; p < 0 || p > 100 {
		v.errf("proxy.canary.percent", "canary.percent %v: expected 0–100", p)
	}
	if k.StickyBy != "image" && k.StickyBy != "request" {
		v.errf("proxy.canary.sticky_by", "sticky_by %q: expected image or request", k.StickyBy)
	}
	for i, code := range k.FallbackOn {
		if code != "all" && !contains(errorCodes, code) && !contains(llmCodes, code) {
			v.errf(fmt.Sprintf("proxy.canary.fallback_on[%d]", i), "fallback_on %q: expected all or a typed error code (%s)", code, joinCodes())
		}
	}
	if k.HedgeAfter > 0 && k.HedgeAfter >= k.CandidateTimeout {
		v.errf("proxy.canary.hedge_after", "hedge_after %s must be shorter than candidate_timeout %s", k.HedgeAfter, k.CandidateTimeout)
	}
	if k.EvaluateEvery > k.Window {
		v.errf("proxy.canary.evaluate_every", "evaluate_every %s must not exceed window %s", k.EvaluateEvery, k.Window)
	}
	if k.Rollback.MinRequests < 1 {
		v.errf("proxy.canary.rollback.min_requests", "min_requests must be ≥ 1")
	}
	prev := -1.0
	for i, s := range k.Steps {
		path := fmt.Sprintf("proxy.canary.steps[%d]", i)
		if s.Percent <= 0 || s.Percent > 100 {
			v.errf(path+".percent", "step percent %v: expected more than 0 and at most 100", s.Percent)
		}
		if s.Percent <= prev {
			v.errf(path+".percent", "step percent %v: steps must increase (previous %v)", s.Percent, prev)
		}
		prev = s.Percent
		if s.MinRequests < 1 {
			v.errf(path+".min_requests", "min_requests must be ≥ 1")
		}
	}
	b := v.c.Proxy.Breaker
	if b.MinRequests < 1 || b.HalfOpenProbes < 1 {
		v.errf("proxy.breaker", "breaker min_requests and half_open_probes must be ≥ 1")
	}
}

// llmCodes are the vision-LLM answer failures (vision.Code values).
var llmCodes = []string{"llm_invalid_json", "llm_schema_violation", "llm_refusal", "llm_truncated"}

func joinCodes() string {
	s := ""
	for i, c := range append(append([]string(nil), errorCodes...), llmCodes...) {
		if i > 0 {
			s += ", "
		}
		s += c
	}
	return s
}

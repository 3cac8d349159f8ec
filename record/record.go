// Package record writes and reads run directories, the contract between
// the producers (proxy, bench) and the consumers (compare, reports):
//
//	run.json                 what ran: mode, providers, config digest, start/end, coverage, events
//	observations-*.jsonl     one line per request per provider, rotated by size and hour (.gz if compressed)
//	<provider>.hlog          HdrHistogram interval log of latencies in ns (standard log format)
//	images/ab/<sha256>.<ext> the images, content-addressed, only with record.store_images
//
// The format is stable: fields are only ever added. FormatVersion changes
// if a field's meaning ever does.
package record

import (
	"time"

	"github.com/cutover/cutover/vision"
)

// FormatVersion is the run-directory format's version.
const FormatVersion = 1

// Roles of a provider in a run.
const (
	RolePrimary   = "primary"
	RoleCandidate = "candidate"
	// RoleBench is a provider driven by cutover bench.
	RoleBench = "bench"
)

// Run is run.json.
type Run struct {
	FormatVersion int `json:"format_version"`
	// Tool is "cutover"; Kind is proxy or bench; Mode the proxy mode
	// (shadow, …) or the bench loop (open-loop, closed-loop, replay).
	Tool string `json:"tool"`
	Kind string `json:"kind"`
	Mode string `json:"mode"`
	// Providers names every provider observed, with its role and wire format.
	Providers []Provider `json:"providers"`
	// ConfigDigest is the SHA-256 of the config with secrets redacted.
	ConfigDigest string     `json:"config_digest"`
	Started      time.Time  `json:"started"`
	Ended        *time.Time `json:"ended,omitempty"`
	Host         string     `json:"host,omitempty"`
	// Settings are the run's parameters (bench rate, sample percent, …).
	Settings map[string]any `json:"settings,omitempty"`
	Coverage Coverage       `json:"coverage"`
	// Events is the timeline: mirror paused/resumed, rollbacks, shutdown.
	Events []Event `json:"events,omitempty"`
	// Dropped counts observations lost because the writer fell behind.
	Dropped int64 `json:"dropped_observations,omitempty"`
	// Files lists the observation and hlog files, for readers and humans.
	Files []string `json:"files,omitempty"`
}

// Provider is one provider in a run.
type Provider struct {
	Name          string `json:"name"`
	Role          string `json:"role"`
	Format        string `json:"format"`
	Model         string `json:"model,omitempty"`
	PromptVersion string `json:"prompt_version,omitempty"`
}

// Coverage counts what the proxy saw and what reached the candidate.
type Coverage struct {
	// Seen is every request for the primary; Classify those that were
	// classification calls; Mirrored those sent to the candidate.
	Seen     int64 `json:"seen"`
	Classify int64 `json:"classify"`
	Mirrored int64 `json:"mirrored"`
	// Skipped counts requests not mirrored, by reason.
	Skipped map[string]int64 `json:"skipped"`
}

// Reasons a request is not mirrored.
const (
	SkipNotClassify   = "not_classify"   // another path or X-Amz-Target
	SkipBodyTooLarge  = "body_too_large" // over mirror.max_body_bytes
	SkipUndecodable   = "undecodable"    // malformed request: forwarded as received
	SkipSampledOut    = "sampled_out"    // mirror.sample_percent
	SkipDuplicate     = "duplicate"      // mirror.dedupe_window
	SkipInFlight      = "max_in_flight"  // mirror.max_in_flight reached
	SkipQueueBytes    = "max_queue_bytes"
	SkipDailySpend    = "daily_spend"   // mirror.max_daily_spend reached
	SkipCandidateRate = "candidate_rps" // the candidate's max_rps
	SkipShutdown      = "shutdown"
	SkipBreakerOpen   = "breaker_open" // cutover mode: the primary answered, no copy
	// SkipFleetDisconnected: a fleet's spend cap cannot be checked while
	// NATS is out of reach, so nothing is spent.
	SkipFleetDisconnected = "fleet_disconnected"
)

// CodeCancelled marks an observation of a call cutover cancelled itself
// (the losing side of a hedge): not a provider error, and its latency is
// censored. Reports count it apart.
const CodeCancelled = "cancelled"

// Event is one entry of a run's timeline.
type Event struct {
	Time   time.Time      `json:"time"`
	Kind   string         `json:"kind"`
	Detail string         `json:"detail"`
	Data   map[string]any `json:"data,omitempty"`
}

// Observation is one request to one provider.
type Observation struct {
	// RequestID is unique per line; PairID joins the observations of one
	// request (or one bench image repeat) across providers.
	RequestID string `json:"request_id"`
	PairID    string `json:"pair_id"`
	// Time is when the request was sent (bench: its intended send time).
	Time     time.Time `json:"time"`
	Provider string    `json:"provider"`
	Role     string    `json:"role"`
	// Status is the HTTP status (0 when none came back); Code the typed
	// error code ("" for success).
	Status int    `json:"status"`
	Code   string `json:"code,omitempty"`
	Error  string `json:"error,omitempty"`
	// LatencyNS is send to last byte. For bench it is measured from the
	// intended send time (coordinated-omission corrected); ServiceNS is
	// from the actual send time.
	LatencyNS int64 `json:"latency_ns"`
	ServiceNS int64 `json:"service_ns,omitempty"`
	// The image: SHA-256, size, and the fixture it matched, if any.
	ImageSHA256 string `json:"image_sha256,omitempty"`
	ImageSize   int    `json:"image_size,omitempty"`
	FixtureID   string `json:"fixture_id,omitempty"`
	// Tags is the normalised answer.
	Tags *vision.Tags `json:"tags,omitempty"`
	// PromptVersion, ConfidenceSource and Usage come from vision-LLM answers.
	PromptVersion    string        `json:"prompt_version,omitempty"`
	ConfidenceSource string        `json:"confidence_source,omitempty"`
	Usage            *vision.Usage `json:"usage,omitempty"`
	// Cost is the call's price in Currency.
	Cost     float64 `json:"cost,omitempty"`
	Currency string  `json:"currency,omitempty"`
	// Served is true for the answer the client received (proxy runs).
	Served bool `json:"served,omitempty"`
	// Route says how a proxy request was handled when it was not plain
	// shadow traffic: canary (the candidate was asked to answer), fallback
	// (the primary answered after the candidate failed), hedge (both were
	// asked; the loser has code "cancelled"), compare (a copy of a
	// candidate-answered request sent to the primary to keep measuring
	// agreement).
	Route string `json:"route,omitempty"`
	// Repeat numbers a bench image's repeats from 0.
	Repeat int `json:"repeat,omitempty"`
	// Trace splits a request into phases (bench and proxy calls).
	Trace *Trace `json:"trace,omitempty"`
	// Client is the name of the authenticated caller the proxy served
	// (proxy.clients), so that reports can be cut by caller.
	Client string `json:"client,omitempty"`
}

// Trace is an httptrace breakdown, nanoseconds from the send.
type Trace struct {
	ConnectNS int64 `json:"connect_ns,omitempty"`
	TLSNS     int64 `json:"tls_ns,omitempty"`
	TTFBNS    int64 `json:"ttfb_ns,omitempty"`
	Reused    bool  `json:"reused,omitempty"`
}

// Histogram bounds: 1 µs to 60 s in nanoseconds, 3 significant digits.
const (
	MinLatencyNS = 1_000
	MaxLatencyNS = 60_000_000_000
	SigFigs      = 3
)

package config

import (
	"fmt"
	"net/netip"
	"net/url"
	"strings"
	"time"
)

// Pipeline configures `cutover pipeline`: the post-cutover tagging service
// and backfills.
type Pipeline struct {
	// Provider tags the images: a name under providers. Required.
	Provider string `yaml:"provider"`
	// Rules turn a provider's answer into the catalogue's tags.
	Rules Rules `yaml:"rules"`
	// Store is where tags, their versions, jobs, review items and the
	// event outbox live.
	Store PipelineStore `yaml:"store"`
	// Events configures where product_tags_updated events are delivered.
	Events Events `yaml:"events"`
	// Serve configures `cutover pipeline serve`.
	Serve PipelineServe `yaml:"serve"`
	// Retry governs provider calls: retryable codes (throttled, timeout,
	// server_error, network, invalid_response, quota_exceeded and the
	// vision-LLM answer failures) back off exponentially with full jitter,
	// honouring Retry-After; after MaxAttempts the item is dead-lettered.
	Retry Retry `yaml:"retry"`
	// Queue configures the NATS JetStream work queue of `pipeline run --queue`.
	Queue WorkQueue `yaml:"queue"`
	// ImagesDir keeps the images of review items (content-addressed), so
	// that corrections can be exported as labelled fixtures. Default
	// out/pipeline-images.
	ImagesDir string `yaml:"images_dir"`
}

// Rules are the catalogue's business rules, applied in this order:
// prohibited categories removed, confidence levels assigned, runner-up
// categories below medium dropped, the most confident max_tags kept, and
// doubtful products sent to human review (their best category is LOW,
// their best two categories are within review_margin, or a kept attribute
// is LOW).
type Rules struct {
	// Version names the rules; writes are idempotent on (product, image,
	// rules version), so changing the rules re-tags. Default r1.
	Version string `yaml:"version"`
	// High and Medium are the confidence thresholds of the HIGH and MEDIUM
	// levels of categories and attributes; below Medium is LOW. A product
	// whose best category or a kept attribute is LOW goes to review, and a
	// runner-up category below Medium is not kept. Defaults 0.90 and 0.75;
	// 0 < medium ≤ high ≤ 1.
	High   *float64 `yaml:"high"`
	Medium *float64 `yaml:"medium"`
	// ReviewMargin sends a product to review when the confidences of its
	// best two categories differ by at most this much (the provider
	// hesitates between them), whatever their levels. A confidence
	// difference, 0–1; 0 turns the rule off. Default 0.10.
	ReviewMargin *float64 `yaml:"review_margin"`
	// Prohibited categories are removed: a tag whose category path has a
	// segment equal to one of these (case-insensitive). Default adult,
	// nsfw, restricted.
	Prohibited []string `yaml:"prohibited"`
	// MaxTags kept per image, most confident first. Default 8.
	MaxTags int `yaml:"max_tags"`
}

// PipelineStore selects the store.
type PipelineStore struct {
	// URL is sqlite://PATH (embedded, WAL; relative to the config file) or
	// postgres://user@host:port/db. Default sqlite://out/pipeline.db.
	URL string `yaml:"url"`
}

// Events configures the outbox publisher.
type Events struct {
	// Sink is stdout, file, webhook or nats. Default stdout.
	Sink string `yaml:"sink"`
	// File is the JSON-lines file of the file sink. Default out/events.jsonl.
	File string `yaml:"file"`
	// WebhookURL receives a POST per event (2xx = delivered).
	WebhookURL URL `yaml:"webhook_url"`
	// NATSURL and Subject for the nats sink (JetStream; the event id is the
	// Nats-Msg-Id, so JetStream de-duplicates redeliveries). Defaults
	// nats://127.0.0.1:4222 and catalogue.product_tags_updated.
	NATSURL string `yaml:"nats_url"`
	Subject string `yaml:"subject"`
	// Stream is the JetStream stream created for Subject if missing.
	// Default CUTOVER_EVENTS.
	Stream string `yaml:"stream"`
}

// PipelineServe configures the HTTP service.
type PipelineServe struct {
	// Listen address. Default 127.0.0.1:8090. Off loopback it needs the
	// API token (token_env).
	Listen Addr `yaml:"listen"`
	// TokenEnv names the environment variable holding the API's bearer
	// token. When it is set, every /v1 call needs "Authorization: Bearer
	// <token>" (/healthz stays open); without it the API answers only on
	// a loopback listen address. Default CUTOVER_PIPELINE_TOKEN.
	TokenEnv string `yaml:"token_env"`
	// MaxBodyBytes bounds a request (the image included). Default 16MiB.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// Workers process async jobs. Default 8.
	Workers int `yaml:"workers"`
	// FetchTimeout bounds downloading an image_url, redirects included.
	// Default 10s.
	FetchTimeout Duration `yaml:"fetch_timeout"`
	// FetchAllow lists the destinations an image_url may reach although
	// they resolve to a loopback, link-local, private, shared (CGNAT),
	// multicast, reserved or unspecified address, which are refused by
	// default. Each entry is a host name ("images.internal"), a wildcard
	// for its subdomains ("*.cdn.internal"), an IP address or a CIDR
	// ("10.20.0.0/16"). The check is made on the address actually dialled,
	// for every redirect too, so DNS answers cannot get around it. Default
	// none.
	FetchAllow []string `yaml:"fetch_allow"`
	// MaxQueueBytes bounds the image bytes held by queued and running
	// async jobs (?async=true); past it a request gets 503 with
	// Retry-After. Default 256MiB; at least max_body_bytes.
	MaxQueueBytes ByteSize `yaml:"max_queue_bytes"`
}

// Retry is the retry policy of provider calls.
type Retry struct {
	// MaxAttempts per item, the first included. Default 5.
	MaxAttempts int `yaml:"max_attempts"`
	// BaseDelay and MaxDelay bound the full-jitter backoff: attempt n
	// waits a uniform draw in [0, min(MaxDelay, BaseDelay·2^n)], or the
	// provider's Retry-After when it says more. Defaults 200ms and 10s.
	BaseDelay Duration `yaml:"base_delay"`
	MaxDelay  Duration `yaml:"max_delay"`
}

// WorkQueue is the JetStream work queue shared by backfill workers.
type WorkQueue struct {
	// Stream and Subject of the work queue. Defaults CUTOVER_WORK and
	// cutover.work.
	Stream  string `yaml:"stream"`
	Subject string `yaml:"subject"`
	// Consumer is the durable pull consumer the workers share. Default
	// cutover-workers.
	Consumer string `yaml:"consumer"`
	// AckWait before an unacknowledged item is redelivered (a worker
	// died). Default 30s.
	AckWait Duration `yaml:"ack_wait"`
}

func (c *Config) setPipelineDefaults() {
	p := &c.Pipeline
	r := &p.Rules
	if r.Version == "" {
		r.Version = "r1"
	}
	if r.High == nil {
		v := 0.90
		r.High = &v
	}
	if r.Medium == nil {
		v := 0.75
		r.Medium = &v
	}
	if r.Prohibited == nil {
		r.Prohibited = []string{"adult", "nsfw", "restricted"}
	}
	if r.MaxTags == 0 {
		r.MaxTags = 8
	}
	if r.ReviewMargin == nil {
		v := 0.10
		r.ReviewMargin = &v
	}
	if p.Store.URL == "" {
		p.Store.URL = "sqlite://out/pipeline.db"
	}
	e := &p.Events
	if e.Sink == "" {
		e.Sink = "stdout"
	}
	if e.File == "" {
		e.File = "out/events.jsonl"
	}
	if e.NATSURL == "" {
		e.NATSURL = "nats://127.0.0.1:4222"
	}
	if e.Subject == "" {
		e.Subject = "catalogue.product_tags_updated"
	}
	if e.Stream == "" {
		e.Stream = "CUTOVER_EVENTS"
	}
	s := &p.Serve
	if s.TokenEnv == "" {
		s.TokenEnv = "CUTOVER_PIPELINE_TOKEN"
	}
	if s.Listen == "" {
		s.Listen = "127.0.0.1:8090"
	}
	if s.MaxBodyBytes == 0 {
		s.MaxBodyBytes = 16 << 20
	}
	if s.Workers == 0 {
		s.Workers = 8
	}
	if s.FetchTimeout == 0 {
		s.FetchTimeout = Duration(10 * time.Second)
	}
	if s.MaxQueueBytes == 0 {
		s.MaxQueueBytes = 256 << 20
	}
	rt := &p.Retry
	if rt.MaxAttempts == 0 {
		rt.MaxAttempts = 5
	}
	if rt.BaseDelay == 0 {
		rt.BaseDelay = Duration(200 * time.Millisecond)
	}
	if rt.MaxDelay == 0 {
		rt.MaxDelay = Duration(10 * time.Second)
	}
	q := &p.Queue
	if q.Stream == "" {
		q.Stream = "CUTOVER_WORK"
	}
	if q.Subject == "" {
		q.Subject = "cutover.work"
	}
	if q.Consumer == "" {
		q.Consumer = "cutover-workers"
	}
	if q.AckWait == 0 {
		q.AckWait = Duration(30 * time.Second)
	}
	if p.ImagesDir == "" {
		p.ImagesDir = "out/pipeline-images"
	}
}

func (v *validator) pipeline() {
	p := &v.c.Pipeline
	if !v.has("pipeline") {
		return // only `cutover pipeline` needs one
	}
	if p.Provider == "" {
		v.errf("pipeline", "pipeline.provider is required: the provider name under providers: that tags images")
	} else if v.c.Providers[p.Provider] == nil {
		v.errf("pipeline.provider", "pipeline.provider: no provider %q under providers:", p.Provider)
	}
	r := p.Rules
	if *r.High <= 0 || *r.High > 1 || *r.Medium <= 0 || *r.Medium > *r.High {
		v.errf("pipeline.rules", "rules: expected 0 < medium (%v) ≤ high (%v) ≤ 1", *r.Medium, *r.High)
	}
	if r.MaxTags < 1 || r.MaxTags > 100 {
		v.errf("pipeline.rules.max_tags", "max_tags %d: expected 1–100", r.MaxTags)
	}
	if m := *r.ReviewMargin; !(m >= 0 && m <= 1) {
		v.errf("pipeline.rules.review_margin", "review_margin %v: expected a confidence difference 0–1 (0 turns the rule off)", m)
	}
	if u, err := url.Parse(p.Store.URL); err != nil || (u.Scheme != "sqlite" && u.Scheme != "postgres" && u.Scheme != "postgresql") {
		v.errf("pipeline.store.url", "store.url %q: expected sqlite://PATH or postgres://user@host:port/db", p.Store.URL)
	}
	switch p.Events.Sink {
	case "stdout", "file", "nats":
	case "webhook":
		if p.Events.WebhookURL == "" {
			v.errf("pipeline.events", "events.sink webhook needs events.webhook_url")
		}
	default:
		v.errf("pipeline.events.sink", "events.sink %q: expected stdout, file, webhook or nats", p.Events.Sink)
	}
	if p.Events.Sink == "nats" && !strings.HasPrefix(p.Events.NATSURL, "nats://") {
		v.errf("pipeline.events.nats_url", "events.nats_url %q: expected nats://host:port", p.Events.NATSURL)
	}
	if p.Retry.MaxAttempts < 1 || p.Retry.BaseDelay > p.Retry.MaxDelay {
		v.errf("pipeline.retry", "retry: expected max_attempts ≥ 1 and base_delay ≤ max_delay")
	}
	if p.Serve.Workers < 1 {
		v.errf("pipeline.serve.workers", "workers must be ≥ 1")
	}
	if p.Serve.MaxQueueBytes < p.Serve.MaxBodyBytes {
		v.errf("pipeline.serve.max_queue_bytes", "max_queue_bytes %d is less than max_body_bytes %d: no async job would fit", p.Serve.MaxQueueBytes, p.Serve.MaxBodyBytes)
	}
	for i, e := range p.Serve.FetchAllow {
		if _, _, err := ParseFetchAllow(e); err != nil {
			v.errf(fmt.Sprintf("pipeline.serve.fetch_allow[%d]", i), "fetch_allow %q: %v", e, err)
		}
	}
}

// ParseFetchAllow reads one pipeline.serve.fetch_allow entry: a CIDR or an
// IP address (returned as a prefix), or a host name, possibly "*.domain"
// (returned lower-case, without a trailing dot).
func ParseFetchAllow(entry string) (host string, prefix netip.Prefix, err error) {
	e := strings.TrimSpace(entry)
	if e == "" {
		return "", netip.Prefix{}, fmt.Errorf("empty: expected a host name, an IP address or a CIDR")
	}
	if strings.Contains(e, "://") {
		return "", netip.Prefix{}, fmt.Errorf("expected a host name, not a URL")
	}
	if strings.Contains(e, "/") {
		p, err := netip.ParsePrefix(e)
		if err != nil {
			return "", netip.Prefix{}, fmt.Errorf("not a CIDR such as 10.20.0.0/16")
		}
		return "", p.Masked(), nil
	}
	if a, err := netip.ParseAddr(strings.Trim(e, "[]")); err == nil {
		a = a.Unmap()
		return "", netip.PrefixFrom(a, a.BitLen()), nil
	}
	h := strings.TrimSuffix(strings.ToLower(e), ".")
	name := strings.TrimPrefix(h, "*.")
	if strings.ContainsAny(name, "*:/@ ") || name == "" {
		return "", netip.Prefix{}, fmt.Errorf("expected a host name (no port, scheme or path), \"*.domain\", an IP address or a CIDR")
	}
	for _, label := range strings.Split(name, ".") {
		if label == "" || len(label) > 63 {
			return "", netip.Prefix{}, fmt.Errorf("host name labels must be 1–63 characters")
		}
		for _, r := range label {
			if !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
				return "", netip.Prefix{}, fmt.Errorf("host name character %q: expected letters, digits, '-' or '_'", r)
			}
		}
	}
	return h, netip.Prefix{}, nil
}

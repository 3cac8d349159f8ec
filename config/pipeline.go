package config

import (
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
// prohibited categories removed, confidence levels assigned, the most
// confident max_tags kept, LOW tags sent to human review.
type Rules struct {
	// Version names the rules; writes are idempotent on (product, image,
	// rules version), so changing the rules re-tags. Default r1.
	Version string `yaml:"version"`
	// High and Medium are the confidence thresholds of the HIGH and MEDIUM
	// levels; below Medium is LOW. Defaults 0.90 and 0.75.
	High   *float64 `yaml:"high"`
	Medium *float64 `yaml:"medium"`
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
	// Listen address. Default 127.0.0.1:8090.
	Listen Addr `yaml:"listen"`
	// MaxBodyBytes bounds a request (the image included). Default 16MiB.
	MaxBodyBytes ByteSize `yaml:"max_body_bytes"`
	// Workers process async jobs. Default 8.
	Workers int `yaml:"workers"`
	// FetchTimeout bounds downloading an image_url. Default 10s.
	FetchTimeout Duration `yaml:"fetch_timeout"`
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
}

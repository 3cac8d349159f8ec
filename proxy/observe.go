package proxy

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"sync"
	"time"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/internal/secret"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
)

// Recorder is where the proxy's observations, counts and timeline go: a
// run directory's writer (record.Writer).
type Recorder interface {
	// Record writes one observation; false when the writer dropped it.
	Record(o record.Observation) bool
	// Event adds an entry to the run's timeline.
	Event(kind, detail string, data map[string]any)
	// Count adds requests seen, classification calls and mirrored calls.
	Count(seen, classify, mirrored int64)
	// Skip counts a request not mirrored, by reason.
	Skip(reason string)
	// StoreImage keeps an image (record.store_images).
	StoreImage(sha string, b []byte, mediaType string) error
}

var _ Recorder = (*record.Writer)(nil)

// pricer prices one call of provider p from its token usage (vision LLMs)
// or its tier price; ok is false when p has no price.
type pricer func(p *config.Provider, u *vision.Usage) (amount float64, currency string, ok bool)

// observer turns the answers the proxy sees into observations: decoded,
// normalised to canonical tags, matched to a fixture, priced, scrubbed of
// secrets, recorded, counted on /metrics, and joined into live agreement
// pairs.
type observer struct {
	rec   Recorder
	met   *metrics
	tx    *vision.Taxonomy
	fx    *fixtures.Set
	scrub *secret.Scrubber
	price pricer
	live  *liveAgreement

	primaryName, candidateName string
	primaryProv, candidateProv *config.Provider
	primaryServer              vision.ServerCodec // reads the primary's requests
	primaryClient              vision.ClientCodec // reads its answers
	candidateFormat            string
}

// meta is how an observation is labelled.
type meta struct {
	route  string
	served bool
	pair   bool // join the live agreement pair
}

// primaryAnswer is one answer of the primary as the proxy saw it.
type primaryAnswer struct {
	start  time.Time
	lat    time.Duration
	trace  *record.Trace
	status int
	header http.Header
	body   []byte        // nil: none kept (too large, cut short, or failed)
	err    *vision.Error // the call failed: no answer
}

// primary decodes the primary's answer to ex and records it.
func (ob *observer) primary(pairID string, ex *exchange, a primaryAnswer, m meta) {
	o := record.Observation{RequestID: pairID + "-p", PairID: pairID, Time: a.start, Provider: ob.primaryName, Role: record.RolePrimary,
		Status: a.status, LatencyNS: a.lat.Nanoseconds(), Served: m.served, Route: m.route, Client: ex.client, Trace: a.trace}
	var tags *vision.Tags
	if a.err != nil {
		o.Code, o.Error = string(a.err.Code), ob.scrub.Error(a.err)
	} else {
		body := a.body
		if a.header.Get("Content-Encoding") == "gzip" && body != nil {
			body = gunzip(body)
		}
		res, err := ob.primaryClient.DecodeResponse(&http.Response{StatusCode: a.status, Header: a.header}, body)
		switch {
		case body == nil && a.status == http.StatusOK:
			o.Code, o.Error = string(vision.CodeInvalidResponse), "answer too large to decode or cut short"
		case err != nil:
			e := vision.AsError(err)
			o.Code, o.Error = string(e.Code), ob.scrub.String(e.Message)
		default:
			t := ob.tx.Normalize(ob.primaryClient.Format(), res)
			tags = &t
			o.Tags, o.PromptVersion, o.Usage = tags, res.PromptVersion, res.Usage
		}
	}
	if req, err := ex.decode(ob.primaryServer); err == nil && req.Image.SHA256 != "" {
		o.ImageSHA256, o.ImageSize = req.Image.SHA256, req.Image.Size
		if it, ok := ob.fx.BySHA(req.Image.SHA256); ok {
			o.FixtureID = it.ID
		}
	}
	// A call is priced when it was answered (or, for a vision LLM, when it
	// reported usage: a malformed answer still costs its tokens).
	if o.Code == "" || o.Usage != nil {
		if amount, cur, ok := ob.price(ob.primaryProv, o.Usage); ok {
			o.Cost, o.Currency = amount, cur
		}
	}
	if a.err != nil && a.err.Code == record.CodeCancelled {
		o.Code, o.LatencyNS, o.Cost, o.Trace = record.CodeCancelled, 0, 0, nil
	}
	ob.rec.Record(o)
	ob.met.observe(o)
	if m.pair {
		ob.live.join(pairID, record.RolePrimary, tags)
	}
}

// candidate records the candidate's call and returns its price; tags are
// its answer's, normalised by a caller that also translated them (nil:
// normalise here).
func (ob *observer) candidate(pairID string, ex *exchange, req vision.Request, c outcome, route string, served bool, tags *vision.Tags) float64 {
	o := record.Observation{RequestID: pairID + "-c", PairID: pairID, Time: c.start, Provider: ob.candidateName, Role: record.RoleCandidate,
		LatencyNS: c.lat.Nanoseconds(), ImageSHA256: req.Image.SHA256, ImageSize: req.Image.Size, Status: 200, Served: served, Route: route,
		Client: ex.client, Trace: c.trace}
	if it, ok := ob.fx.BySHA(req.Image.SHA256); ok {
		o.FixtureID = it.ID
	}
	usage := c.res.Usage
	if c.err != nil {
		e := vision.AsError(c.err)
		o.Status, o.Code, o.Error, usage = e.Status, string(e.Code), ob.scrub.Error(e), e.Usage
		tags = nil
	} else {
		if tags == nil {
			t := ob.tx.Normalize(ob.candidateFormat, c.res)
			tags = &t
		}
		o.Tags, o.PromptVersion, o.ConfidenceSource = tags, c.res.PromptVersion, c.res.ConfidenceSource
	}
	o.Usage = usage
	cost := ob.priceCandidate(&o, usage, c.err)
	ob.rec.Record(o)
	ob.met.observe(o)
	ob.live.join(pairID, record.RoleCandidate, tags)
	return cost
}

// candidateCancelled records a candidate call a hedge cancelled.
func (ob *observer) candidateCancelled(pairID string, ex *exchange, req vision.Request, c outcome) {
	o := record.Observation{RequestID: pairID + "-c", PairID: pairID, Time: c.start, Provider: ob.candidateName, Role: record.RoleCandidate,
		ImageSHA256: req.Image.SHA256, ImageSize: req.Image.Size, Code: record.CodeCancelled, Route: "hedge",
		Error: "hedge: the primary answered first", Client: ex.client}
	ob.rec.Record(o)
	ob.live.join(pairID, record.RoleCandidate, nil)
}

// priceCandidate sets a candidate call's cost on o and returns it: from
// its token usage for vision LLMs (a malformed answer still costs its
// tokens), the tier price otherwise; a call that failed before the model
// ran costs nothing.
func (ob *observer) priceCandidate(o *record.Observation, usage *vision.Usage, err error) float64 {
	llm := ob.candidateProv.Format == config.FormatOpenAI
	actual, cur, ok := ob.price(ob.candidateProv, usage)
	if !ok || (usage == nil && llm) || (err != nil && !llm) {
		return 0
	}
	if actual > 0 {
		o.Cost, o.Currency = actual, cur
	}
	return actual
}

// gunzip inflates a gzip body for decoding; on error it returns nil (the
// answer then counts as undecodable, never as right).
func gunzip(b []byte) []byte {
	zr, err := gzip.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil
	}
	out, err := io.ReadAll(io.LimitReader(zr, 64<<20))
	if err != nil {
		return nil
	}
	return out
}

// liveAgreement joins the primary's and the candidate's answers to one
// request and counts top-1 agreement as it goes (/admin/status and
// /metrics).
type liveAgreement struct {
	mu    sync.Mutex
	open  map[string]*openPair
	agree func(primary, candidate *vision.Tags)
	now   func() time.Time
}

type openPair struct {
	primary, candidate         *vision.Tags
	havePrimary, haveCandidate bool
	born                       time.Time
}

// join records one side; nil tags means that side has no usable answer.
func (l *liveAgreement) join(id, role string, tags *vision.Tags) {
	l.mu.Lock()
	pr := l.open[id]
	if pr == nil {
		pr = &openPair{born: l.now()}
		l.open[id] = pr
	}
	if role == record.RolePrimary {
		pr.primary, pr.havePrimary = tags, true
	} else {
		pr.candidate, pr.haveCandidate = tags, true
	}
	done := pr.havePrimary && pr.haveCandidate
	if done {
		delete(l.open, id)
	}
	l.mu.Unlock()
	if done && pr.primary != nil && pr.candidate != nil {
		l.agree(pr.primary, pr.candidate)
	}
}

// sweep drops pairs whose other side will never come.
func (l *liveAgreement) sweep(older time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for id, pr := range l.open {
		if pr.born.Before(older) {
			delete(l.open, id)
		}
	}
}

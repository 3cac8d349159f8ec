package pipeline

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover/cutover/config"
)

// Sink delivers events. Deliver returns only when every event is durably
// accepted by the sink; the publisher then marks them delivered. A crash
// in between redelivers them: delivery is at least once, and each event
// carries a stable id for consumers to de-duplicate.
type Sink interface {
	Deliver(ctx context.Context, events []Event) error
	Close() error
}

// NewSink builds the configured sink.
func NewSink(ctx context.Context, cfg *config.Config, stdout io.Writer) (Sink, error) {
	e := cfg.Pipeline.Events
	switch e.Sink {
	case "stdout":
		return &writerSink{w: stdout}, nil
	case "file":
		path := cfg.Path(e.File)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("events.file: %w", err)
		}
		return &writerSink{w: f, f: f}, nil
	case "webhook":
		return &webhookSink{url: e.WebhookURL.String(), client: &http.Client{Timeout: 10 * time.Second}}, nil
	case "nats":
		return NewNATSSink(ctx, e.NATSURL, e.Stream, e.Subject)
	}
	return nil, fmt.Errorf("events.sink %q: expected stdout, file, webhook or nats", e.Sink)
}

// writerSink writes JSON lines (stdout, or a file it fsyncs).
type writerSink struct {
	mu sync.Mutex
	w  io.Writer
	f  *os.File
}

func (s *writerSink) Deliver(ctx context.Context, events []Event) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	// One write per batch: with O_APPEND, several processes appending to
	// one file (workers sharing a queue) never interleave inside a line.
	var buf bytes.Buffer
	for _, e := range events {
		b, err := json.Marshal(e)
		if err != nil {
			return err
		}
		buf.Write(append(b, '\n'))
	}
	if _, err := s.w.Write(buf.Bytes()); err != nil {
		return err
	}
	if s.f != nil {
		return s.f.Sync()
	}
	return nil
}

func (s *writerSink) Close() error {
	if s.f != nil {
		return s.f.Close()
	}
	return nil
}

// webhookSink POSTs each event; any status but 2xx is a failed delivery.
type webhookSink struct {
	url    string
	client *http.Client
}

func (s *webhookSink) Deliver(ctx context.Context, events []Event) error {
	for _, e := range events {
		b, _ := json.Marshal(e)
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.url, bytes.NewReader(b))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", "application/json")
		req.Header.Set("Idempotency-Key", e.ID)
		resp, err := s.client.Do(req)
		if err != nil {
			return fmt.Errorf("webhook: %w", err)
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		if resp.StatusCode/100 != 2 {
			return fmt.Errorf("webhook: %s answered %s", s.url, resp.Status)
		}
	}
	return nil
}

func (s *webhookSink) Close() error { return nil }

// NATSSink publishes to JetStream and waits for each acknowledgement; the
// event id is the Nats-Msg-Id, so JetStream drops redelivered duplicates
// within the stream's duplicate window.
type NATSSink struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	subject string
}

// NewNATSSink connects and makes sure the stream exists.
func NewNATSSink(ctx context.Context, url, stream, subject string) (*NATSSink, error) {
	nc, err := nats.Connect(url, nats.Name("cutover pipeline events"), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("events: connecting to %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	if _, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: stream, Subjects: []string{subject}, Duplicates: 10 * time.Minute}); err != nil {
		nc.Close()
		return nil, fmt.Errorf("events: stream %s: %w", stream, err)
	}
	return &NATSSink{nc: nc, js: js, subject: subject}, nil
}

func (s *NATSSink) Deliver(ctx context.Context, events []Event) error {
	futures := make([]jetstream.PubAckFuture, 0, len(events))
	for _, e := range events {
		b, _ := json.Marshal(e)
		f, err := s.js.PublishMsgAsync(&nats.Msg{Subject: s.subject, Data: b, Header: nats.Header{nats.MsgIdHdr: []string{e.ID}}})
		if err != nil {
			return fmt.Errorf("events: publishing: %w", err)
		}
		futures = append(futures, f)
	}
	for _, f := range futures {
		select {
		case <-f.Ok():
		case err := <-f.Err():
			return fmt.Errorf("events: JetStream did not acknowledge: %w", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Second):
			return fmt.Errorf("events: no JetStream acknowledgement within 10s")
		}
	}
	return nil
}

func (s *NATSSink) Close() error {
	s.nc.Close()
	return nil
}

// Publisher delivers the outbox to a sink, oldest first, marking rows
// delivered only after the sink accepted them.
type Publisher struct {
	Store *Store
	Sink  Sink
	Log   *slog.Logger
	// Interval between polls when the outbox is empty. Default 200ms.
	Interval time.Duration
	// Batch is the most events delivered at once. Default 256.
	Batch int
	// FinalDrain bounds the last drain after ctx ends. Default 10s.
	FinalDrain time.Duration
}

// Drain delivers everything pending now and returns how many it delivered.
func (p *Publisher) Drain(ctx context.Context) (int, error) {
	batch := p.Batch
	if batch <= 0 {
		batch = 256
	}
	total := 0
	for {
		n, err := p.Store.DeliverPending(ctx, batch, func(events []Event) error { return p.Sink.Deliver(ctx, events) })
		total += n
		if err != nil || n < batch {
			return total, err
		}
	}
}

// Run drains the outbox until ctx ends, backing off after sink errors,
// then drains once more so that a clean shutdown leaves nothing behind.
// Drains run under their own context, cancelled only FinalDrain (default
// 10 s) after ctx ends: a drain cancelled in flight on PostgreSQL would
// leave its rows locked until the rollback reached the server, and the
// last drain (FOR UPDATE SKIP LOCKED) would skip them and stop.
func (p *Publisher) Run(ctx context.Context) {
	iv := p.Interval
	if iv <= 0 {
		iv = 200 * time.Millisecond
	}
	fd := p.FinalDrain
	if fd <= 0 {
		fd = 10 * time.Second
	}
	dctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	stop := context.AfterFunc(ctx, func() { time.AfterFunc(fd, cancel) })
	defer stop()
	backoff := iv
	for {
		_, err := p.Drain(dctx)
		wait := iv
		if err != nil && ctx.Err() == nil {
			if p.Log != nil {
				p.Log.Warn("event delivery failed; will retry", "err", err, "in", backoff)
			}
			wait, backoff = backoff, min(2*backoff, 30*time.Second)
		} else {
			backoff = iv
		}
		select {
		case <-ctx.Done():
			n, err := p.Drain(dctx)
			if err != nil && p.Log != nil {
				p.Log.Warn("the last event delivery stopped; undelivered events stay in the outbox for the next run",
					"delivered", n, "err", err, "final_drain", fd)
			}
			return
		case <-time.After(wait):
		}
	}
}

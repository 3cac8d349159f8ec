package pipeline

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/cutover/cutover/config"
)

// Queue is the JetStream work queue several `pipeline run --queue`
// workers share: every worker enqueues the source's items (the item key
// is the Nats-Msg-Id, so JetStream keeps one copy), then all pull from one
// durable consumer. A message is acknowledged after its commit; a
// retryable failure is nak'ed with the backoff (or the provider's
// Retry-After) as delay; after max_attempts deliveries the item is
// dead-lettered and terminated. A worker that dies holds its messages
// until ack_wait, then JetStream redelivers them.
type Queue struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	stream   jetstream.Stream
	consumer jetstream.Consumer
	cfg      config.WorkQueue
	maxDel   int
}

// OpenQueue connects to url and makes sure the stream and consumer exist.
func OpenQueue(ctx context.Context, url string, cfg config.WorkQueue, maxAttempts int) (*Queue, error) {
	nc, err := nats.Connect(url, nats.Name("cutover pipeline worker"), nats.Timeout(5*time.Second))
	if err != nil {
		return nil, fmt.Errorf("--queue: connecting to %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	st, err := js.CreateOrUpdateStream(ctx, jetstream.StreamConfig{Name: cfg.Stream, Subjects: []string{cfg.Subject},
		Retention: jetstream.WorkQueuePolicy, Duplicates: time.Hour})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("--queue: stream %s: %w", cfg.Stream, err)
	}
	cons, err := st.CreateOrUpdateConsumer(ctx, jetstream.ConsumerConfig{Durable: cfg.Consumer, AckPolicy: jetstream.AckExplicitPolicy,
		AckWait: cfg.AckWait.D(), MaxDeliver: maxAttempts, MaxAckPending: 4096})
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("--queue: consumer %s: %w", cfg.Consumer, err)
	}
	return &Queue{nc: nc, js: js, stream: st, consumer: cons, cfg: cfg, maxDel: maxAttempts}, nil
}

// Close disconnects.
func (q *Queue) Close() { q.nc.Drain() }

// Enqueue publishes the items, de-duplicated by their key.
func (q *Queue) Enqueue(ctx context.Context, items []Item, rulesVersion string) error {
	var futures []jetstream.PubAckFuture
	flush := func() error {
		for _, f := range futures {
			select {
			case <-f.Ok():
			case err := <-f.Err():
				return fmt.Errorf("enqueueing: %w", err)
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		futures = futures[:0]
		return nil
	}
	for _, it := range items {
		b, _ := json.Marshal(it)
		// The image's hash is not known before it is read: the id is the
		// item's identity in the source, which is as stable.
		id := it.ProductID + "|" + it.Path + it.Key + "|" + rulesVersion
		f, err := q.js.PublishMsgAsync(&nats.Msg{Subject: q.cfg.Subject, Data: b, Header: nats.Header{nats.MsgIdHdr: []string{id}}})
		if err != nil {
			return fmt.Errorf("enqueueing: %w", err)
		}
		futures = append(futures, f)
		if len(futures) >= 1024 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	return flush()
}

// Work pulls and processes items with concurrency workers until the queue
// has been empty (nothing pending, nothing in flight anywhere) for idle.
func (q *Queue) Work(ctx context.Context, src Source, t *Tagger, concurrency int, idle time.Duration, log *slog.Logger) (BackfillStats, error) {
	start := time.Now()
	// One attempt per delivery: retries are redeliveries.
	one := *t
	one.Retry.MaxAttempts = 1
	var wg sync.WaitGroup
	var tl tally
	msgs := make(chan jetstream.Msg)
	wctx, cancel := context.WithCancel(ctx)
	defer cancel()
	for range max(concurrency, 1) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range msgs {
				if tl.add(q.handle(wctx, src, &one, t, m)) {
					cancel() // the first failure of the pipeline itself stops the workers
				}
			}
		}()
	}
	lastBusy := time.Now()
	for wctx.Err() == nil {
		batch, err := q.consumer.Fetch(concurrency, jetstream.FetchMaxWait(500*time.Millisecond))
		if err != nil {
			tl.add("", err)
			break
		}
		n := 0
		for m := range batch.Messages() {
			n++
			select {
			case msgs <- m:
			case <-wctx.Done():
			}
		}
		if n > 0 {
			lastBusy = time.Now()
			continue
		}
		info, err := q.consumer.Info(wctx)
		if err == nil && info.NumPending == 0 && info.NumAckPending == 0 && time.Since(lastBusy) >= idle {
			break
		}
		if err == nil && (info.NumPending > 0 || info.NumAckPending > 0) {
			lastBusy = time.Now()
		}
	}
	close(msgs)
	wg.Wait()
	var st BackfillStats
	tl.fill(&st, start)
	err := tl.failed()
	if err == nil {
		err = ctx.Err()
	}
	return st, err
}

// handle processes one delivery: ack after commit, nak with delay on a
// retryable failure, dead letter and terminate after the last delivery.
func (q *Queue) handle(ctx context.Context, src Source, one, t *Tagger, m jetstream.Msg) (string, error) {
	var it Item
	if err := json.Unmarshal(m.Data(), &it); err != nil {
		m.Term()
		return "dead", nil
	}
	meta, err := m.Metadata()
	if err != nil {
		return "", err
	}
	delivery := int(meta.NumDelivered)
	img, err := src.Load(ctx, it)
	if err != nil {
		if ctx.Err() != nil {
			return "", ctx.Err()
		}
		m.Term()
		key := IdemKey(it.ProductID, "unreadable:"+it.Path+it.Key, t.Rules.Version())
		return "dead", t.Store.DeadLetter(ctx, key, it.ProductID, src.Name(), delivery, t.Scrub.Error(err))
	}
	key := IdemKey(it.ProductID, img.SHA256, t.Rules.Version())
	res, err := one.Tag(ctx, it.ProductID, img, it.Label)
	switch {
	case err == nil:
		if aerr := m.DoubleAck(ctx); aerr != nil && !errors.Is(aerr, nats.ErrMsgAlreadyAckd) {
			// The commit stands; a redelivery will find it done.
			return "tagged", nil
		}
		if res.Created {
			return "tagged", nil
		}
		return "skipped", nil
	case ctx.Err() != nil:
		return "", ctx.Err()
	case !isStoreErr(err) && Retryable(err) && delivery < q.maxDel:
		m.NakWithDelay(t.Backoff(delivery, err)) // redelivered after the delay
		return "retry", nil
	case !isStoreErr(err) || errors.Is(err, ErrExhausted):
		m.Term()
		return "dead", t.Store.DeadLetter(ctx, key, it.ProductID, src.Name(), delivery, t.Scrub.Error(err))
	}
	m.NakWithDelay(time.Second)
	return "", err
}

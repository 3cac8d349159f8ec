// Package fleet is the NATS JetStream key-value store that several proxy
// replicas share: a thin, typed layer over one bucket (state, lease,
// replica figures, spend) and one bucket whose entries expire (dedupe).
// It knows nothing of canaries; package proxy decides what the keys
// mean. It is not a consensus protocol: compare-and-set on each key's
// revision is what keeps replicas from overwriting each other.
//
// A Store stays usable while NATS is away: operations fail fast with
// ErrDisconnected, Connected reports the state, and the connection
// re-establishes itself (watches resume) when the server returns.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors a Store's operations return (besides transport errors).
var (
	// ErrNotFound: the key has no value.
	ErrNotFound = errors.New("fleet: key not found")
	// ErrConflict: the key changed since the revision given (or exists,
	// for Create).
	ErrConflict = errors.New("fleet: key changed concurrently")
	// ErrDisconnected: NATS cannot be reached now.
	ErrDisconnected = errors.New("fleet: NATS is not connected")
)

// Options configure Open.
type Options struct {
	// URL is the NATS server, e.g. nats://127.0.0.1:4222.
	URL string
	// Bucket is the key-value bucket shared by the fleet.
	Bucket string
	// Name identifies this replica in NATS's connection name.
	Name string
	// DedupeTTL, when positive, opens a second bucket (Bucket + "-dedupe")
	// whose entries expire after it.
	DedupeTTL time.Duration
	// CredsFile is a NATS credentials file; "" for none.
	CredsFile string
	// Replicas is the JetStream replication of buckets Open creates.
	Replicas int
	// OpTimeout bounds each operation. Default 2s.
	OpTimeout time.Duration
	Logger    *slog.Logger
}

// Store is the fleet's shared state.
type Store struct {
	nc        *nats.Conn
	kv        jetstream.KeyValue
	dedupe    jetstream.KeyValue
	connected atomic.Bool
	timeout   time.Duration
	log       *slog.Logger
}

// Entry is one key's value and revision.
type Entry struct {
	Key      string
	Value    []byte
	Revision uint64
	Created  time.Time
	Deleted  bool
}

// Open connects to NATS (retrying for ever in the background once
// connected) and opens or creates the buckets.
func Open(ctx context.Context, o Options) (*Store, error) {
	if o.OpTimeout == 0 {
		o.OpTimeout = 2 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	s := &Store{timeout: o.OpTimeout, log: o.Logger}
	opts := []nats.Option{nats.Name("cutover proxy " + o.Name), nats.MaxReconnects(-1)}
	if o.CredsFile != "" {
		opts = append(opts, nats.UserCredentials(o.CredsFile))
	}
	nc, err := nats.Connect(o.URL, append(opts,
		nats.ReconnectWait(250*time.Millisecond), nats.Timeout(o.OpTimeout),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			s.connected.Store(false)
			s.log.Warn("fleet: NATS disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(*nats.Conn) {
			s.connected.Store(true)
			s.log.Info("fleet: NATS reconnected")
		}),
		nats.ClosedHandler(func(*nats.Conn) { s.connected.Store(false) }))...)
	if err != nil {
		return nil, fmt.Errorf("proxy.fleet.nats_url: connecting to %s: %w", o.URL, err)
	}
	s.nc = nc
	s.connected.Store(true)
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("fleet: %w", err)
	}
	octx, cancel := context.WithTimeout(ctx, 5*o.OpTimeout)
	defer cancel()
	if s.kv, err = openBucket(octx, js, jetstream.KeyValueConfig{Bucket: o.Bucket, History: 1, Replicas: max(o.Replicas, 1),
		Description: "cutover proxy fleet: canary state, lease, replica figures, spend"}); err != nil {
		nc.Close()
		return nil, err
	}
	if o.DedupeTTL > 0 {
		if s.dedupe, err = openBucket(octx, js, jetstream.KeyValueConfig{Bucket: o.Bucket + "-dedupe", History: 1, TTL: o.DedupeTTL,
			Replicas: max(o.Replicas, 1), Description: "cutover proxy fleet: images mirrored recently"}); err != nil {
			nc.Close()
			return nil, err
		}
	}
	return s, nil
}

// openBucket opens a bucket as it is, or creates it with cfg: an existing
// bucket's settings (replicas, TTL) are an operator's, never changed here.
func openBucket(ctx context.Context, js jetstream.JetStream, cfg jetstream.KeyValueConfig) (jetstream.KeyValue, error) {
	kv, err := js.KeyValue(ctx, cfg.Bucket)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		kv, err = js.CreateKeyValue(ctx, cfg)
		if errors.Is(err, jetstream.ErrBucketExists) {
			kv, err = js.KeyValue(ctx, cfg.Bucket) // another replica created it first
		}
	}
	if err != nil {
		return nil, fmt.Errorf("fleet: opening bucket %s: %w", cfg.Bucket, err)
	}
	return kv, nil
}

// Connected reports whether NATS is reachable now.
func (s *Store) Connected() bool { return s.connected.Load() && s.nc.IsConnected() }

// Close closes the connection.
func (s *Store) Close() { s.nc.Close() }

func (s *Store) op(ctx context.Context) (context.Context, context.CancelFunc, error) {
	if !s.Connected() {
		return nil, nil, ErrDisconnected
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	return ctx, cancel, nil
}

func mapErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, jetstream.ErrKeyNotFound), errors.Is(err, jetstream.ErrKeyDeleted):
		return ErrNotFound
	case errors.Is(err, jetstream.ErrKeyExists):
		return ErrConflict
	case isWrongSequence(err):
		return ErrConflict
	case errors.Is(err, nats.ErrConnectionClosed), errors.Is(err, nats.ErrDisconnected), errors.Is(err, nats.ErrNoResponders),
		errors.Is(err, jetstream.ErrNoStreamResponse), errors.Is(err, context.DeadlineExceeded):
		return fmt.Errorf("%w: %v", ErrDisconnected, err)
	}
	return err
}

// isWrongSequence: an update whose expected revision is stale.
func isWrongSequence(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) && apiErr.ErrorCode == jetstream.JSErrCodeStreamWrongLastSequence {
		return true
	}
	return strings.Contains(err.Error(), "wrong last sequence")
}

// Get returns key's value and revision.
func (s *Store) Get(ctx context.Context, key string) (Entry, error) {
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return Entry{}, err
	}
	defer cancel()
	e, err := s.kv.Get(ctx, key)
	if err != nil {
		return Entry{}, mapErr(err)
	}
	return Entry{Key: e.Key(), Value: e.Value(), Revision: e.Revision(), Created: e.Created()}, nil
}

// Create sets key only if it has no value (ErrConflict otherwise).
func (s *Store) Create(ctx context.Context, key string, value []byte) (uint64, error) {
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	rev, err := s.kv.Create(ctx, key, value)
	return rev, mapErr(err)
}

// Update sets key only if its revision is still rev (ErrConflict otherwise).
func (s *Store) Update(ctx context.Context, key string, value []byte, rev uint64) (uint64, error) {
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	r, err := s.kv.Update(ctx, key, value, rev)
	return r, mapErr(err)
}

// Put sets key unconditionally.
func (s *Store) Put(ctx context.Context, key string, value []byte) (uint64, error) {
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return 0, err
	}
	defer cancel()
	r, err := s.kv.Put(ctx, key, value)
	return r, mapErr(err)
}

// List returns every key under prefix (keys are dot-separated) with its value.
func (s *Store) List(ctx context.Context, prefix string) ([]Entry, error) {
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return nil, err
	}
	defer cancel()
	w, err := s.kv.Watch(ctx, prefix+">", jetstream.IgnoreDeletes())
	if err != nil {
		return nil, mapErr(err)
	}
	defer w.Stop()
	var out []Entry
	for {
		select {
		case e, ok := <-w.Updates():
			if !ok {
				return out, nil
			}
			if e == nil { // the initial values are all delivered
				return out, nil
			}
			out = append(out, Entry{Key: e.Key(), Value: e.Value(), Revision: e.Revision(), Created: e.Created()})
		case <-ctx.Done():
			return nil, mapErr(ctx.Err())
		}
	}
}

// Watch calls fn with key's current value and every later change until
// ctx is done or the watch breaks (done is then closed: watch again). fn
// runs on one goroutine, in order.
func (s *Store) Watch(ctx context.Context, key string, fn func(Entry)) (done <-chan struct{}, err error) {
	if !s.Connected() {
		return nil, ErrDisconnected
	}
	w, err := s.kv.Watch(ctx, key)
	if err != nil {
		return nil, mapErr(err)
	}
	d := make(chan struct{})
	go func() {
		defer close(d)
		defer w.Stop()
		for {
			select {
			case e, ok := <-w.Updates():
				if !ok {
					return
				}
				if e == nil {
					continue
				}
				fn(Entry{Key: e.Key(), Value: e.Value(), Revision: e.Revision(), Created: e.Created(),
					Deleted: e.Operation() != jetstream.KeyValuePut})
			case <-ctx.Done():
				return
			}
		}
	}()
	return d, nil
}

// FirstSeen records key in the expiring bucket: true when it was not
// there (first seen within the TTL), false when it was.
func (s *Store) FirstSeen(ctx context.Context, key string) (bool, error) {
	if s.dedupe == nil {
		return false, errors.New("fleet: no dedupe bucket (DedupeTTL)")
	}
	ctx, cancel, err := s.op(ctx)
	if err != nil {
		return false, err
	}
	defer cancel()
	_, err = s.dedupe.Create(ctx, key, nil)
	switch err = mapErr(err); {
	case err == nil:
		return true, nil
	case errors.Is(err, ErrConflict):
		return false, nil
	}
	return false, err
}

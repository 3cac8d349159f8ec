package pipeline

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// TestWebhookRedelivery: a webhook that fails leaves the events pending;
// the next drain delivers them, each with its stable id (Idempotency-Key).
func TestWebhookRedelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var fail atomic.Bool
	fail.Store(true)
	var mu sync.Mutex
	got := map[string]int{}
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if fail.Load() {
			http.Error(w, "down", 503)
			return
		}
		var e Event
		json.Unmarshal(b, &e)
		if e.ID != r.Header.Get("Idempotency-Key") || e.Type != "product_tags_updated" {
			t.Errorf("event %+v, key %q", e, r.Header.Get("Idempotency-Key"))
		}
		mu.Lock()
		got[e.ID]++
		mu.Unlock()
	}))
	defer hook.Close()
	cfg := testConfig(t, "http://127.0.0.1:1", "sqlite://"+filepath.Join(t.TempDir(), "p.db"),
		`  events: {sink: webhook, webhook_url: "`+hook.URL+`"}`)
	st, _ := Open(ctx, cfg.Pipeline.Store.URL, "")
	defer st.Close()
	for _, p := range []string{"a", "b", "c"} {
		st.Commit(ctx, p, "sha-"+p, "r1", "hs", sampleTagging())
	}
	sink, err := NewSink(ctx, cfg, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	pub := &Publisher{Store: st, Sink: sink}
	if n, err := pub.Drain(ctx); err == nil || n != 0 {
		t.Fatalf("failing webhook: delivered %d, err %v", n, err)
	}
	if c, _ := st.Counts(ctx); c.Delivered != 0 {
		t.Fatalf("marked %d delivered while the webhook failed", c.Delivered)
	}
	fail.Store(false)
	if n, err := pub.Drain(ctx); err != nil || n != 3 {
		t.Fatalf("recovered webhook: delivered %d, err %v", n, err)
	}
	if c, _ := st.Counts(ctx); c.Delivered != 3 || len(got) != 3 {
		t.Errorf("delivered %d, webhook saw %v", c.Delivered, got)
	}
}

package pipeline

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// helperSpec is what a helper subprocess runs.
type helperSpec struct {
	Mode     string `json:"mode"` // backfill or queue
	Provider string `json:"provider"`
	Store    string `json:"store"`
	Source   string `json:"source"`
	Events   string `json:"events"`
	NATS     string `json:"nats"`
	Stream   string `json:"stream"`
}

// TestPipelineHelper is not a test: it is the body of the subprocesses the
// crash tests kill, run when CUTOVER_PIPELINE_HELPER holds a helperSpec.
func TestPipelineHelper(t *testing.T) {
	raw := os.Getenv("CUTOVER_PIPELINE_HELPER")
	if raw == "" {
		t.Skip("helper process for the crash tests")
	}
	var h helperSpec
	json.Unmarshal([]byte(raw), &h)
	ctx := context.Background()
	extra := fmt.Sprintf("  events: {sink: file, file: %q}\n  queue: {stream: %s, subject: %s.work, consumer: %s-workers, ack_wait: 2s}", h.Events, h.Stream, h.Stream, h.Stream)
	cfg := testConfig(t, h.Provider, h.Store, extra)
	st, err := Open(ctx, h.Store, "")
	if err != nil {
		t.Fatal(err)
	}
	sink, err := NewSink(ctx, cfg, os.Stdout)
	if err != nil {
		t.Fatal(err)
	}
	pctx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { (&Publisher{Store: st, Sink: sink}).Run(pctx); close(done) }()
	tg := newTagger(t, cfg, st)
	src, _ := OpenSource(ctx, h.Source, S3Options{})
	switch h.Mode {
	case "backfill":
		_, err = Backfill(ctx, src, tg, 32, nil)
	case "queue":
		q, qerr := OpenQueue(ctx, h.NATS, cfg.Pipeline.Queue, cfg.Pipeline.Retry.MaxAttempts)
		if qerr != nil {
			t.Fatal(qerr)
		}
		items, _ := src.Items(ctx)
		if err = q.Enqueue(ctx, items, tg.Rules.Version()); err == nil {
			_, err = q.Work(ctx, src, tg, 16, 3*time.Second, nil)
		}
		q.Close()
	}
	stop()
	<-done
	if err != nil {
		t.Fatal(err)
	}
}

func startHelper(t *testing.T, h helperSpec) *exec.Cmd {
	t.Helper()
	b, _ := json.Marshal(h)
	cmd := exec.Command(os.Args[0], "-test.run=^TestPipelineHelper$", "-test.count=1")
	cmd.Env = append(os.Environ(), "CUTOVER_PIPELINE_HELPER="+string(b))
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return cmd
}

// crashItems: 20,000 as the issue asks; under -race 4,000 (make test's
// second pass runs the full size without the race detector).
func crashItems() int {
	if raceEnabled || testing.Short() {
		return 4000
	}
	return 20000
}

// checkExactlyOnce: every item tagged once (versions = items = products),
// every version's event delivered (and in the events file, at least once).
func checkExactlyOnce(t *testing.T, st *Store, n int, events string) {
	t.Helper()
	ctx := context.Background()
	c, err := st.Counts(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c.Versions != int64(n) || c.Products != int64(n) || c.DeadLetters != 0 {
		t.Errorf("after the crash and the rerun: %+v; want %d versions of %d products", c, n, n)
	}
	if c.Events != c.Versions || c.Delivered != c.Versions {
		t.Errorf("outbox: %d events, %d delivered, for %d versions: events lost", c.Events, c.Delivered, c.Versions)
	}
	f, err := os.Open(events)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	ids := map[string]bool{}
	lines := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var e Event
		if json.Unmarshal(sc.Bytes(), &e) == nil {
			ids[e.ID] = true
			lines++
		}
	}
	if len(ids) != n {
		t.Errorf("events file: %d distinct event ids in %d lines, want %d", len(ids), lines, n)
	}
	t.Logf("%d items: %d versions, %d events delivered, events file %d lines (%d redelivered duplicates)", n, c.Versions, c.Delivered, lines, lines-len(ids))
}

// TestCrashSafety kills a backfill with SIGKILL midway, reruns it, and
// checks that every item was tagged exactly once and no event was lost.
func TestCrashSafety(t *testing.T) {
	n := crashItems()
	dir := imageDir(t, n)
	url := provider(t, "", nil)
	for name, storeURL := range crashStores(t) {
		t.Run(name, func(t *testing.T) {
			events := filepath.Join(t.TempDir(), "events.jsonl")
			h := helperSpec{Mode: "backfill", Provider: url, Store: storeURL, Source: dir, Events: events}
			st, err := Open(context.Background(), storeURL, "")
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			cmd := startHelper(t, h)
			if !waitFor(t, 2*time.Minute, func() bool { c, _ := st.Counts(context.Background()); return c.Versions >= int64(n/3) }) {
				t.Fatal("the backfill never got a third of the way")
			}
			cmd.Process.Signal(syscall.SIGKILL)
			cmd.Wait()
			c, _ := st.Counts(context.Background())
			t.Logf("killed at %d of %d versions (%d events delivered)", c.Versions, n, c.Delivered)
			if c.Versions >= int64(n) {
				t.Fatal("the backfill finished before the kill: nothing was tested")
			}
			rerun := startHelper(t, h)
			if err := rerun.Wait(); err != nil {
				t.Fatalf("rerun: %v", err)
			}
			checkExactlyOnce(t, st, n, events)
		})
	}
}

// crashStores: a SQLite file always, PostgreSQL with CUTOVER_TEST_PG.
func crashStores(t *testing.T) map[string]string {
	out := map[string]string{"sqlite": "sqlite://" + filepath.Join(t.TempDir(), "crash.db")}
	if u := pgURL(t); u != "" {
		out["postgres"] = u
	}
	return out
}

// TestQueueCrashSafety: three workers share the JetStream work queue; one
// is killed midway; the others (and the redelivery of its unacknowledged
// items after ack_wait) finish the job: every item exactly once, no event
// lost.
func TestQueueCrashSafety(t *testing.T) {
	natsURL := os.Getenv("CUTOVER_TEST_NATS")
	if natsURL == "" {
		t.Skip("skipping: CUTOVER_TEST_NATS is unset (e.g. nats://127.0.0.1:4222, a JetStream server)")
	}
	n := crashItems()
	dir := imageDir(t, n)
	url := provider(t, "", nil)
	storeURL := pgURL(t)
	if storeURL == "" {
		storeURL = "sqlite://" + filepath.Join(t.TempDir(), "queue.db") // three processes on one SQLite file (WAL)
	}
	stream := fmt.Sprintf("CUTOVER_TEST_%d", time.Now().UnixNano())
	defer deleteStream(natsURL, stream)
	st, err := Open(context.Background(), storeURL, "")
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	events := filepath.Join(t.TempDir(), "events.jsonl")
	h := helperSpec{Mode: "queue", Provider: url, Store: storeURL, Source: dir, Events: events, NATS: natsURL, Stream: stream}
	workers := []*exec.Cmd{startHelper(t, h), startHelper(t, h), startHelper(t, h)}
	if !waitFor(t, 2*time.Minute, func() bool { c, _ := st.Counts(context.Background()); return c.Versions >= int64(n/3) }) {
		t.Fatal("the workers never got a third of the way")
	}
	workers[1].Process.Signal(syscall.SIGKILL)
	workers[1].Wait()
	c, _ := st.Counts(context.Background())
	t.Logf("worker 2 killed at %d of %d versions", c.Versions, n)
	for _, i := range []int{0, 2} {
		if err := workers[i].Wait(); err != nil {
			t.Fatalf("worker %d: %v", i+1, err)
		}
	}
	checkExactlyOnce(t, st, n, events)
}

package pipeline

import (
	"context"
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

func deleteStream(url, name string) {
	nc, err := nats.Connect(url)
	if err != nil {
		return
	}
	defer nc.Close()
	if js, err := jetstream.New(nc); err == nil {
		js.DeleteStream(context.Background(), name)
	}
}

// TestNATSSink: events reach JetStream; redelivering the same events (a
// publisher that crashed before marking them) adds no duplicates, because
// the event id is the Nats-Msg-Id.
func TestNATSSink(t *testing.T) {
	t.Parallel()
	url := os.Getenv("CUTOVER_TEST_NATS")
	if url == "" {
		t.Skip("skipping: CUTOVER_TEST_NATS is unset (e.g. nats://127.0.0.1:4222, a JetStream server)")
	}
	ctx := context.Background()
	stream := "CUTOVER_EVT_" + time.Now().Format("150405.000000")[7:]
	stream = "CUTOVER_EVT_" + time.Now().Format("20060102150405") + stream[len(stream)-3:]
	defer deleteStream(url, stream)
	sink, err := NewNATSSink(ctx, url, stream, stream+".events")
	if err != nil {
		t.Fatal(err)
	}
	defer sink.Close()
	evs := []Event{{ID: eventID("p1", 1), Type: "product_tags_updated", ProductID: "p1", Version: 1},
		{ID: eventID("p1", 2), Type: "product_tags_updated", ProductID: "p1", Version: 2}}
	if err := sink.Deliver(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := sink.Deliver(ctx, evs); err != nil { // a redelivery
		t.Fatal(err)
	}
	s, err := sink.js.Stream(ctx, stream)
	if err != nil {
		t.Fatal(err)
	}
	info, _ := s.Info(ctx)
	if info.State.Msgs != 2 {
		t.Errorf("stream holds %d messages, want 2 (duplicates dropped by event id)", info.State.Msgs)
	}
	m, err := s.GetMsg(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	var e Event
	if json.Unmarshal(m.Data, &e); e.ID != evs[0].ID || m.Header.Get(nats.MsgIdHdr) != evs[0].ID {
		t.Errorf("message 1: %+v %v", e, m.Header)
	}
}

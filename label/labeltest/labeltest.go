// Package labeltest makes what tests of cutover label need: shadow run
// directories recorded the way the proxy records them, with answers from
// the simulator's models and the images stored.
package labeltest

import (
	"fmt"
	"testing"
	"time"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/sim"
	"github.com/cutover/cutover/vision"
)

// LegacySim and CandidateSim are simulated providers with the story's profiles: a Rekognition legacy
// at 23 % fashion misclassification and a HolySheep classify candidate
// at 6.4 %, which fails 5 % of calls here so the failed stratum is not
// empty.
func LegacySim() *config.Simulator {
	return &config.Simulator{Format: config.FormatRekognition, Profile: config.Profile{
		Latency: config.Latency{Median: config.Duration(250 * time.Millisecond), P99: config.Duration(900 * time.Millisecond)},
		Accuracy: config.Accuracy{Misclassification: map[string]config.Rate{"fashion": 0.23, "accessories": 0.12, "footwear": 0.10, "default": 0.10},
			AttributeErrors: map[string]config.Rate{"color": 0.12, "pattern": 0.3}},
	}}
}

// CandidateSim fails the given share of calls with server_error.
func CandidateSim(failures float64) *config.Simulator {
	return &config.Simulator{Format: config.FormatHolySheep, Profile: config.Profile{
		Latency: config.Latency{Mean: config.Duration(180 * time.Millisecond), P99: config.Duration(340 * time.Millisecond)},
		Errors:  map[string]config.Rate{"server_error": config.Rate(failures)},
		Accuracy: config.Accuracy{Misclassification: map[string]config.Rate{"fashion": 0.064, "default": 0.05},
			AttributeErrors: map[string]config.Rate{"color": 0.05, "pattern": 0.1}},
	}}
}

// RunOptions shape a recorded run.
type RunOptions struct {
	Seed    uint64
	Repeats int // images sent twice (the first Repeats fixtures)
	NoStore bool
	// PrimaryOnly adds this many pairs whose candidate never answered.
	PrimaryOnly int
}

// MakeRun records a shadow run the way the proxy does (record.Writer,
// one primary and one candidate observation per pair, the image stored
// by SHA-256) with answers from the simulator's models for every fixture
// image, and returns its directory.
func MakeRun(t testing.TB, dir string, tx *vision.Taxonomy, fx *fixtures.Set, ro RunOptions) string {
	t.Helper()
	w, err := record.Create(dir, record.Run{Kind: "proxy", Mode: "shadow", Providers: []record.Provider{
		{Name: "legacy", Role: record.RolePrimary, Format: "rekognition"}, {Name: "holysheep", Role: record.RoleCandidate, Format: "holysheep"}}},
		record.Options{StoreImages: !ro.NoStore})
	if err != nil {
		t.Fatal(err)
	}
	prim, err := sim.NewModel("legacy", LegacySim(), tx, fx, ro.Seed)
	if err != nil {
		t.Fatal(err)
	}
	cand, err := sim.NewModel("holysheep", CandidateSim(0.05), tx, fx, ro.Seed)
	if err != nil {
		t.Fatal(err)
	}
	start := time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC)
	n := 0
	send := func(it fixtures.Item, both bool) {
		b, err := fx.ReadImage(it)
		if err != nil {
			t.Fatal(err)
		}
		req := vision.Request{Image: vision.NewImage(b)}
		at := start.Add(time.Duration(n) * time.Second)
		pair := fmt.Sprintf("p%05d", n)
		n++
		for side, m := range []*sim.Model{prim, cand} {
			if side == 1 && !both {
				break
			}
			o := m.DecideAt(req, at)
			obs := record.Observation{RequestID: pair + []string{"-p", "-c"}[side], PairID: pair, Time: at.Add(time.Duration(side) * time.Millisecond),
				Provider: m.Name, Role: []string{record.RolePrimary, record.RoleCandidate}[side], Status: 200,
				LatencyNS: o.Latency.Nanoseconds(), ImageSHA256: req.Image.SHA256, ImageSize: len(b)}
			if o.Err != nil {
				obs.Status, obs.Code, obs.Error = 500, string(o.Err.Code), o.Err.Error()
			} else {
				tags := tx.Normalize(m.Format, o.Result)
				obs.Tags = &tags
			}
			w.Record(obs)
		}
		if both {
			if err := w.StoreImage(req.Image.SHA256, b, req.Image.MediaType); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, it := range fx.Items {
		send(it, true)
	}
	for i := 0; i < ro.Repeats && i < len(fx.Items); i++ {
		send(fx.Items[i], true)
	}
	for i := 0; i < ro.PrimaryOnly; i++ {
		send(fx.Items[i], false)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

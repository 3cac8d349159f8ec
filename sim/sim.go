package sim

import (
	"context"
	"fmt"
	"sort"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/vision"
)

// Options select and tune the simulators Start runs.
type Options struct {
	Seed uint64
	// TimeScale multiplies every delay; 0 removes sleeping (throughput tests).
	TimeScale float64
	// Only names the simulators to run; empty runs all.
	Only []string
	// Listen overrides listen addresses by name (tests use 127.0.0.1:0).
	Listen map[string]string
}

// Start runs the configured simulators and returns them once each listens.
func Start(cfg *config.Config, tx *vision.Taxonomy, fx *fixtures.Set, opt Options) ([]*Running, error) {
	names := opt.Only
	if len(names) == 0 {
		for n := range cfg.Simulate {
			names = append(names, n)
		}
		sort.Strings(names)
	}
	var out []*Running
	stop := func() {
		for _, r := range out {
			r.Shutdown(context.Background())
		}
	}
	for _, name := range names {
		s, ok := cfg.Simulate[name]
		if !ok {
			stop()
			return nil, fmt.Errorf("no simulator %q under simulate: in %s", name, cfg.File)
		}
		m, err := NewModel(name, s, tx, fx, opt.Seed)
		if err != nil {
			stop()
			return nil, err
		}
		m.ColorDeltaE = cfg.Report.ColorDeltaE
		srv, err := NewServer(m, s, opt.TimeScale)
		if err != nil {
			stop()
			return nil, err
		}
		addr := s.Listen.String()
		if a, ok := opt.Listen[name]; ok {
			addr = a
		}
		r, err := Listen(name, addr, srv)
		if err != nil {
			stop()
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

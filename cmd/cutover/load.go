package main

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/vision"
)

// loaded is a config with its taxonomy and (if present) fixtures.
type loaded struct {
	cfg *config.Config
	tx  *vision.Taxonomy
	fx  *fixtures.Set
}

// loadConfig loads a config without requiring its secrets: a command asks
// for the environment variables of what it uses (requireEnv).
func loadConfig(path string) (*config.Config, error) {
	if path == "" {
		return nil, usagef("--config is required")
	}
	cfg, err := config.LoadWithoutSecrets(path)
	if err != nil {
		var list config.ErrorList
		if errors.As(err, &list) {
			return nil, fmt.Errorf("invalid config (run 'cutover config check --config %s'):\n%w", path, err)
		}
		return nil, err
	}
	return cfg, nil
}

// loadAll loads config and taxonomy; fixtures are optional unless required.
func loadAll(path string, requireFixtures bool, env *Env) (*loaded, error) {
	cfg, err := loadConfig(path)
	if err != nil {
		return nil, err
	}
	tx, err := vision.LoadTaxonomy(cfg.TaxonomyPath())
	if err != nil {
		return nil, err
	}
	l := &loaded{cfg: cfg, tx: tx}
	fx, err := fixtures.Load(cfg.FixturesPath())
	switch {
	case err == nil:
		l.fx = fx
	case errors.Is(err, fs.ErrNotExist) && !requireFixtures:
		fmt.Fprintf(env.Stderr, "note: no fixture set at %s: every image is unknown (make one with 'cutover fixtures gen --out %s')\n",
			cfg.FixturesPath(), cfg.FixturesPath())
	default:
		return nil, err
	}
	return l, nil
}

// requireEnv fails when a ${VAR} under the given config keys (e.g.
// providers.legacy) names an unset variable: the command needs it.
func requireEnv(cfg *config.Config, what string, keys ...string) error {
	if len(keys) == 0 {
		return nil
	}
	if err := cfg.RequireEnv(keys...); err != nil {
		return fmt.Errorf("%s needs these environment variables:\n%w", what, err)
	}
	return nil
}

// providerKeys are the config keys of the named providers.
func providerKeys(names ...string) []string {
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, "providers."+n)
	}
	return out
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

package formats

import (
	"testing"

	"github.com/cutover/cutover/config"
)

// TestEveryFormatRegistered: each format config accepts has a server
// codec and a client codec that say they speak it.
func TestEveryFormatRegistered(t *testing.T) {
	cfg := &config.Config{Prompts: map[string]*config.Prompt{"default": &config.DefaultPrompt}}
	for _, f := range config.Formats {
		s, err := ServerCodec(f)
		if err != nil || s.Format() != string(f) {
			t.Errorf("ServerCodec(%s): %v, %v", f, s, err)
		}
		p := &config.Provider{Format: f, BaseURL: "http://127.0.0.1:1", Model: "m"}
		c, err := ClientCodec(cfg, nil, p)
		if f == config.FormatOpenAI {
			continue // needs the taxonomy for its schema: covered by its own tests
		}
		if err != nil || c.Format() != string(f) {
			t.Errorf("ClientCodec(%s): %v, %v", f, c, err)
		}
	}
	if _, err := ServerCodec("nope"); err == nil {
		t.Error("an unknown format has a server codec")
	}
}

package deploy

import (
	"os"
	"path/filepath"
	"testing"
)

// TestMain removes the CLI the tests built.
func TestMain(m *testing.M) {
	code := m.Run()
	if cliV != nil {
		os.RemoveAll(filepath.Dir(cliV.bin))
	}
	os.Exit(code)
}

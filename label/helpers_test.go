package label

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/label/labeltest"
	"github.com/cutover/cutover/vision"
)

var (
	shared     sync.Once
	sharedTx   *vision.Taxonomy
	sharedFx   *fixtures.Set
	sharedErr  error
	sharedRoot string
)

func TestMain(m *testing.M) {
	code := m.Run()
	if sharedRoot != "" {
		os.RemoveAll(sharedRoot)
	}
	os.Exit(code)
}

// world returns the taxonomy and a generated fixture set of 60 images,
// made once per test binary.
func world(t testing.TB) (*vision.Taxonomy, *fixtures.Set) {
	t.Helper()
	shared.Do(func() {
		sharedTx, sharedErr = vision.LoadTaxonomy("../taxonomy.yaml")
		if sharedErr != nil {
			return
		}
		sharedRoot, sharedErr = os.MkdirTemp("", "cutover-label-test-")
		if sharedErr != nil {
			return
		}
		sharedFx, sharedErr = fixtures.Generate(filepath.Join(sharedRoot, "fixtures"), sharedTx, fixtures.GenerateOptions{N: 60, Seed: 7})
	})
	if sharedErr != nil {
		t.Fatal(sharedErr)
	}
	return sharedTx, sharedFx
}

// runOptions shape a recorded run.
type runOptions = labeltest.RunOptions

// makeRun records a shadow run of the shared fixtures.
func makeRun(t testing.TB, dir string, ro runOptions) string {
	t.Helper()
	tx, fx := world(t)
	return labeltest.MakeRun(t, dir, tx, fx, ro)
}

var (
	legacySim    = labeltest.LegacySim
	candidateSim = labeltest.CandidateSim
)

package label

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/record"
	"github.com/cutover/cutover/vision"
)

// Options say where to label from and to.
type Options struct {
	// Out is the output folder: a new fixture set, or one to resume.
	Out string
	// Runs are the run directories, recorded with record.store_images.
	Runs []string
	// Low is the confidence threshold of the low stratum (0–1).
	Low      float64
	Sample   SampleOptions
	Taxonomy *vision.Taxonomy
}

// Session is an output folder ready for labelling.
type Session struct {
	Store *Store
	// Resumed is true when Out already held a sample; Frame is the frame
	// built for a new sample (nil when resumed).
	Resumed bool
	Frame   *Frame
}

// Prepare opens Out. When it holds a design, the sample is resumed: the
// settings must be those it was drawn with and every run directory must
// have the digest it had, so the sample is the same one. Otherwise the
// frame is built, the sample drawn and the folder created.
func Prepare(ctx context.Context, opt Options) (*Session, error) {
	if opt.Low < 0 || opt.Low > 1 {
		return nil, fmt.Errorf("the low-confidence threshold must be 0–1, not %v", opt.Low)
	}
	if _, err := os.Stat(filepath.Join(opt.Out, fixtures.DesignName)); err == nil {
		st, err := resume(opt)
		if err != nil {
			return nil, err
		}
		return &Session{Store: st, Resumed: true}, nil
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	f, err := BuildFrame(ctx, opt.Runs, opt.Low)
	if err != nil {
		return nil, err
	}
	d, err := Draw(f, opt.Sample)
	if err != nil {
		return nil, err
	}
	st, err := Create(opt.Out, d, opt.Runs, opt.Taxonomy)
	if err != nil {
		return nil, err
	}
	return &Session{Store: st, Frame: f}, nil
}

func resume(opt Options) (*Store, error) {
	d, err := fixtures.LoadDesign(opt.Out)
	if err != nil {
		return nil, err
	}
	if d.Seed != opt.Sample.Seed || d.Budget != opt.Sample.Budget || d.MinPerStratum != opt.Sample.MinPerStratum || d.LowConfidence != opt.Low {
		return nil, fmt.Errorf("%s holds a sample drawn with --seed %d --budget %d --min-per-stratum %d --low-confidence %v: resume with the same flags, or label into a new --out",
			opt.Out, d.Seed, d.Budget, d.MinPerStratum, d.LowConfidence)
	}
	if len(opt.Runs) != len(d.Runs) {
		return nil, fmt.Errorf("%s holds a sample of %d run directories, %d given: resume with the same ones, in the same order", opt.Out, len(d.Runs), len(opt.Runs))
	}
	for i, path := range opt.Runs {
		rd, err := record.Open(path)
		if err != nil {
			return nil, err
		}
		digest, err := rd.Digest()
		if err != nil {
			return nil, err
		}
		if digest != d.Runs[i].Digest {
			return nil, fmt.Errorf("%s is not the run the sample in %s was drawn from (run %d was %s, digest %.19s…; this one's is %.19s…): label it into a new --out",
				path, opt.Out, i+1, d.Runs[i].Path, d.Runs[i].Digest, digest)
		}
	}
	return Open(opt.Out, opt.Runs, opt.Taxonomy)
}

package reports

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
)

var unsafeName = regexp.MustCompile(`[^A-Za-z0-9._-]`)

// WriteHGRM writes each provider's percentile spectrum to dir/<provider>.hgrm
// in the format HdrHistogram's plotters read (PercentilesPrint with 5
// ticks per half distance, values in milliseconds). It returns the files.
func (r *Report) WriteHGRM(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	var files []string
	for _, p := range r.Providers {
		if p.Histogram() == nil || p.Histogram().TotalCount() == 0 {
			continue
		}
		path := filepath.Join(dir, unsafeName.ReplaceAllString(p.Name, "_")+".hgrm")
		f, err := os.Create(path)
		if err != nil {
			return files, err
		}
		if _, err := p.Histogram().PercentilesPrint(f, 5, 1e6); err != nil {
			f.Close()
			return files, fmt.Errorf("writing %s: %w", path, err)
		}
		if err := f.Close(); err != nil {
			return files, err
		}
		files = append(files, path)
	}
	return files, nil
}

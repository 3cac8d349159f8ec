package pipeline

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"

	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/vision"
)

// ExportFixtures writes every human correction as a labelled fixture set
// (manifest.jsonl and images) in outDir, the format `cutover bench` and
// `cutover report` read: human review becomes the next benchmark's ground
// truth. The latest correction of an image wins. It returns how many items
// it wrote and how many corrections had no kept image.
func ExportFixtures(ctx context.Context, s *Store, imagesDir, outDir string, tx *vision.Taxonomy) (int, int, error) {
	items, err := s.Corrections(ctx)
	if err != nil {
		return 0, 0, err
	}
	latest := map[string]ReviewItem{}
	var order []string
	for _, it := range items {
		if _, ok := latest[it.ImageSHA256]; !ok {
			order = append(order, it.ImageSHA256)
		}
		latest[it.ImageSHA256] = it
	}
	if err := os.MkdirAll(filepath.Join(outDir, "images"), 0o755); err != nil {
		return 0, 0, err
	}
	f, err := os.Create(filepath.Join(outDir, fixtures.ManifestName))
	if err != nil {
		return 0, 0, err
	}
	defer f.Close()
	written, missing := 0, 0
	for _, sha := range order {
		it := latest[sha]
		src, ok := findImage(imagesDir, sha)
		if !ok {
			missing++
			continue
		}
		b, err := os.ReadFile(src)
		if err != nil {
			return written, missing, err
		}
		name := filepath.Join("images", filepath.Base(src))
		if err := os.WriteFile(filepath.Join(outDir, name), b, 0o644); err != nil {
			return written, missing, err
		}
		attrs := map[vision.AttributeKind]string{}
		for k, v := range it.Correction.Attributes {
			attrs[vision.AttributeKind(k)] = v
		}
		fx := fixtures.Item{ID: fmt.Sprintf("review-%d", it.ID), File: filepath.ToSlash(name), SHA256: sha,
			Category: it.Correction.Category, Attributes: attrs, Source: "human review of " + it.ProductID}
		if tx != nil {
			fx.Group = tx.Group(fx.Category)
		}
		line, _ := json.Marshal(fx)
		if _, err := f.Write(append(line, '\n')); err != nil {
			return written, missing, err
		}
		written++
	}
	return written, missing, f.Sync()
}

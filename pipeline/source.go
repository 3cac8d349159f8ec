package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/cutover/cutover/vision"
)

// Item is one image to tag in a backfill.
type Item struct {
	ProductID string `json:"product_id"`
	// Path is a local file; Key an object key of an S3 source.
	Path string `json:"path,omitempty"`
	Key  string `json:"key,omitempty"`
	// Label is the category the item is labelled with: a fixture
	// manifest's category, "" for sources without labels.
	Label string `json:"label,omitempty"`
}

// Source lists a backfill's items and loads their images.
type Source interface {
	// Items lists every item, in a stable order.
	Items(ctx context.Context) ([]Item, error)
	// Load returns an item's image.
	Load(ctx context.Context, it Item) (vision.Image, error)
	// Name describes the source for logs and dead letters.
	Name() string
}

// OpenSource opens DIR, a manifest.jsonl or s3://bucket/prefix.
func OpenSource(ctx context.Context, spec string, s3 S3Options) (Source, error) {
	if strings.HasPrefix(spec, "s3://") {
		return NewS3Source(ctx, spec, s3)
	}
	st, err := os.Stat(spec)
	if err != nil {
		return nil, fmt.Errorf("--source: %w", err)
	}
	if st.IsDir() {
		if _, err := os.Stat(filepath.Join(spec, "manifest.jsonl")); err == nil {
			return &manifestSource{path: filepath.Join(spec, "manifest.jsonl")}, nil
		}
		return &dirSource{dir: spec}, nil
	}
	return &manifestSource{path: spec}, nil
}

var imageExt = map[string]bool{".jpg": true, ".jpeg": true, ".png": true, ".webp": true, ".gif": true}

// dirSource is a folder of images; a product id is the file's path below
// the folder without its extension.
type dirSource struct{ dir string }

func (d *dirSource) Name() string { return d.dir }

func (d *dirSource) Items(ctx context.Context) ([]Item, error) {
	var out []Item
	err := filepath.WalkDir(d.dir, func(p string, e fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() || !imageExt[strings.ToLower(filepath.Ext(p))] {
			return nil
		}
		rel, _ := filepath.Rel(d.dir, p)
		out = append(out, Item{ProductID: strings.TrimSuffix(filepath.ToSlash(rel), filepath.Ext(rel)), Path: p})
		return nil
	})
	sort.Slice(out, func(i, j int) bool { return out[i].Path < out[j].Path })
	return out, err
}

func (d *dirSource) Load(ctx context.Context, it Item) (vision.Image, error) {
	return loadFile(it.Path)
}

func loadFile(p string) (vision.Image, error) {
	b, err := os.ReadFile(p)
	if err != nil {
		return vision.Image{}, err
	}
	img := vision.NewImage(b)
	if img.MediaType == "" {
		return img, vision.Errorf(vision.CodeBadImage, "%s is not a JPEG, PNG, GIF or WebP image", p)
	}
	return img, nil
}

// manifestSource is a JSON-lines manifest: {"product_id": …, "file": …}
// per line, or a fixture manifest ({"id": …, "file": …, "category": …});
// files are relative to the manifest, and a category is the item's label.
type manifestSource struct{ path string }

func (m *manifestSource) Name() string { return m.path }

func (m *manifestSource) Items(ctx context.Context) ([]Item, error) {
	f, err := os.Open(m.path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dir := filepath.Dir(m.path)
	var out []Item
	seen := map[string]int{}
	br := bufio.NewReader(f)
	for line := 1; ; line++ {
		b, err := br.ReadBytes('\n')
		if t := bytes.TrimSpace(b); len(t) > 0 {
			var row struct {
				ProductID string `json:"product_id"`
				ID        string `json:"id"`
				File      string `json:"file"`
				Path      string `json:"path"`
				Category  string `json:"category"`
			}
			if jerr := json.Unmarshal(t, &row); jerr != nil {
				return nil, fmt.Errorf("%s:%d: %w", m.path, line, jerr)
			}
			pid, file := row.ProductID, row.File
			if pid == "" {
				pid = row.ID
			}
			if file == "" {
				file = row.Path
			}
			if pid == "" || file == "" {
				return nil, fmt.Errorf("%s:%d: expected product_id (or id) and file", m.path, line)
			}
			if !filepath.IsAbs(file) {
				file = filepath.Join(dir, filepath.FromSlash(file))
			}
			if prev, dup := seen[pid+"|"+file]; dup {
				return nil, fmt.Errorf("%s:%d: product %s with %s repeats line %d", m.path, line, pid, file, prev)
			}
			seen[pid+"|"+file] = line
			out = append(out, Item{ProductID: pid, Path: file, Label: row.Category})
		}
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return nil, err
		}
	}
}

func (m *manifestSource) Load(ctx context.Context, it Item) (vision.Image, error) {
	return loadFile(it.Path)
}

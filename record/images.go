package record

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// ImagesDir is the folder of a run directory that holds the stored
// images (record.store_images).
const ImagesDir = "images"

// StoredImages lists the images stored under images/ by SHA-256: the file
// of each, relative to the run directory. It does not read or hash them.
// A run recorded without record.store_images has no images/ folder: the
// error then wraps os.ErrNotExist. Files whose names are not
// <2 hex>/<64 hex>.<ext> with matching prefixes are not images of the
// run and are returned in odd.
func (d *Dir) StoredImages() (images map[string]string, odd []string, err error) {
	root := filepath.Join(d.Path, ImagesDir)
	subs, err := os.ReadDir(root)
	if err != nil {
		return nil, nil, fmt.Errorf("listing stored images: %w", err)
	}
	images = map[string]string{}
	for _, sub := range subs {
		if !sub.IsDir() {
			odd = append(odd, ImagesDir+"/"+sub.Name())
			continue
		}
		files, err := os.ReadDir(filepath.Join(root, sub.Name()))
		if err != nil {
			return nil, nil, fmt.Errorf("listing stored images: %w", err)
		}
		for _, f := range files {
			rel := ImagesDir + "/" + sub.Name() + "/" + f.Name()
			sha, _, _ := strings.Cut(f.Name(), ".")
			if f.IsDir() || !isSHA256(sha) || sha[:2] != sub.Name() {
				odd = append(odd, rel)
				continue
			}
			images[sha] = rel
		}
	}
	return images, odd, nil
}

func isSHA256(s string) bool {
	if len(s) != 64 {
		return false
	}
	for _, c := range s {
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

package label

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/vision"
)

// LogName is the decision log in the output folder: one JSON line per
// decision (a label or a skip), appended and fsynced as it is made. It is
// the source of truth; manifest.jsonl is rebuilt from it.
const LogName = "labels.jsonl"

// Decisions a person can make about an item.
const (
	DecisionLabel = "label"
	DecisionSkip  = "skip"
)

// Choices that say where a label's category came from: the answer shown
// first or second, or neither (picked from the taxonomy).
const (
	Choice1       = "1"
	Choice2       = "2"
	ChoiceNeither = "neither"
)

// Decision is one line of labels.jsonl.
type Decision struct {
	SHA256   string `json:"sha256"`
	Decision string `json:"decision"`
	// Choice is what the person pressed: 1, 2 or neither; Picked the
	// provider role it names ("primary", "candidate"), or "neither".
	Choice     string                          `json:"choice,omitempty"`
	Picked     string                          `json:"picked,omitempty"`
	Category   string                          `json:"category,omitempty"`
	Attributes map[vision.AttributeKind]string `json:"attributes,omitempty"`
	Time       time.Time                       `json:"time"`
}

// Store is an output folder: design.json, labels.jsonl, manifest.jsonl
// and images/. It is safe for concurrent use.
type Store struct {
	dir    string
	tx     *vision.Taxonomy
	design *fixtures.Design
	runs   []string // run directories, by the design's run index

	mu        sync.Mutex
	log       *os.File
	manifest  *os.File            // manifest.jsonl, opened for appending
	decisions map[string]Decision // by SHA-256, the last one made
	cursor    int                 // no undecided item before this position
	counts    map[string]*StratumProgress
	index     map[string]int // SHA-256 → position in design.Sample
	leaves    map[string]bool
	// Recovered is set when Open cut a torn last line off the log (a
	// crash in the middle of a write).
	Recovered bool
}

// Create makes the output folder dir for design d (dir must not exist or
// be empty) and opens it.
func Create(dir string, d *fixtures.Design, runs []string, tx *vision.Taxonomy) (*Store, error) {
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return nil, fmt.Errorf("%s is not empty and holds no %s: choose a new --out", dir, fixtures.DesignName)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	b, err := json.MarshalIndent(d, "", "  ")
	if err != nil {
		return nil, err
	}
	if err := writeAtomic(filepath.Join(dir, fixtures.DesignName), append(b, '\n')); err != nil {
		return nil, fmt.Errorf("writing the design: %w", err)
	}
	return Open(dir, runs, tx)
}

// Open opens an output folder made by Create, reading its design and
// its decisions so far. runs are the run directories, in the design's
// order (their digests are the caller's to check: Resume does).
func Open(dir string, runs []string, tx *vision.Taxonomy) (*Store, error) {
	d, err := fixtures.LoadDesign(dir)
	if err != nil {
		return nil, err
	}
	if len(runs) != len(d.Runs) {
		return nil, fmt.Errorf("%s was drawn from %d run directories, %d given", dir, len(d.Runs), len(runs))
	}
	s := &Store{dir: dir, tx: tx, design: d, runs: runs, decisions: map[string]Decision{}, index: map[string]int{}, leaves: map[string]bool{}}
	for _, l := range tx.Leaves() {
		s.leaves[l] = true
	}
	for i, u := range d.Sample {
		s.index[u.SHA256] = i
	}
	if err := s.readLog(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, LogName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, fmt.Errorf("opening the decision log: %w", err)
	}
	s.log = f
	if err := s.writeManifest(); err != nil {
		f.Close()
		return nil, err
	}
	s.counts = map[string]*StratumProgress{}
	for _, st := range d.Strata {
		s.counts[st.Name] = &StratumProgress{Name: st.Name, Population: st.Population, Sample: st.Sample}
	}
	for _, u := range d.Sample {
		if dc, ok := s.decisions[u.SHA256]; ok {
			s.count(u.Stratum, dc.Decision, 1)
		}
	}
	return s, nil
}

// count adds n to the stratum's count of decision.
func (s *Store) count(stratum, decision string, n int) {
	c := s.counts[stratum]
	if decision == DecisionLabel {
		c.Labelled += n
	} else {
		c.Skipped += n
	}
}

// readLog loads labels.jsonl. A last line without its newline is a write
// cut short by a crash: it is cut off (Recovered). Any other bad line is
// an error naming the line.
func (s *Store) readLog() error {
	path := filepath.Join(s.dir, LogName)
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("reading the decision log: %w", err)
	}
	decisions, keep, err := s.parseLog(path, b)
	if err != nil {
		return err
	}
	if keep < len(b) {
		if err := os.Truncate(path, int64(keep)); err != nil {
			return fmt.Errorf("cutting the torn last line off %s: %w", path, err)
		}
		s.Recovered = true
	}
	s.decisions = decisions
	return nil
}

// parseLog decodes the decision log's bytes b (read from path): the last
// decision about each image, and how many bytes of b hold whole lines.
func (s *Store) parseLog(path string, b []byte) (map[string]Decision, int, error) {
	keep := bytes.LastIndexByte(b, '\n') + 1
	out := map[string]Decision{}
	for line, rest := 1, b[:keep]; len(rest) > 0; line++ {
		l, next, _ := bytes.Cut(rest, []byte{'\n'})
		rest = next
		if len(bytes.TrimSpace(l)) == 0 {
			continue
		}
		var dc Decision
		dec := json.NewDecoder(bytes.NewReader(l))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&dc); err != nil {
			return nil, 0, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		if dec.More() {
			return nil, 0, fmt.Errorf("%s:%d: more than one JSON value on the line", path, line)
		}
		if _, ok := s.index[dc.SHA256]; !ok {
			return nil, 0, fmt.Errorf("%s:%d: image %.12q is not in the sample of %s", path, line, dc.SHA256, fixtures.DesignName)
		}
		if err := s.validate(&dc); err != nil {
			return nil, 0, fmt.Errorf("%s:%d: %w", path, line, err)
		}
		out[dc.SHA256] = dc
	}
	return out, keep, nil
}

// Close closes the log.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log == nil {
		return nil
	}
	err := s.log.Close()
	if s.manifest != nil {
		s.manifest.Close()
	}
	s.log, s.manifest = nil, nil
	return err
}

// Design returns the sample's design (not to be modified).
func (s *Store) Design() *fixtures.Design { return s.design }

// Dir is the output folder.
func (s *Store) Dir() string { return s.dir }

// ErrDecided is returned by Record for an item that already has a
// decision, unless replace is set.
var ErrDecided = errors.New("this image already has a decision")

// InvalidError is a decision that cannot be saved as given.
type InvalidError struct{ Msg string }

func (e *InvalidError) Error() string { return e.Msg }

func invalid(format string, args ...any) error { return &InvalidError{fmt.Sprintf(format, args...)} }

// validate checks a decision against the sample and the taxonomy and
// fills in Picked.
func (s *Store) validate(dc *Decision) error {
	i, ok := s.index[dc.SHA256]
	if !ok {
		return invalid("image %q is not in the sample", dc.SHA256)
	}
	u := s.design.Sample[i]
	switch dc.Decision {
	case DecisionSkip:
		if dc.Category != "" || dc.Choice != "" || len(dc.Attributes) > 0 {
			return invalid("a skip carries no category, choice or attributes")
		}
		dc.Picked = ""
		return nil
	case DecisionLabel:
	default:
		return invalid("decision must be %q or %q, not %q", DecisionLabel, DecisionSkip, dc.Decision)
	}
	if !s.leaves[dc.Category] {
		return invalid("category %q is not a leaf of the taxonomy: pick the specific category", dc.Category)
	}
	switch dc.Choice {
	case Choice1, Choice2:
		side := sideOf(u, dc.Choice)
		if top := u.Answers[side].Top(); top != dc.Category {
			return invalid("choice %s is the answer %q, but the category sent is %q", dc.Choice, top, dc.Category)
		}
		dc.Picked = s.design.Providers[side].Role
	case ChoiceNeither:
		dc.Picked = ChoiceNeither
	default:
		return invalid("choice must be 1, 2 or neither, not %q", dc.Choice)
	}
	for k, v := range dc.Attributes {
		if !k.Valid() {
			return invalid("unknown attribute kind %q (want color, pattern, material or style)", k)
		}
		if v == "" {
			delete(dc.Attributes, k)
			continue
		}
		if !contains(s.tx.AttributeValues(k), v) {
			return invalid("%s %q is not in the taxonomy's vocabulary", k, v)
		}
	}
	return nil
}

// sideOf maps the slot a person saw ("1" or "2") to the answer's index
// (0 the primary, 1 the candidate).
func sideOf(u fixtures.DesignUnit, choice string) int {
	side := 0
	if choice == Choice2 {
		side = 1
	}
	if u.Swap {
		side = 1 - side
	}
	return side
}

func contains(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

// Record validates and saves one decision: the image is copied into the
// set (write, fsync, rename), the decision appended to the log and
// fsynced, and a new label appended to the manifest and fsynced (a
// replaced one rewrites the manifest: write, fsync, rename). When Record
// returns nil, the label survives a crash. The work per decision does not
// grow with the sample.
func (s *Store) Record(dc Decision, replace bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.log == nil {
		return errors.New("the store is closed")
	}
	if err := s.validate(&dc); err != nil {
		return err
	}
	prev, done := s.decisions[dc.SHA256]
	if done && !replace {
		return ErrDecided
	}
	if dc.Decision == DecisionLabel {
		if err := s.copyImage(s.design.Sample[s.index[dc.SHA256]]); err != nil {
			return err
		}
	}
	b, err := json.Marshal(dc)
	if err != nil {
		return err
	}
	if _, err := s.log.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("appending to the decision log: %w", err)
	}
	if err := s.log.Sync(); err != nil {
		return fmt.Errorf("syncing the decision log: %w", err)
	}
	s.decisions[dc.SHA256] = dc
	u := s.design.Sample[s.index[dc.SHA256]]
	if done {
		s.count(u.Stratum, prev.Decision, -1)
	}
	s.count(u.Stratum, dc.Decision, 1)
	switch {
	case done && prev.Decision == DecisionLabel:
		return s.writeManifest() // the old label goes
	case dc.Decision == DecisionLabel:
		return s.appendManifest(s.item(u, dc))
	}
	return nil
}

// ImagePath is where a sampled image is read from: the copy in the set
// once labelled, else the run directory's stored file.
func (s *Store) ImagePath(u fixtures.DesignUnit) string {
	return filepath.Join(s.runs[u.ImageRun], filepath.FromSlash(u.File))
}

// ReadImage reads a sampled image and checks that it still hashes to its
// name.
func (s *Store) ReadImage(sha string) ([]byte, error) {
	i, ok := s.index[sha]
	if !ok {
		return nil, fmt.Errorf("image %q is not in the sample", sha)
	}
	path := s.ImagePath(s.design.Sample[i])
	if err := verify(path, sha); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return os.ReadFile(path)
}

// setFile is the image's path inside the set.
func setFile(u fixtures.DesignUnit) string {
	ext := filepath.Ext(u.File)
	if ext == "" {
		ext = ".img"
	}
	return "images/" + u.SHA256[:2] + "/" + u.SHA256 + ext
}

func (s *Store) copyImage(u fixtures.DesignUnit) error {
	dst := filepath.Join(s.dir, filepath.FromSlash(setFile(u)))
	if err := verify(dst, u.SHA256); err == nil {
		return nil // copied by an earlier decision
	}
	b, err := s.ReadImage(u.SHA256)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		return err
	}
	return writeAtomic(dst, b)
}

// items returns the manifest's items: one per labelled image, in the
// sample's order.
func (s *Store) items() []fixtures.Item {
	var out []fixtures.Item
	for _, u := range s.design.Sample {
		if dc, ok := s.decisions[u.SHA256]; ok && dc.Decision == DecisionLabel {
			out = append(out, s.item(u, dc))
		}
	}
	return out
}

// item is the manifest line of a labelled image.
func (s *Store) item(u fixtures.DesignUnit, dc Decision) fixtures.Item {
	st, _ := s.design.Stratum(u.Stratum)
	var attrs map[vision.AttributeKind]string
	if len(dc.Attributes) > 0 {
		attrs = dc.Attributes
	}
	return fixtures.Item{ID: "label-" + u.SHA256[:16], File: setFile(u), SHA256: u.SHA256,
		Category: dc.Category, Group: s.tx.Group(dc.Category), Attributes: attrs, Source: "label",
		Stratum: u.Stratum, InclusionProbability: st.InclusionProbability}
}

// appendManifest appends one item in one write and fsyncs.
func (s *Store) appendManifest(it fixtures.Item) error {
	b, err := json.Marshal(it)
	if err != nil {
		return err
	}
	if _, err := s.manifest.Write(append(b, '\n')); err != nil {
		return fmt.Errorf("appending to the manifest: %w", err)
	}
	if err := s.manifest.Sync(); err != nil {
		return fmt.Errorf("syncing the manifest: %w", err)
	}
	return nil
}

func (s *Store) writeManifest() error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	for _, it := range s.items() {
		if err := enc.Encode(it); err != nil {
			return err
		}
	}
	path := filepath.Join(s.dir, fixtures.ManifestName)
	if err := writeAtomic(path, b.Bytes()); err != nil {
		return fmt.Errorf("writing the manifest: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		return fmt.Errorf("opening the manifest: %w", err)
	}
	if s.manifest != nil {
		s.manifest.Close()
	}
	s.manifest = f
	return nil
}

// writeAtomic writes b to path via a temporary file in the same folder,
// fsync, rename and an fsync of the folder, so that a crash leaves the
// old content or the new, never a torn file.
func writeAtomic(path string, b []byte) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	if _, err := f.Write(b); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(tmp)
		return err
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Chmod(tmp, 0o644); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	if d, err := os.Open(filepath.Dir(path)); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

// Item is a sampled image as the page and the API show it.
type Item struct {
	SHA256   string         `json:"sha256"`
	Position int            `json:"position"` // 1-based, in presentation order
	Total    int            `json:"total"`
	Image    string         `json:"image"` // the URL path of the image
	Answers  [2]ShownAnswer `json:"answers"`
}

// ShownAnswer is one provider's answer as shown: by slot (1 or 2), with
// the provider's name only when names are shown.
type ShownAnswer struct {
	Slot     int    `json:"slot"`
	Provider string `json:"provider,omitempty"`
	// Category is the top-1 category and Confidence its confidence;
	// Others are the runner-up categories.
	Category   string          `json:"category,omitempty"`
	Confidence float64         `json:"confidence,omitempty"`
	Others     []vision.Scored `json:"others,omitempty"`
	// Attributes are the answer's top value of each kind that the
	// taxonomy's vocabulary holds.
	Attributes map[vision.AttributeKind]string `json:"attributes,omitempty"`
	// Pickable says the category is a taxonomy leaf, so 1 or 2 can
	// choose it; Failed is the error code of a failed call.
	Pickable bool   `json:"pickable"`
	Failed   string `json:"failed,omitempty"`
}

// Progress counts the decisions so far.
type Progress struct {
	Total     int               `json:"total"`
	Labelled  int               `json:"labelled"`
	Skipped   int               `json:"skipped"`
	Remaining int               `json:"remaining"`
	Strata    []StratumProgress `json:"strata"`
}

// StratumProgress is Progress for one stratum.
type StratumProgress struct {
	Name       string `json:"name"`
	Population int    `json:"population"`
	Sample     int    `json:"sample"`
	Labelled   int    `json:"labelled"`
	Skipped    int    `json:"skipped"`
}

// Progress returns the counts so far.
func (s *Store) Progress() Progress {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.progressLocked()
}

func (s *Store) progressLocked() Progress {
	p := Progress{Total: len(s.design.Sample)}
	for _, st := range s.design.Strata {
		c := *s.counts[st.Name]
		p.Strata = append(p.Strata, c)
		p.Labelled += c.Labelled
		p.Skipped += c.Skipped
	}
	p.Remaining = p.Total - p.Labelled - p.Skipped
	return p
}

// Next returns the first item in presentation order without a decision;
// ok is false when every item has one.
func (s *Store) Next(showProviders bool) (Item, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for ; s.cursor < len(s.design.Sample); s.cursor++ {
		if _, done := s.decisions[s.design.Sample[s.cursor].SHA256]; !done {
			return s.show(s.cursor, showProviders), true
		}
	}
	return Item{}, false
}

func (s *Store) show(i int, showProviders bool) Item {
	u := s.design.Sample[i]
	it := Item{SHA256: u.SHA256, Position: i + 1, Total: len(s.design.Sample), Image: "/api/image/" + u.SHA256}
	for slot := range 2 {
		side := sideOf(u, []string{Choice1, Choice2}[slot])
		a := u.Answers[side]
		sa := ShownAnswer{Slot: slot + 1}
		if showProviders {
			sa.Provider = s.design.Providers[side].Name
		}
		switch {
		case a.Code != "":
			sa.Failed = a.Code
		case a.Tags == nil || a.Tags.Top() == "":
			sa.Failed = "no category"
		default:
			sa.Category, sa.Confidence = a.Tags.Categories[0].Value, a.Tags.Categories[0].Confidence
			sa.Others = a.Tags.Categories[1:min(len(a.Tags.Categories), 3)]
			sa.Pickable = s.leaves[sa.Category]
		}
		if a.Code == "" && a.Tags != nil {
			for _, k := range []vision.AttributeKind{vision.KindColor, vision.KindPattern, vision.KindMaterial, vision.KindStyle} {
				if v := a.Tags.TopAttribute(k); v != "" && contains(s.tx.AttributeValues(k), v) {
					if sa.Attributes == nil {
						sa.Attributes = map[vision.AttributeKind]string{}
					}
					sa.Attributes[k] = v
				}
			}
		}
		it.Answers[slot] = sa
	}
	return it
}

// Search returns up to limit taxonomy leaves matching every word of q in
// their path, aliases or provider names, best first: a word that starts
// the leaf's last segment ranks first, then paths in order.
func Search(tx *vision.Taxonomy, q string, limit int) []SearchHit {
	words := strings.Fields(strings.ToLower(q))
	var out []SearchHit
	for _, leaf := range tx.Leaves() {
		c, _ := tx.Category(leaf)
		hay := []string{strings.ToLower(c.Path)}
		for _, a := range c.Aliases {
			hay = append(hay, strings.ToLower(a))
		}
		for _, n := range c.Names {
			hay = append(hay, strings.ToLower(n))
		}
		text := strings.Join(hay, " | ")
		ok := true
		for _, w := range words {
			if !strings.Contains(text, w) {
				ok = false
				break
			}
		}
		if !ok {
			continue
		}
		last := leaf[strings.LastIndexByte(leaf, '/')+1:]
		rank := 1
		if len(words) > 0 && strings.HasPrefix(last, words[0]) {
			rank = 0
		}
		out = append(out, SearchHit{Path: leaf, Group: c.Group, Aliases: c.Aliases, rank: rank})
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].rank != out[j].rank {
			return out[i].rank < out[j].rank
		}
		return out[i].Path < out[j].Path
	})
	if limit > 0 && len(out) > limit {
		out = out[:limit]
	}
	return out
}

// SearchHit is one leaf found by Search.
type SearchHit struct {
	Path    string   `json:"path"`
	Group   string   `json:"group"`
	Aliases []string `json:"aliases,omitempty"`
	rank    int
}

var _ io.Closer = (*Store)(nil)

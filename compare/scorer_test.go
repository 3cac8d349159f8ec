package compare

import (
	"math"
	"path/filepath"
	"sync"
	"testing"

	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/vision"
)

func taxonomy(t testing.TB) *vision.Taxonomy {
	t.Helper()
	tx, err := vision.LoadTaxonomy(filepath.Join("..", "taxonomy.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	return tx
}

func tags(cats []string, attrs map[vision.AttributeKind]string) *vision.Tags {
	t := &vision.Tags{Attributes: map[vision.AttributeKind][]vision.Scored{}}
	for i, c := range cats {
		t.Categories = append(t.Categories, vision.Scored{Value: c, Confidence: 0.9 - 0.1*float64(i)})
	}
	for k, v := range attrs {
		t.Attributes[k] = []vision.Scored{{Value: v, Confidence: 0.8}}
	}
	return t
}

// TestScore: an answer against a label, colours within color_delta_e
// (bronze/copper ΔE00 4.3, maroon/burgundy 7.3, grey/grey-melange 13.2).
func TestScore(t *testing.T) {
	s := NewScorer(taxonomy(t), config.Report{})
	label := &fixtures.Item{Category: "apparel/topwear/tshirts", Attributes: map[vision.AttributeKind]string{"color": "bronze", "pattern": "solid"}}
	for _, tc := range []struct {
		name      string
		tags      *vision.Tags
		correct   bool
		predicted string
		color     bool
		pattern   bool
	}{
		{"right, same colour", tags([]string{"apparel/topwear/tshirts"}, map[vision.AttributeKind]string{"color": "bronze", "pattern": "solid"}), true, "apparel/topwear/tshirts", true, true},
		{"right, near colour", tags([]string{"apparel/topwear/tshirts"}, map[vision.AttributeKind]string{"color": "copper", "pattern": "striped"}), true, "apparel/topwear/tshirts", true, false},
		{"wrong, far colour", tags([]string{"apparel/topwear/shirts", "apparel/topwear/tshirts"}, map[vision.AttributeKind]string{"color": "white"}), false, "apparel/topwear/shirts", false, false},
		{"nothing", &vision.Tags{}, false, "(none)", false, false},
		{"nil", nil, false, "(none)", false, false},
	} {
		a := s.Answer(tc.tags)
		sc := s.Score(&a, label)
		if sc.Correct != tc.correct || sc.Predicted != tc.predicted || sc.Truth != label.Category {
			t.Errorf("%s: correct %v predicted %q, want %v %q", tc.name, sc.Correct, sc.Predicted, tc.correct, tc.predicted)
		}
		if sc.Group != "fashion" {
			t.Errorf("%s: group %q from the taxonomy, want fashion", tc.name, sc.Group)
		}
		if !sc.Labelled[0] || !sc.Labelled[1] || sc.Labelled[2] || sc.Labelled[3] {
			t.Errorf("%s: labelled %v, want colour and pattern", tc.name, sc.Labelled)
		}
		if sc.Right[0] != tc.color || sc.Right[1] != tc.pattern {
			t.Errorf("%s: colour right %v pattern right %v, want %v %v", tc.name, sc.Right[0], sc.Right[1], tc.color, tc.pattern)
		}
	}
}

func TestAgree(t *testing.T) {
	s := NewScorer(taxonomy(t), config.Report{ColorDeltaE: 5, TopK: 2})
	for _, tc := range []struct {
		name    string
		a, b    *vision.Tags
		top1    bool
		jaccard float64
		both    [NumKinds]bool
		same    [NumKinds]bool
	}{
		{"same", tags([]string{"a/b", "a/c", "a/d"}, map[vision.AttributeKind]string{"color": "tan"}), tags([]string{"a/b", "a/c"}, map[vision.AttributeKind]string{"color": "khaki"}),
			true, 1, [NumKinds]bool{true}, [NumKinds]bool{true}},
		// top-2 of the first is {a/b, a/c}: one of three in the union.
		{"overlap", tags([]string{"a/b", "a/c", "a/d"}, map[vision.AttributeKind]string{"color": "maroon"}), tags([]string{"a/x", "a/b"}, map[vision.AttributeKind]string{"color": "burgundy", "style": "casual"}),
			false, 1.0 / 3, [NumKinds]bool{true}, [NumKinds]bool{false}},
		{"both empty", &vision.Tags{}, &vision.Tags{}, false, 1, [NumKinds]bool{}, [NumKinds]bool{}},
	} {
		x, y := s.Answer(tc.a), s.Answer(tc.b)
		ps := s.Agree(&x, &y)
		if ps.Top1 != tc.top1 || math.Abs(ps.Jaccard-tc.jaccard) > 1e-12 || ps.Both != tc.both || ps.Same != tc.same {
			t.Errorf("%s: %+v, want top1 %v jaccard %v both %v same %v", tc.name, ps, tc.top1, tc.jaccard, tc.both, tc.same)
		}
	}
}

func TestSameAttribute(t *testing.T) {
	s := NewScorer(taxonomy(t), config.Report{ColorDeltaE: 10})
	byName := NewScorer(nil, config.Report{})
	for _, tc := range []struct {
		kind         vision.AttributeKind
		x, y         string
		want, byName bool
	}{
		{"color", "bronze", "copper", true, false},
		{"color", "maroon", "burgundy", true, false},
		{"color", "grey", "grey-melange", false, false},
		{"color", "black", "black", true, true},
		{"color", "black", "not-a-colour", false, false},
		{"color", "", "", false, false},
		{"pattern", "solid", "solid", true, true},
		{"pattern", "solid", "striped", false, false},
	} {
		if got := s.SameAttribute(tc.kind, tc.x, tc.y); got != tc.want {
			t.Errorf("%s %s/%s: %v, want %v", tc.kind, tc.x, tc.y, got, tc.want)
		}
		if got := s.SameAttribute(tc.kind, tc.y, tc.x); got != tc.want {
			t.Errorf("%s %s/%s reversed: %v, want %v", tc.kind, tc.y, tc.x, got, tc.want)
		}
		if got := byName.SameAttribute(tc.kind, tc.x, tc.y); got != tc.byName {
			t.Errorf("without a taxonomy %s %s/%s: %v, want %v", tc.kind, tc.x, tc.y, got, tc.byName)
		}
	}
}

// TestScorerConcurrent: the proxy and bench score from many goroutines
// (run with -race); every goroutine sees the same distances.
func TestScorerConcurrent(t *testing.T) {
	s := NewScorer(taxonomy(t), config.Report{})
	colours := []string{"bronze", "copper", "maroon", "burgundy", "tan", "khaki", "black", "white", "nope"}
	var wg sync.WaitGroup
	results := make([][]bool, 8)
	for g := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for _, x := range colours {
				for _, y := range colours {
					results[g] = append(results[g], s.SameAttribute("color", x, y))
				}
			}
		}()
	}
	wg.Wait()
	for g := range results {
		for i := range results[g] {
			if results[g][i] != results[0][i] {
				t.Fatalf("goroutine %d result %d differs", g, i)
			}
		}
	}
}

func TestJaccard(t *testing.T) {
	for _, tc := range []struct {
		a, b []string
		want float64
	}{
		{nil, nil, 1},
		{[]string{"a"}, nil, 0},
		{[]string{"a", "b"}, []string{"b", "c"}, 1.0 / 3},
		{[]string{"a", "b", "c"}, []string{"c", "b", "a"}, 1},
	} {
		if got := Jaccard(tc.a, tc.b); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("Jaccard(%v, %v) = %v, want %v", tc.a, tc.b, got, tc.want)
		}
	}
}

// The scikit-learn example from REFERENCE.md: y_true = cat dog pig cat dog
// pig, y_pred = cat pig dog cat cat dog.
func TestSklearnConventions(t *testing.T) {
	conf := map[string]map[string]int{}
	yt := []string{"cat", "dog", "pig", "cat", "dog", "pig"}
	yp := []string{"cat", "pig", "dog", "cat", "cat", "dog"}
	for i := range yt {
		if conf[yt[i]] == nil {
			conf[yt[i]] = map[string]int{}
		}
		conf[yt[i]][yp[i]]++
	}
	per, micro, macro, _ := classMetrics(conf)
	near := func(got, want float64) bool { return math.Abs(got-want) < 5e-4 }
	if !near(macro.Precision, 0.222) || !near(macro.Recall, 0.333) || !near(macro.F1, 0.267) {
		t.Errorf("macro = %+v, want P 0.222 R 0.333 F1 0.267", macro)
	}
	if !near(micro.Precision, 0.333) || !near(micro.F1, 0.333) {
		t.Errorf("micro = %+v, want 0.333", micro)
	}
	want := map[string][3]float64{"cat": {0.667, 1, 0.8}, "dog": {0, 0, 0}, "pig": {0, 0, 0}}
	for _, m := range per {
		w := want[m.Category]
		if !near(m.Precision, w[0]) || !near(m.Recall, w[1]) || !near(m.F1, w[2]) {
			t.Errorf("%s: P %.3f R %.3f F1 %.3f, want %v", m.Category, m.Precision, m.Recall, m.F1, w)
		}
	}
}

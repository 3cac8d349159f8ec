package compare_test

import (
	"fmt"

	"github.com/cutover/cutover/compare"
	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/vision"
)

func answer(category, color string) *vision.Tags {
	return &vision.Tags{Categories: []vision.Scored{{Value: category, Confidence: 0.9}},
		Attributes: map[vision.AttributeKind][]vision.Scored{vision.KindColor: {{Value: color, Confidence: 0.8}}}}
}

// A Scorer judges an answer against a fixture label; colours match within
// report.color_delta_e (CIEDE2000).
func ExampleScorer_Score() {
	tx, err := vision.LoadTaxonomy("../taxonomy.yaml")
	if err != nil {
		panic(err)
	}
	s := compare.NewScorer(tx, config.Report{ColorDeltaE: 10})
	label := &fixtures.Item{Category: "apparel/topwear/tshirts", Attributes: map[vision.AttributeKind]string{vision.KindColor: "maroon"}}
	a := s.Answer(answer("apparel/topwear/tshirts", "burgundy")) // ΔE00 7.3 from maroon
	sc := s.Score(&a, label)
	fmt.Println(sc.Correct, sc.Group, sc.Right[0])
	// Output: true fashion true
}

// LiveAgreement counts agreement as pairs arrive, from any goroutine; a
// side without an answer is not a pair.
func ExampleLiveAgreement() {
	tx, err := vision.LoadTaxonomy("../taxonomy.yaml")
	if err != nil {
		panic(err)
	}
	live := compare.NewLiveAgreement(compare.NewScorer(tx, config.Report{}), "legacy", "holysheep")
	live.Add(answer("apparel/topwear/tshirts", "black"), answer("apparel/topwear/tshirts", "charcoal"))
	live.Add(answer("apparel/topwear/tshirts", "tan"), answer("apparel/topwear/shirts", "khaki"))
	live.Add(answer("accessories/watches", "silver"), nil)
	a := live.Snapshot()
	fmt.Printf("%d pairs, top-1 %d/%d [%.2f, %.2f]\n", a.Pairs, a.Top1.K, a.Top1.N, a.Top1.Lo, a.Top1.Hi)
	for _, k := range a.Attributes {
		fmt.Printf("%s %d/%d\n", k.Kind, k.Rate.K, k.Rate.N)
	}
	// Output:
	// 2 pairs, top-1 1/2 [0.09, 0.91]
	// color 1/2
}

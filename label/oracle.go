package label

import (
	"maps"

	"github.com/cutover/cutover/fixtures"
	"github.com/cutover/cutover/vision"
)

// OracleAnswer is the decision a labeller who knows the truth makes
// about it, the truth being fx's label of the same image (by SHA-256):
// the answer slot whose category is the truth, else neither with the
// truth; the fixture's attributes. An image the set does not hold is
// skipped. The demo labels its shadow run this way (its images are
// fixtures), through the same API a person's page uses.
func OracleAnswer(it Item, fx *fixtures.Set) LabelRequest {
	truth, ok := fx.BySHA(it.SHA256)
	if !ok {
		return LabelRequest{SHA256: it.SHA256, Decision: DecisionSkip}
	}
	req := LabelRequest{SHA256: it.SHA256, Decision: DecisionLabel, Choice: ChoiceNeither, Category: truth.Category}
	for _, a := range it.Answers {
		if a.Failed == "" && a.Pickable && a.Category == truth.Category {
			req.Choice = []string{"", Choice1, Choice2}[a.Slot]
			break
		}
	}
	if len(truth.Attributes) > 0 {
		req.Attributes = map[vision.AttributeKind]string{}
		maps.Copy(req.Attributes, truth.Attributes)
	}
	return req
}

package label

import (
	"context"
	"fmt"
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

// BotSummary counts what Bot did.
type BotSummary struct {
	Labelled, Skipped int
	// Answer1, Answer2 and Neither count the labels by where their
	// category came from.
	Answer1, Answer2, Neither int
}

// Bot decides every remaining item through the API with decide, in the
// server's order, until none is left (as the answer to its last decision
// says) or max decisions were sent (max 0: no limit). It is the scripted labeller of the demo; the page does the
// same calls.
func Bot(ctx context.Context, c *Client, decide func(Item) LabelRequest, max int) (BotSummary, error) {
	var s BotSummary
	for max <= 0 || s.Labelled+s.Skipped < max {
		nr, err := c.Next(ctx)
		if err != nil {
			return s, err
		}
		if nr.Done || nr.Item == nil {
			return s, nil
		}
		req := decide(*nr.Item)
		lr, err := c.Label(ctx, req)
		if err != nil {
			return s, fmt.Errorf("labelling %.12s…: %w", req.SHA256, err)
		}
		switch {
		case req.Decision == DecisionSkip:
			s.Skipped++
		case req.Choice == Choice1:
			s.Labelled++
			s.Answer1++
		case req.Choice == Choice2:
			s.Labelled++
			s.Answer2++
		default:
			s.Labelled++
			s.Neither++
		}
		// The last decision may stop a server run with --exit-when-done:
		// ask for nothing more.
		if lr.Progress.Remaining == 0 {
			return s, nil
		}
	}
	return s, nil
}

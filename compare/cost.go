package compare

import (
	"math"

	"github.com/cutover/cutover/compare/stats"
	"github.com/cutover/cutover/config"
	"github.com/cutover/cutover/record"
)

// ToUSD converts amount in currency to USD with cfg's fx table; ok is
// false for a currency without a rate. USD (or no currency) converts to
// itself; with a nil cfg only USD converts.
func ToUSD(cfg *config.Config, amount float64, currency string) (usd float64, ok bool) {
	if currency == "" || currency == "USD" {
		return amount, true
	}
	if cfg == nil {
		return 0, false
	}
	r, ok := cfg.FX[currency]
	return amount * r, ok
}

// TierCost is the price of calls calls in one month under tiered pricing,
// in p's currency, walking the tiers in order.
func TierCost(p config.Pricing, calls int64) float64 {
	var cost float64
	var from int64
	for _, t := range p.Tiers {
		to := t.UpTo
		if to == 0 || to > calls {
			to = calls
		}
		if to > from {
			cost += float64(to-from) / 1000 * t.Per1000
			from = to
		}
		if from >= calls {
			break
		}
	}
	return cost
}

// TokenCost is the price of one call's tokens in m's currency: uncached
// input, cached input and output tokens at their prices per million.
func TokenCost(m config.ModelPrice, input, cached, output int64) float64 {
	uncached := max(input-cached, 0)
	return (float64(uncached)*m.InputPerMillion + float64(cached)*m.CachedInputPerMillion +
		float64(output)*m.OutputPerMillion) / 1e6
}

// CallCost is the price of one call to p in its own currency: from the
// token usage for openai providers (input, cached, output tokens at the
// model's prices under models:), from the tiers at monthlyVolume calls a
// month otherwise (the average price of a call at that volume). ok is
// false when p has no price.
func CallCost(cfg *config.Config, p *config.Provider, input, cached, output, monthlyVolume int64) (amount float64, currency string, ok bool) {
	if cfg == nil || p == nil {
		return 0, "", false
	}
	if p.Format == config.FormatOpenAI {
		m := cfg.Models[p.Model]
		if m == nil {
			return 0, "", false
		}
		return TokenCost(*m, input, cached, output), m.Currency, true
	}
	if len(p.Pricing.Tiers) == 0 || monthlyVolume <= 0 {
		return 0, "", false
	}
	return TierCost(p.Pricing, monthlyVolume) / float64(monthlyVolume), p.Pricing.Currency, true
}

// costAcc accumulates the recorded prices of one provider's calls in USD.
type costAcc struct {
	n          int
	sum, sumSq float64
	spentUSD   float64
	unpriced   int
}

// add counts a call's recorded price. A call is priced when it has a
// cost, or when it was answered and names a currency (a free answer);
// an amount in a currency without an fx rate is counted as unpriced.
func (c *costAcc) add(cfg *config.Config, amount float64, currency string, ok bool) {
	if amount <= 0 && (!ok || currency == "") {
		return
	}
	usd, known := ToUSD(cfg, amount, currency)
	if !known {
		c.unpriced++
		return
	}
	c.spentUSD += usd
	c.n++
	c.sum += usd
	c.sumSq += usd * usd
}

// projectCost prices provider name at monthly volume vol: from its tiers
// (exact) when it has them and is not priced per token, from the mean
// recorded price of a call (with its 95 % interval) otherwise. nil when
// neither is known. correct/scored is its top-1 accuracy among answers,
// ok/calls its answered share, for the price of a correct tag.
func projectCost(cfg *config.Config, name string, vol int64, c *costAcc, correct, scored, ok, calls int) *Cost {
	var cp *config.Provider
	if cfg != nil {
		cp = cfg.Providers[name]
	}
	out := &Cost{MonthlyVolume: vol, SpentUSD: c.spentUSD}
	switch {
	case cp != nil && cp.Format != config.FormatOpenAI && len(cp.Pricing.Tiers) > 0:
		if vol <= 0 {
			return nil
		}
		out.Basis, out.Currency = "tiers", cp.Pricing.Currency
		for _, t := range cp.Pricing.Tiers {
			out.Tiers = append(out.Tiers, Tier{UpTo: t.UpTo, Per1000: t.Per1000})
		}
		monthly := TierCost(cp.Pricing, vol)
		usd, known := ToUSD(cfg, monthly, out.Currency)
		if !known {
			return nil
		}
		out.Per1000 = monthly / float64(vol) * 1000
		out.Per1000USD = usd / float64(vol) * 1000
		out.MonthlyUSD, out.MonthlyLoUSD, out.MonthlyHiUSD = usd, usd, usd
	case c.n > 0:
		out.Basis, out.Currency = "tokens", "USD"
		if cp != nil && cfg.Models[cp.Model] != nil {
			out.Currency = cfg.Models[cp.Model].Currency
		}
		mean, lo, hi := stats.MeanCI(c.n, c.sum, c.sumSq, stats.Z95)
		out.Per1000USD = mean * 1000
		out.Per1000 = out.Per1000USD
		if out.Currency != "USD" && cfg != nil {
			if rate := cfg.FX[out.Currency]; rate > 0 {
				out.Per1000 = out.Per1000USD / rate
			}
		}
		f := float64(vol)
		out.MonthlyUSD, out.MonthlyLoUSD, out.MonthlyHiUSD = mean*f, math.Max(0, lo*f), hi*f
	default:
		return nil
	}
	if scored > 0 && correct > 0 && calls > 0 {
		// Failed calls earn no tag: scale accuracy among answers by the
		// answered share.
		right := float64(correct) / float64(scored) * float64(ok) / float64(calls)
		out.PerCorrectTagUSD = out.Per1000USD / 1000 / right
	}
	return out
}

// PriceCall sets o's Cost and Currency for a call to p, as recorders do:
// a call is priced when it was answered, or when it reported token usage
// (a failed vision-LLM answer still costs its tokens); tiered prices are
// the average price of a call at config.DefaultMonthlyVolume. o is left
// unpriced when p has no price.
func PriceCall(cfg *config.Config, p *config.Provider, o *record.Observation) {
	answered := o.Code == "" && o.Status < 400
	if !answered && o.Usage == nil {
		return
	}
	var in, cached, out int64
	if u := o.Usage; u != nil {
		in, cached, out = u.InputTokens, u.CachedTokens, u.OutputTokens
	}
	if c, cur, ok := CallCost(cfg, p, in, cached, out, config.DefaultMonthlyVolume); ok {
		o.Cost, o.Currency = c, cur
	}
}

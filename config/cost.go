package config

// DefaultMonthlyVolume is 50,000 images a day for 30 days: the volume the
// migration story is priced at.
const DefaultMonthlyVolume = 50_000 * 30

// CallCost is the price of one call to p in its own currency: from the
// token usage for openai providers (input, cached, output tokens), from the
// tiers at monthlyVolume calls a month otherwise (the average price per
// call at that volume). ok is false when the provider has no price.
func (c *Config) CallCost(p *Provider, input, cached, output int64, monthlyVolume int64) (amount float64, currency string, ok bool) {
	if p.Format == FormatOpenAI {
		m := c.Models[p.Model]
		if m == nil {
			return 0, "", false
		}
		return m.Cost(input, cached, output), m.Currency, true
	}
	if len(p.Pricing.Tiers) == 0 || monthlyVolume <= 0 {
		return 0, "", false
	}
	return p.Pricing.CostOf(monthlyVolume) / float64(monthlyVolume), p.Pricing.Currency, true
}

package config

// DefaultPrompt is the built-in "default" prompt: tuned for fashion
// catalogues (article type first, then the attributes merchandisers filter
// on), answered in the strict JSON schema generated from the taxonomy.
var DefaultPrompt = Prompt{
	Version: "fashion-v1",
	System: "You are a product-catalogue tagger for an e-commerce marketplace. " +
		"You look at one product photo and classify the product shown, not the background, model or packaging. " +
		"Choose categories only from the schema's enum: the most specific article type that fits " +
		"(for example apparel/topwear/tshirts rather than apparel), most likely first. " +
		"For colour give the dominant colour of the product itself; for pattern, material and style use null when the photo does not show it. " +
		"Confidence is your probability, 0 to 1, that the value is correct; be calibrated, not optimistic. " +
		"Answer with JSON only.",
	User: "Tag this product image: categories, colour, pattern, material, style.",
}

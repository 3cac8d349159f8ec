-- The review queue holds one item per doubtful tagging, with the reasons it
-- is doubtful, and a tagging keeps the label of its source item, so that
-- `pipeline status` can set the share of products queued beside the share
-- the provider gets wrong.
--
-- tag_versions.review_reasons: the reason codes of the item this tagging
-- queued, comma-separated ('' when none); label_category: the category the
-- source labelled the image with (NULL without a label); label_correct: 1
-- when the provider's best category equals it, 0 when not.
-- review_items.reasons: a JSON list of {"code", …} for the reviewer.
-- Items already in the store, one per LOW tag, get the code tag_low.

-- +goose Up
ALTER TABLE tag_versions ADD COLUMN review_reasons TEXT NOT NULL DEFAULT '';
ALTER TABLE tag_versions ADD COLUMN label_category TEXT;
ALTER TABLE tag_versions ADD COLUMN label_correct INTEGER;
ALTER TABLE review_items ADD COLUMN reasons TEXT NOT NULL DEFAULT '[]';
UPDATE review_items SET reasons = '[{"code":"tag_low"}]';
CREATE INDEX review_version ON review_items (product_id, version);
UPDATE tag_versions SET review_reasons = 'tag_low'
	WHERE EXISTS (SELECT 1 FROM review_items r WHERE r.product_id = tag_versions.product_id AND r.version = tag_versions.version);

-- +goose Down
DROP INDEX review_version;
ALTER TABLE review_items DROP COLUMN reasons;
ALTER TABLE tag_versions DROP COLUMN label_correct;
ALTER TABLE tag_versions DROP COLUMN label_category;
ALTER TABLE tag_versions DROP COLUMN review_reasons;

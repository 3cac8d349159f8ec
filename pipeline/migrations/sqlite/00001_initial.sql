-- Products, tag versions, the event outbox, review items, async jobs and
-- dead letters.

-- +goose Up
CREATE TABLE products (
	id TEXT PRIMARY KEY,
	current_version INTEGER NOT NULL DEFAULT 0,
	updated_at TEXT NOT NULL
);
CREATE TABLE tag_versions (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	product_id TEXT NOT NULL REFERENCES products(id),
	version INTEGER NOT NULL,
	image_sha256 TEXT NOT NULL,
	rules_version TEXT NOT NULL,
	source TEXT NOT NULL,
	tags TEXT NOT NULL,
	idem_key TEXT UNIQUE,
	created_at TEXT NOT NULL,
	UNIQUE (product_id, version)
);
CREATE TABLE outbox (
	seq INTEGER PRIMARY KEY AUTOINCREMENT,
	event_id TEXT NOT NULL UNIQUE,
	payload TEXT NOT NULL,
	created_at TEXT NOT NULL,
	delivered_at TEXT
);
CREATE INDEX outbox_pending ON outbox (delivered_at, seq);
CREATE TABLE review_items (
	id INTEGER PRIMARY KEY AUTOINCREMENT,
	product_id TEXT NOT NULL,
	version INTEGER NOT NULL,
	image_sha256 TEXT NOT NULL,
	tag TEXT NOT NULL,
	status TEXT NOT NULL,
	correction TEXT,
	created_at TEXT NOT NULL,
	resolved_at TEXT
);
CREATE INDEX review_status ON review_items (status, id);
CREATE TABLE jobs (
	id TEXT PRIMARY KEY,
	product_id TEXT NOT NULL,
	status TEXT NOT NULL,
	error TEXT NOT NULL DEFAULT '',
	version INTEGER NOT NULL DEFAULT 0,
	created_at TEXT NOT NULL,
	updated_at TEXT NOT NULL
);
CREATE TABLE dead_letters (
	item_key TEXT PRIMARY KEY,
	product_id TEXT NOT NULL,
	source TEXT NOT NULL,
	attempts INTEGER NOT NULL,
	last_error TEXT NOT NULL,
	created_at TEXT NOT NULL
);

-- +goose Down
DROP TABLE dead_letters;
DROP TABLE jobs;
DROP TABLE review_items;
DROP TABLE outbox;
DROP TABLE tag_versions;
DROP TABLE products;

BEGIN TRANSACTION;
CREATE TABLE alembic_version (
	version_num VARCHAR(32) NOT NULL, 
	CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num)
);
INSERT INTO "alembic_version" VALUES('0011');
CREATE TABLE alert_deliveries (
	destination_id VARCHAR(40) NOT NULL, 
	kind VARCHAR(32) NOT NULL, 
	subject VARCHAR(40) NOT NULL, 
	run_id VARCHAR(40) NOT NULL, 
	created_at DATETIME NOT NULL, 
	next_attempt_at DATETIME, 
	attempts INTEGER NOT NULL, 
	delivered_at DATETIME, 
	last_error TEXT, 
	PRIMARY KEY (destination_id, kind, subject), 
	FOREIGN KEY(destination_id) REFERENCES alert_destinations (id) ON DELETE CASCADE
);
CREATE TABLE alert_destinations (
	id VARCHAR(40) NOT NULL, 
	tenant VARCHAR(64) NOT NULL, 
	type VARCHAR(16) NOT NULL, 
	url VARCHAR(2000), 
	secret VARCHAR(100), 
	workflow VARCHAR(100), 
	kinds JSON NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE api_keys (
	id VARCHAR(32) NOT NULL, 
	tenant VARCHAR(64) NOT NULL, 
	name VARCHAR(100) NOT NULL, 
	secret_hash VARCHAR(64) NOT NULL, 
	created_at DATETIME NOT NULL, 
	revoked_at DATETIME, role VARCHAR(16) DEFAULT 'tenant' NOT NULL, 
	PRIMARY KEY (id)
);
INSERT INTO "api_keys" VALUES('2aa37e737d23','default','head key','92f36b5c906cdc8d7dd9726f1d8b6f0fcd315377541d7a98215ab4349ee873e8','2026-12-03 17:23:18.074837',NULL,'tenant');
CREATE TABLE leases (
	name VARCHAR(100) NOT NULL, 
	holder VARCHAR(100) NOT NULL, 
	expires_at DATETIME NOT NULL, 
	PRIMARY KEY (name)
);
INSERT INTO "leases" VALUES('dispatcher','vm:30322:53be53','2026-12-03 17:23:17.093692');
CREATE TABLE notifications (
	tenant VARCHAR(64) NOT NULL, 
	order_id VARCHAR(100) NOT NULL, 
	outcome VARCHAR(16) NOT NULL, 
	payload JSON NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	sent_at DATETIME, 
	PRIMARY KEY (tenant, order_id, outcome)
);
CREATE TABLE products (
	tenant VARCHAR(64) NOT NULL, 
	product_id VARCHAR(100) NOT NULL, 
	name VARCHAR(200) NOT NULL, 
	price_cents INTEGER NOT NULL, 
	stock INTEGER NOT NULL, 
	PRIMARY KEY (tenant, product_id)
);
INSERT INTO "products" VALUES('default','sku-book','Designing Data-Intensive Applications',4250,100);
INSERT INTO "products" VALUES('default','sku-mug','Durable mug',990,250);
INSERT INTO "products" VALUES('default','sku-tee','longhaul T-shirt',1999,50);
CREATE TABLE reservations (
	op_id VARCHAR(400) NOT NULL, 
	tenant VARCHAR(64) NOT NULL, 
	order_id VARCHAR(100) NOT NULL, 
	lines JSON NOT NULL, 
	state VARCHAR(16) NOT NULL, 
	created_at DATETIME NOT NULL, 
	released_at DATETIME, 
	PRIMARY KEY (op_id)
);
CREATE TABLE run_logs (
	id INTEGER NOT NULL, 
	run_id VARCHAR(40) NOT NULL, 
	at DATETIME NOT NULL, 
	level VARCHAR(16) NOT NULL, 
	message TEXT NOT NULL, 
	op_id VARCHAR(200) NOT NULL, 
	PRIMARY KEY (id), 
	FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE, 
	CONSTRAINT uq_run_logs_op UNIQUE (run_id, op_id)
);
INSERT INTO "run_logs" VALUES(1,'run_039a62fce75dcaaa00993a2a','2026-12-03 17:23:17.558170','info','running (attempt 1)','fd00e187-7400-4e5a-9eb2-8d24cc050b36/1');
INSERT INTO "run_logs" VALUES(2,'run_039a62fce75dcaaa00993a2a','2026-12-03 17:23:17.561770','info','audited greeting for Ada','fd00e187-7400-4e5a-9eb2-8d24cc050b36/2');
INSERT INTO "run_logs" VALUES(3,'run_72d3c9e9d2d068173eb1df56','2026-12-03 17:23:17.576877','info','running (attempt 1)','e0230d66-b0dc-42b1-9845-207375204e74/1');
INSERT INTO "run_logs" VALUES(4,'run_72d3c9e9d2d068173eb1df56','2026-12-03 17:23:17.577509','info','50% composing greeting','e0230d66-b0dc-42b1-9845-207375204e74/2');
INSERT INTO "run_logs" VALUES(5,'run_039a62fce75dcaaa00993a2a','2026-12-03 17:23:17.585945','info','completed','fd00e187-7400-4e5a-9eb2-8d24cc050b36/3');
INSERT INTO "run_logs" VALUES(6,'run_72d3c9e9d2d068173eb1df56','2026-12-03 17:23:17.605411','info','completed','e0230d66-b0dc-42b1-9845-207375204e74/3');
INSERT INTO "run_logs" VALUES(7,'run_b8c8895b64cad7259efb6178','2026-12-03 17:23:17.791740','info','running (attempt 1)','1292da62-b648-41f6-be43-018362a70418/1');
INSERT INTO "run_logs" VALUES(8,'run_b8c8895b64cad7259efb6178','2026-12-03 17:23:17.792429','info','10% waiting for a review of d-head','1292da62-b648-41f6-be43-018362a70418/2');
INSERT INTO "run_logs" VALUES(9,'run_b8c8895b64cad7259efb6178','2026-12-03 17:23:17.793291','info','waiting for test.review (token wp_c7ccba573d2e6edebd061847) until 2026-12-04 17:23:17 UTC','1292da62-b648-41f6-be43-018362a70418/3');
INSERT INTO "run_logs" VALUES(10,'run_b8c8895b64cad7259efb6178','2026-12-03 17:23:17.850999','info','waitpoint wp_c7ccba573d2e6edebd061847 (test.review) completed by test','1292da62-b648-41f6-be43-018362a70418/4');
INSERT INTO "run_logs" VALUES(11,'run_b8c8895b64cad7259efb6178','2026-12-03 17:23:17.861993','info','completed','1292da62-b648-41f6-be43-018362a70418/5');
INSERT INTO "run_logs" VALUES(12,'run_210e18ff3a7db0a02a01a4c2','2026-12-03 17:23:18.040724','info','running (attempt 1)','75baeb82-4cd0-4db9-9fa9-038d2989e24c/1');
INSERT INTO "run_logs" VALUES(13,'run_210e18ff3a7db0a02a01a4c2','2026-12-03 17:23:18.041691','info','10% waiting for a review of d-open','75baeb82-4cd0-4db9-9fa9-038d2989e24c/2');
INSERT INTO "run_logs" VALUES(14,'run_210e18ff3a7db0a02a01a4c2','2026-12-03 17:23:18.042220','info','waiting for test.review (token wp_5d3f1087c613d2954e9b8567) until 2026-12-04 17:23:27 UTC','75baeb82-4cd0-4db9-9fa9-038d2989e24c/3');
CREATE TABLE run_slots (
	run_id VARCHAR(40) NOT NULL, 
	scope VARCHAR(300) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	"limit" INTEGER NOT NULL, 
	period_ms INTEGER, 
	free_at DATETIME, 
	PRIMARY KEY (run_id, scope), 
	FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
INSERT INTO "run_slots" VALUES('run_a57596a338641c09a98aa92c','solo/default/key=k','concurrency',1,NULL,NULL);
CREATE TABLE run_steps (
	run_id VARCHAR(40) NOT NULL, 
	"group" VARCHAR(50) NOT NULL, 
	step VARCHAR(100) NOT NULL, 
	percent INTEGER NOT NULL, 
	detail VARCHAR(200), 
	PRIMARY KEY (run_id, "group", step), 
	FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
CREATE TABLE run_tags (
	run_id VARCHAR(40) NOT NULL, 
	tag VARCHAR(100) NOT NULL, 
	PRIMARY KEY (run_id, tag), 
	FOREIGN KEY(run_id) REFERENCES runs (id) ON DELETE CASCADE
);
INSERT INTO "run_tags" VALUES('run_72d3c9e9d2d068173eb1df56','vip');
INSERT INTO "run_tags" VALUES('run_72d3c9e9d2d068173eb1df56','head');
INSERT INTO "run_tags" VALUES('run_039a62fce75dcaaa00993a2a','vip');
INSERT INTO "run_tags" VALUES('run_039a62fce75dcaaa00993a2a','head');
CREATE TABLE "runs" (
	id VARCHAR(40) NOT NULL, 
	tenant VARCHAR(64) NOT NULL, 
	workflow VARCHAR(100) NOT NULL, 
	workflow_id VARCHAR(400) NOT NULL, 
	event VARCHAR(100) NOT NULL, 
	event_id VARCHAR(200) NOT NULL, 
	business_key VARCHAR(200), 
	replay_of VARCHAR(40), 
	status VARCHAR(16) NOT NULL, 
	progress INTEGER NOT NULL, 
	stage VARCHAR(200), 
	input JSON NOT NULL, 
	output JSON, 
	error TEXT, 
	attempts INTEGER NOT NULL, 
	created_at DATETIME NOT NULL, 
	started_at DATETIME, 
	finished_at DATETIME, 
	updated_at DATETIME NOT NULL, 
	queue VARCHAR(100), 
	priority INTEGER DEFAULT '3' NOT NULL, 
	not_before DATETIME, 
	expires_at DATETIME, 
	gate VARCHAR(300), 
	claimed_at DATETIME, 
	dispatched_at DATETIME, 
	cancel_requested_at DATETIME, 
	traceparent VARCHAR(100), 
	generation INTEGER DEFAULT '1' NOT NULL, 
	idempotency_key_expires_at DATETIME, run_metadata JSON, cancel_reason VARCHAR(600), 
	PRIMARY KEY (id), 
	CONSTRAINT uq_runs_event UNIQUE (tenant, event, event_id, workflow, generation), 
	UNIQUE (workflow_id)
);
INSERT INTO "runs" VALUES('run_72d3c9e9d2d068173eb1df56','default','hello','hello/default/head-hello','hello','head-hello',NULL,NULL,'completed',100,'completed','{"name": "Ada", "greeting": "Hello", "wait_seconds": 0.0}','{"message": "Hello, Ada!"}',NULL,1,'2026-12-03 17:23:17.284317','2026-12-03 17:23:17.576877','2026-12-03 17:23:17.605411','2026-12-03 17:23:17.605411','hello',3,NULL,NULL,NULL,'2026-12-03 17:23:17.309828','2026-12-03 17:23:17.543285',NULL,NULL,1,NULL,NULL,NULL);
INSERT INTO "runs" VALUES('run_039a62fce75dcaaa00993a2a','default','hello-audit','hello-audit/default/head-hello','hello','head-hello',NULL,NULL,'completed',100,'completed','{"name": "Ada", "greeting": "Hello", "wait_seconds": 0.0}','"audited Ada"',NULL,1,'2026-12-03 17:23:17.284317','2026-12-03 17:23:17.558170','2026-12-03 17:23:17.585945','2026-12-03 17:23:17.585945','hello-audit',3,NULL,NULL,NULL,'2026-12-03 17:23:17.309828','2026-12-03 17:23:17.543285',NULL,NULL,1,NULL,NULL,NULL);
INSERT INTO "runs" VALUES('run_b8c8895b64cad7259efb6178','default','review','review/default/head-review','review.asked','head-review','d-head',NULL,'completed',100,'completed','{"document_id": "d-head", "timeout_seconds": 86400.0}','{"rounds": [{"token": "wp_c7ccba573d2e6edebd061847", "status": "completed", "by": "test", "verdict": {"approved": true, "reason": null}}]}',NULL,1,'2026-12-03 17:23:17.686267','2026-12-03 17:23:17.791740','2026-12-03 17:23:17.861993','2026-12-03 17:23:17.861993','review',3,NULL,NULL,NULL,'2026-12-03 17:23:17.690127','2026-12-03 17:23:17.789939',NULL,NULL,1,NULL,NULL,NULL);
INSERT INTO "runs" VALUES('run_210e18ff3a7db0a02a01a4c2','default','review','review/default/head-open','review.asked','head-open','d-open',NULL,'running',10,'waiting for a review of d-open','{"document_id": "d-open", "timeout_seconds": 86400.0}','null',NULL,1,'2026-12-03 17:23:17.928548','2026-12-03 17:23:18.040724',NULL,'2026-12-03 17:23:18.042220','review',3,NULL,NULL,NULL,'2026-12-03 17:23:17.930574','2026-12-03 17:23:18.036942',NULL,NULL,1,NULL,NULL,NULL);
INSERT INTO "runs" VALUES('run_a57596a338641c09a98aa92c','default','limited-work','limited-work/default/head-solo','solo.work','head-solo',NULL,NULL,'pending',0,NULL,'{"key": "k", "seconds": 1.0}','null',NULL,0,'2026-12-03 17:23:18.067756',NULL,NULL,'2026-12-03 17:23:18.067756','solo',3,'2026-12-03 18:23:18.067756',NULL,NULL,NULL,NULL,NULL,NULL,1,NULL,NULL,NULL);
CREATE TABLE tickets (
	tenant VARCHAR(100) NOT NULL, 
	ticket_id VARCHAR(100) NOT NULL, 
	run_id VARCHAR(64) NOT NULL, 
	summary VARCHAR(300) NOT NULL, 
	words JSON NOT NULL, 
	category VARCHAR(20) NOT NULL, 
	urgency VARCHAR(20) NOT NULL, 
	team VARCHAR(50) NOT NULL, 
	result JSON NOT NULL, 
	duplicate_of VARCHAR(100), 
	similarity FLOAT, 
	status VARCHAR(20) NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (tenant, ticket_id)
);
CREATE TABLE video_digests (
	run_id VARCHAR(64) NOT NULL, 
	tenant VARCHAR(64) NOT NULL, 
	user_id VARCHAR(100) NOT NULL, 
	videos JSON NOT NULL, 
	message TEXT NOT NULL, 
	created_at DATETIME NOT NULL, 
	PRIMARY KEY (run_id)
);
CREATE TABLE videos (
	tenant VARCHAR(64) NOT NULL, 
	video_id VARCHAR(100) NOT NULL, 
	user_id VARCHAR(100) NOT NULL, 
	run_id VARCHAR(40) NOT NULL, 
	result JSON NOT NULL, 
	processed_at DATETIME NOT NULL, 
	archived_at DATETIME, 
	PRIMARY KEY (tenant, video_id)
);
CREATE TABLE waitpoints (
	id VARCHAR(40) NOT NULL, 
	tenant VARCHAR(64) NOT NULL, 
	run_id VARCHAR(40) NOT NULL, 
	workflow_id VARCHAR(400) NOT NULL, 
	kind VARCHAR(100) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	description TEXT, 
	tags JSON NOT NULL, 
	timeout_at DATETIME NOT NULL, 
	created_at DATETIME NOT NULL, 
	completed_at DATETIME, 
	completed_by VARCHAR(100), 
	output JSON, 
	delivered_at DATETIME, 
	PRIMARY KEY (id)
);
INSERT INTO "waitpoints" VALUES('wp_c7ccba573d2e6edebd061847','default','run_b8c8895b64cad7259efb6178','review/default/head-review','test.review','completed','review d-head','["doc:d-head"]','2026-12-04 17:23:17.700000','2026-12-03 17:23:17.700000','2026-12-03 17:23:17.822365','test','{"approved": true, "reason": null}','2026-12-03 17:23:17.831403');
INSERT INTO "waitpoints" VALUES('wp_5d3f1087c613d2954e9b8567','default','run_210e18ff3a7db0a02a01a4c2','review/default/head-open','test.review','waiting','review d-open','["doc:d-open"]','2026-12-04 17:23:27.467000','2026-12-03 17:23:27.467000',NULL,NULL,'null',NULL);
CREATE TABLE webhook_dead_letters (
	id VARCHAR(40) NOT NULL, 
	source VARCHAR(50) NOT NULL, 
	event_id VARCHAR(200), 
	body TEXT NOT NULL, 
	reason TEXT NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	attempts INTEGER NOT NULL, 
	received_at DATETIME NOT NULL, 
	updated_at DATETIME NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX ix_api_keys_tenant ON api_keys (tenant);
CREATE INDEX ix_reservations_order_id ON reservations (order_id);
CREATE INDEX ix_videos_processed_at ON videos (processed_at);
CREATE INDEX ix_run_logs_run_id ON run_logs (run_id);
CREATE INDEX ix_run_tags_tag ON run_tags (tag);
CREATE INDEX ix_webhook_dead_letters_status ON webhook_dead_letters (status);
CREATE INDEX ix_tickets_open ON tickets (tenant, status, created_at);
CREATE INDEX ix_video_digests_user ON video_digests (tenant, user_id, created_at);
CREATE INDEX ix_run_slots_rate ON run_slots (kind, free_at);
CREATE INDEX ix_run_slots_scope ON run_slots (scope);
CREATE INDEX ix_runs_queue ON runs (status, priority, created_at);
CREATE INDEX ix_runs_listing ON runs (tenant, created_at, id);
CREATE INDEX ix_runs_key ON runs (tenant, workflow, business_key);
CREATE INDEX ix_runs_replay_of ON runs (replay_of);
CREATE UNIQUE INDEX uq_runs_gate ON runs (gate);
CREATE INDEX ix_runs_status ON runs (status);
CREATE INDEX ix_waitpoints_listing ON waitpoints (tenant, created_at, id);
CREATE INDEX ix_waitpoints_run_id ON waitpoints (run_id);
CREATE INDEX ix_waitpoints_undelivered ON waitpoints (status, delivered_at);
CREATE INDEX ix_alert_destinations_tenant ON alert_destinations (tenant);
CREATE INDEX ix_alert_deliveries_due ON alert_deliveries (delivered_at, next_attempt_at);
CREATE INDEX ix_alert_deliveries_run_id ON alert_deliveries (run_id);
CREATE INDEX ix_runs_overview ON runs (tenant, created_at, status, workflow, started_at, finished_at);
CREATE INDEX ix_runs_updated ON runs (updated_at, id);
COMMIT;

--
-- PostgreSQL database dump
--


-- Dumped from database version 15.18 (Debian 15.18-0+deb12u1)
-- Dumped by pg_dump version 15.18 (Debian 15.18-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: alembic_version; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alembic_version (
    version_num character varying(32) NOT NULL
);


--
-- Name: alert_deliveries; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alert_deliveries (
    destination_id character varying(40) NOT NULL,
    kind character varying(32) NOT NULL,
    subject character varying(40) NOT NULL,
    run_id character varying(40) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    next_attempt_at timestamp with time zone,
    attempts integer NOT NULL,
    delivered_at timestamp with time zone,
    last_error text
);


--
-- Name: alert_destinations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.alert_destinations (
    id character varying(40) NOT NULL,
    tenant character varying(64) NOT NULL,
    type character varying(16) NOT NULL,
    url character varying(2000),
    secret character varying(100),
    workflow character varying(100),
    kinds json NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: api_keys; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.api_keys (
    id character varying(32) NOT NULL,
    tenant character varying(64) NOT NULL,
    name character varying(100) NOT NULL,
    secret_hash character varying(64) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    revoked_at timestamp with time zone,
    role character varying(16) DEFAULT 'tenant'::character varying NOT NULL
);


--
-- Name: leases; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.leases (
    name character varying(100) NOT NULL,
    holder character varying(100) NOT NULL,
    expires_at timestamp with time zone NOT NULL
);


--
-- Name: notifications; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.notifications (
    tenant character varying(64) NOT NULL,
    order_id character varying(100) NOT NULL,
    outcome character varying(16) NOT NULL,
    payload json NOT NULL,
    state character varying(16) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    sent_at timestamp with time zone
);


--
-- Name: products; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.products (
    tenant character varying(64) NOT NULL,
    product_id character varying(100) NOT NULL,
    name character varying(200) NOT NULL,
    price_cents integer NOT NULL,
    stock integer NOT NULL
);


--
-- Name: reservations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.reservations (
    op_id character varying(400) NOT NULL,
    tenant character varying(64) NOT NULL,
    order_id character varying(100) NOT NULL,
    lines json NOT NULL,
    state character varying(16) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    released_at timestamp with time zone
);


--
-- Name: run_logs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.run_logs (
    id integer NOT NULL,
    run_id character varying(40) NOT NULL,
    at timestamp with time zone NOT NULL,
    level character varying(16) NOT NULL,
    message text NOT NULL,
    op_id character varying(200) NOT NULL
);


--
-- Name: run_logs_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.run_logs_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: run_logs_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.run_logs_id_seq OWNED BY public.run_logs.id;


--
-- Name: run_slots; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.run_slots (
    run_id character varying(40) NOT NULL,
    scope character varying(300) NOT NULL,
    kind character varying(16) NOT NULL,
    "limit" integer NOT NULL,
    period_ms bigint,
    free_at timestamp with time zone
);


--
-- Name: run_steps; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.run_steps (
    run_id character varying(40) NOT NULL,
    "group" character varying(50) NOT NULL,
    step character varying(100) NOT NULL,
    percent integer NOT NULL,
    detail character varying(200)
);


--
-- Name: run_tags; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.run_tags (
    run_id character varying(40) NOT NULL,
    tag character varying(100) NOT NULL
);


--
-- Name: runs; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.runs (
    id character varying(40) NOT NULL,
    tenant character varying(64) NOT NULL,
    workflow character varying(100) NOT NULL,
    workflow_id character varying(400) NOT NULL,
    event character varying(100) NOT NULL,
    event_id character varying(200) NOT NULL,
    business_key character varying(200),
    replay_of character varying(40),
    status character varying(16) NOT NULL,
    progress integer NOT NULL,
    stage character varying(200),
    input json NOT NULL,
    output json,
    error text,
    attempts integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    started_at timestamp with time zone,
    finished_at timestamp with time zone,
    updated_at timestamp with time zone NOT NULL,
    queue character varying(100),
    priority integer DEFAULT 3 NOT NULL,
    not_before timestamp with time zone,
    expires_at timestamp with time zone,
    gate character varying(300),
    claimed_at timestamp with time zone,
    dispatched_at timestamp with time zone,
    cancel_requested_at timestamp with time zone,
    traceparent character varying(100),
    generation integer DEFAULT 1 NOT NULL,
    idempotency_key_expires_at timestamp with time zone,
    run_metadata json,
    cancel_reason character varying(600)
);


--
-- Name: tickets; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.tickets (
    tenant character varying(100) NOT NULL,
    ticket_id character varying(100) NOT NULL,
    run_id character varying(64) NOT NULL,
    summary character varying(300) NOT NULL,
    words json NOT NULL,
    category character varying(20) NOT NULL,
    urgency character varying(20) NOT NULL,
    team character varying(50) NOT NULL,
    result json NOT NULL,
    duplicate_of character varying(100),
    similarity double precision,
    status character varying(20) NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: video_digests; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.video_digests (
    run_id character varying(64) NOT NULL,
    tenant character varying(64) NOT NULL,
    user_id character varying(100) NOT NULL,
    videos json NOT NULL,
    message text NOT NULL,
    created_at timestamp with time zone NOT NULL
);


--
-- Name: videos; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.videos (
    tenant character varying(64) NOT NULL,
    video_id character varying(100) NOT NULL,
    user_id character varying(100) NOT NULL,
    run_id character varying(40) NOT NULL,
    result json NOT NULL,
    processed_at timestamp with time zone NOT NULL,
    archived_at timestamp with time zone
);


--
-- Name: waitpoints; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.waitpoints (
    id character varying(40) NOT NULL,
    tenant character varying(64) NOT NULL,
    run_id character varying(40) NOT NULL,
    workflow_id character varying(400) NOT NULL,
    kind character varying(100) NOT NULL,
    status character varying(16) NOT NULL,
    description text,
    tags json NOT NULL,
    timeout_at timestamp with time zone NOT NULL,
    created_at timestamp with time zone NOT NULL,
    completed_at timestamp with time zone,
    completed_by character varying(100),
    output json,
    delivered_at timestamp with time zone
);


--
-- Name: webhook_dead_letters; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.webhook_dead_letters (
    id character varying(40) NOT NULL,
    source character varying(50) NOT NULL,
    event_id character varying(200),
    body text NOT NULL,
    reason text NOT NULL,
    status character varying(16) NOT NULL,
    attempts integer NOT NULL,
    received_at timestamp with time zone NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: run_logs id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run_logs ALTER COLUMN id SET DEFAULT nextval('public.run_logs_id_seq'::regclass);


--
-- Data for Name: alembic_version; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.alembic_version VALUES ('0011');


--
-- Data for Name: alert_deliveries; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: alert_destinations; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: api_keys; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.api_keys VALUES ('5b8ab987935c', 'default', 'head key', '7e1ed9855c00854f389963470c5558a412458000a2197fed81e28d6650c59ea2', '2026-12-03 17:23:21.847534+00', NULL, 'tenant');


--
-- Data for Name: leases; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: notifications; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: products; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.products VALUES ('default', 'sku-book', 'Designing Data-Intensive Applications', 4250, 100);
INSERT INTO public.products VALUES ('default', 'sku-mug', 'Durable mug', 990, 250);
INSERT INTO public.products VALUES ('default', 'sku-tee', 'longhaul T-shirt', 1999, 50);


--
-- Data for Name: reservations; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: run_logs; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.run_logs VALUES (1, 'run_039a62fce75dcaaa00993a2a', '2026-12-03 17:23:21.26868+00', 'info', 'running (attempt 1)', '31832d7f-52f1-4054-9ac1-fb10fb4ad949/1');
INSERT INTO public.run_logs VALUES (2, 'run_039a62fce75dcaaa00993a2a', '2026-12-03 17:23:21.287696+00', 'info', 'audited greeting for Ada', '31832d7f-52f1-4054-9ac1-fb10fb4ad949/2');
INSERT INTO public.run_logs VALUES (3, 'run_72d3c9e9d2d068173eb1df56', '2026-12-03 17:23:21.301828+00', 'info', 'running (attempt 1)', '94f2628d-b222-45f7-ad62-9d901b2cb7b5/1');
INSERT INTO public.run_logs VALUES (4, 'run_72d3c9e9d2d068173eb1df56', '2026-12-03 17:23:21.311903+00', 'info', '50% composing greeting', '94f2628d-b222-45f7-ad62-9d901b2cb7b5/2');
INSERT INTO public.run_logs VALUES (5, 'run_039a62fce75dcaaa00993a2a', '2026-12-03 17:23:21.318805+00', 'info', 'completed', '31832d7f-52f1-4054-9ac1-fb10fb4ad949/3');
INSERT INTO public.run_logs VALUES (6, 'run_72d3c9e9d2d068173eb1df56', '2026-12-03 17:23:21.341975+00', 'info', 'completed', '94f2628d-b222-45f7-ad62-9d901b2cb7b5/3');
INSERT INTO public.run_logs VALUES (7, 'run_b8c8895b64cad7259efb6178', '2026-12-03 17:23:21.540804+00', 'info', 'running (attempt 1)', 'd99913d3-c6d4-409a-ba6a-ea149a4150a6/1');
INSERT INTO public.run_logs VALUES (8, 'run_b8c8895b64cad7259efb6178', '2026-12-03 17:23:21.544846+00', 'info', '10% waiting for a review of d-head', 'd99913d3-c6d4-409a-ba6a-ea149a4150a6/2');
INSERT INTO public.run_logs VALUES (9, 'run_b8c8895b64cad7259efb6178', '2026-12-03 17:23:21.548723+00', 'info', 'waiting for test.review (token wp_e65958d3e9865fd689320900) until 2026-12-04 17:23:21 UTC', 'd99913d3-c6d4-409a-ba6a-ea149a4150a6/3');
INSERT INTO public.run_logs VALUES (10, 'run_b8c8895b64cad7259efb6178', '2026-12-03 17:23:21.630605+00', 'info', 'waitpoint wp_e65958d3e9865fd689320900 (test.review) completed by test', 'd99913d3-c6d4-409a-ba6a-ea149a4150a6/4');
INSERT INTO public.run_logs VALUES (11, 'run_b8c8895b64cad7259efb6178', '2026-12-03 17:23:21.649915+00', 'info', 'completed', 'd99913d3-c6d4-409a-ba6a-ea149a4150a6/5');
INSERT INTO public.run_logs VALUES (12, 'run_210e18ff3a7db0a02a01a4c2', '2026-12-03 17:23:21.799507+00', 'info', 'running (attempt 1)', '074c6c6b-b008-4de4-ad4b-eb7c5761fb79/1');
INSERT INTO public.run_logs VALUES (13, 'run_210e18ff3a7db0a02a01a4c2', '2026-12-03 17:23:21.8029+00', 'info', '10% waiting for a review of d-open', '074c6c6b-b008-4de4-ad4b-eb7c5761fb79/2');
INSERT INTO public.run_logs VALUES (14, 'run_210e18ff3a7db0a02a01a4c2', '2026-12-03 17:23:21.812962+00', 'info', 'waiting for test.review (token wp_b752fdb8db43fd1f12d3db70) until 2026-12-04 17:23:31 UTC', '074c6c6b-b008-4de4-ad4b-eb7c5761fb79/3');


--
-- Data for Name: run_slots; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.run_slots VALUES ('run_a57596a338641c09a98aa92c', 'solo/default/key=k', 'concurrency', 1, NULL, NULL);


--
-- Data for Name: run_steps; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: run_tags; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.run_tags VALUES ('run_72d3c9e9d2d068173eb1df56', 'vip');
INSERT INTO public.run_tags VALUES ('run_72d3c9e9d2d068173eb1df56', 'head');
INSERT INTO public.run_tags VALUES ('run_039a62fce75dcaaa00993a2a', 'vip');
INSERT INTO public.run_tags VALUES ('run_039a62fce75dcaaa00993a2a', 'head');


--
-- Data for Name: runs; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.runs VALUES ('run_039a62fce75dcaaa00993a2a', 'default', 'hello-audit', 'hello-audit/default/head-hello', 'hello', 'head-hello', NULL, NULL, 'completed', 100, 'completed', '{"name": "Ada", "greeting": "Hello", "wait_seconds": 0.0}', '"audited Ada"', NULL, 1, '2026-12-03 17:23:20.991852+00', '2026-12-03 17:23:21.26868+00', '2026-12-03 17:23:21.318805+00', '2026-12-03 17:23:21.318805+00', 'hello-audit', 3, NULL, NULL, NULL, '2026-12-03 17:23:21.012709+00', '2026-12-03 17:23:21.101724+00', NULL, NULL, 1, NULL, NULL, NULL);
INSERT INTO public.runs VALUES ('run_72d3c9e9d2d068173eb1df56', 'default', 'hello', 'hello/default/head-hello', 'hello', 'head-hello', NULL, NULL, 'completed', 100, 'completed', '{"name": "Ada", "greeting": "Hello", "wait_seconds": 0.0}', '{"message": "Hello, Ada!"}', NULL, 1, '2026-12-03 17:23:20.991852+00', '2026-12-03 17:23:21.301828+00', '2026-12-03 17:23:21.341975+00', '2026-12-03 17:23:21.341975+00', 'hello', 3, NULL, NULL, NULL, '2026-12-03 17:23:21.012709+00', '2026-12-03 17:23:21.101724+00', NULL, NULL, 1, NULL, NULL, NULL);
INSERT INTO public.runs VALUES ('run_b8c8895b64cad7259efb6178', 'default', 'review', 'review/default/head-review', 'review.asked', 'head-review', 'd-head', NULL, 'completed', 100, 'completed', '{"document_id": "d-head", "timeout_seconds": 86400.0}', '{"rounds": [{"token": "wp_e65958d3e9865fd689320900", "status": "completed", "by": "test", "verdict": {"approved": true, "reason": null}}]}', NULL, 1, '2026-12-03 17:23:21.420912+00', '2026-12-03 17:23:21.540804+00', '2026-12-03 17:23:21.649915+00', '2026-12-03 17:23:21.649915+00', 'review', 3, NULL, NULL, NULL, '2026-12-03 17:23:21.423221+00', '2026-12-03 17:23:21.528137+00', NULL, NULL, 1, NULL, NULL, NULL);
INSERT INTO public.runs VALUES ('run_210e18ff3a7db0a02a01a4c2', 'default', 'review', 'review/default/head-open', 'review.asked', 'head-open', 'd-open', NULL, 'running', 10, 'waiting for a review of d-open', '{"document_id": "d-open", "timeout_seconds": 86400.0}', 'null', NULL, 1, '2026-12-03 17:23:21.679886+00', '2026-12-03 17:23:21.799507+00', NULL, '2026-12-03 17:23:21.812962+00', 'review', 3, NULL, NULL, NULL, '2026-12-03 17:23:21.681679+00', '2026-12-03 17:23:21.701336+00', NULL, NULL, 1, NULL, NULL, NULL);
INSERT INTO public.runs VALUES ('run_a57596a338641c09a98aa92c', 'default', 'limited-work', 'limited-work/default/head-solo', 'solo.work', 'head-solo', NULL, NULL, 'pending', 0, NULL, '{"key": "k", "seconds": 1.0}', 'null', NULL, 0, '2026-12-03 17:23:21.829159+00', NULL, NULL, '2026-12-03 17:23:21.829159+00', 'solo', 3, '2026-12-03 18:23:21.829159+00', NULL, NULL, NULL, NULL, NULL, NULL, 1, NULL, NULL, NULL);


--
-- Data for Name: tickets; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: video_digests; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: videos; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Data for Name: waitpoints; Type: TABLE DATA; Schema: public; Owner: -
--

INSERT INTO public.waitpoints VALUES ('wp_e65958d3e9865fd689320900', 'default', 'run_b8c8895b64cad7259efb6178', 'review/default/head-review', 'test.review', 'completed', 'review d-head', '["doc:d-head"]', '2026-12-04 17:23:21.442+00', '2026-12-03 17:23:21.442+00', '2026-12-03 17:23:21.585042+00', 'test', '{"approved": true, "reason": null}', '2026-12-03 17:23:21.618104+00');
INSERT INTO public.waitpoints VALUES ('wp_b752fdb8db43fd1f12d3db70', 'default', 'run_210e18ff3a7db0a02a01a4c2', 'review/default/head-open', 'test.review', 'waiting', 'review d-open', '["doc:d-open"]', '2026-12-04 17:23:31.133+00', '2026-12-03 17:23:31.133+00', NULL, NULL, 'null', NULL);


--
-- Data for Name: webhook_dead_letters; Type: TABLE DATA; Schema: public; Owner: -
--



--
-- Name: run_logs_id_seq; Type: SEQUENCE SET; Schema: public; Owner: -
--

SELECT pg_catalog.setval('public.run_logs_id_seq', 14, true);


--
-- Name: alembic_version alembic_version_pkc; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alembic_version
    ADD CONSTRAINT alembic_version_pkc PRIMARY KEY (version_num);


--
-- Name: alert_deliveries alert_deliveries_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_deliveries
    ADD CONSTRAINT alert_deliveries_pkey PRIMARY KEY (destination_id, kind, subject);


--
-- Name: alert_destinations alert_destinations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_destinations
    ADD CONSTRAINT alert_destinations_pkey PRIMARY KEY (id);


--
-- Name: api_keys api_keys_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);


--
-- Name: leases leases_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.leases
    ADD CONSTRAINT leases_pkey PRIMARY KEY (name);


--
-- Name: notifications notifications_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.notifications
    ADD CONSTRAINT notifications_pkey PRIMARY KEY (tenant, order_id, outcome);


--
-- Name: products products_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.products
    ADD CONSTRAINT products_pkey PRIMARY KEY (tenant, product_id);


--
-- Name: reservations reservations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.reservations
    ADD CONSTRAINT reservations_pkey PRIMARY KEY (op_id);


--
-- Name: run_logs run_logs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run_logs
    ADD CONSTRAINT run_logs_pkey PRIMARY KEY (id);


--
-- Name: run_slots run_slots_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run_slots
    ADD CONSTRAINT run_slots_pkey PRIMARY KEY (run_id, scope);


--
-- Name: run_steps run_steps_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run_steps
    ADD CONSTRAINT run_steps_pkey PRIMARY KEY (run_id, "group", step);


--
-- Name: run_tags run_tags_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run_tags
    ADD CONSTRAINT run_tags_pkey PRIMARY KEY (run_id, tag);


--
-- Name: runs runs_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_pkey PRIMARY KEY (id);


--
-- Name: runs runs_workflow_id_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT runs_workflow_id_key UNIQUE (workflow_id);


--
-- Name: tickets tickets_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.tickets
    ADD CONSTRAINT tickets_pkey PRIMARY KEY (tenant, ticket_id);


--
-- Name: run_logs uq_run_logs_op; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run_logs
    ADD CONSTRAINT uq_run_logs_op UNIQUE (run_id, op_id);


--
-- Name: runs uq_runs_event; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.runs
    ADD CONSTRAINT uq_runs_event UNIQUE (tenant, event, event_id, workflow, generation);


--
-- Name: video_digests video_digests_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.video_digests
    ADD CONSTRAINT video_digests_pkey PRIMARY KEY (run_id);


--
-- Name: videos videos_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.videos
    ADD CONSTRAINT videos_pkey PRIMARY KEY (tenant, video_id);


--
-- Name: waitpoints waitpoints_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.waitpoints
    ADD CONSTRAINT waitpoints_pkey PRIMARY KEY (id);


--
-- Name: webhook_dead_letters webhook_dead_letters_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.webhook_dead_letters
    ADD CONSTRAINT webhook_dead_letters_pkey PRIMARY KEY (id);


--
-- Name: ix_alert_deliveries_due; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_alert_deliveries_due ON public.alert_deliveries USING btree (delivered_at, next_attempt_at);


--
-- Name: ix_alert_deliveries_run_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_alert_deliveries_run_id ON public.alert_deliveries USING btree (run_id);


--
-- Name: ix_alert_destinations_tenant; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_alert_destinations_tenant ON public.alert_destinations USING btree (tenant);


--
-- Name: ix_api_keys_tenant; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_api_keys_tenant ON public.api_keys USING btree (tenant);


--
-- Name: ix_reservations_order_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_reservations_order_id ON public.reservations USING btree (order_id);


--
-- Name: ix_run_logs_run_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_run_logs_run_id ON public.run_logs USING btree (run_id);


--
-- Name: ix_run_slots_rate; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_run_slots_rate ON public.run_slots USING btree (kind, free_at);


--
-- Name: ix_run_slots_scope; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_run_slots_scope ON public.run_slots USING btree (scope);


--
-- Name: ix_run_tags_tag; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_run_tags_tag ON public.run_tags USING btree (tag);


--
-- Name: ix_runs_key; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_runs_key ON public.runs USING btree (tenant, workflow, business_key);


--
-- Name: ix_runs_listing; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_runs_listing ON public.runs USING btree (tenant, created_at, id);


--
-- Name: ix_runs_overview; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_runs_overview ON public.runs USING btree (tenant, created_at, status, workflow, started_at, finished_at);


--
-- Name: ix_runs_queue; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_runs_queue ON public.runs USING btree (status, priority, created_at);


--
-- Name: ix_runs_replay_of; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_runs_replay_of ON public.runs USING btree (replay_of);


--
-- Name: ix_runs_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_runs_status ON public.runs USING btree (status);


--
-- Name: ix_runs_updated; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_runs_updated ON public.runs USING btree (updated_at, id);


--
-- Name: ix_tickets_open; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_tickets_open ON public.tickets USING btree (tenant, status, created_at);


--
-- Name: ix_video_digests_user; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_video_digests_user ON public.video_digests USING btree (tenant, user_id, created_at);


--
-- Name: ix_videos_processed_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_videos_processed_at ON public.videos USING btree (processed_at);


--
-- Name: ix_waitpoints_listing; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_waitpoints_listing ON public.waitpoints USING btree (tenant, created_at, id);


--
-- Name: ix_waitpoints_run_id; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_waitpoints_run_id ON public.waitpoints USING btree (run_id);


--
-- Name: ix_waitpoints_undelivered; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_waitpoints_undelivered ON public.waitpoints USING btree (status, delivered_at);


--
-- Name: ix_webhook_dead_letters_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_webhook_dead_letters_status ON public.webhook_dead_letters USING btree (status);


--
-- Name: uq_runs_gate; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX uq_runs_gate ON public.runs USING btree (gate);


--
-- Name: alert_deliveries alert_deliveries_destination_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.alert_deliveries
    ADD CONSTRAINT alert_deliveries_destination_id_fkey FOREIGN KEY (destination_id) REFERENCES public.alert_destinations(id) ON DELETE CASCADE;


--
-- Name: run_logs run_logs_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run_logs
    ADD CONSTRAINT run_logs_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id) ON DELETE CASCADE;


--
-- Name: run_slots run_slots_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run_slots
    ADD CONSTRAINT run_slots_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id) ON DELETE CASCADE;


--
-- Name: run_steps run_steps_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run_steps
    ADD CONSTRAINT run_steps_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id) ON DELETE CASCADE;


--
-- Name: run_tags run_tags_run_id_fkey; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.run_tags
    ADD CONSTRAINT run_tags_run_id_fkey FOREIGN KEY (run_id) REFERENCES public.runs(id) ON DELETE CASCADE;


--
-- PostgreSQL database dump complete
--



-- The gateway's own metadata: wallets, the testnet ledger, used nonces, projects.
-- Idempotent: run at every gateway start. Only the cluster superuser (the gateway) can see it.

CREATE SCHEMA IF NOT EXISTS run402_meta;
REVOKE ALL ON SCHEMA run402_meta FROM PUBLIC;

-- One row per wallet that ever touched the gateway: its testnet USDC and its tier lease.
CREATE TABLE IF NOT EXISTS run402_meta.accounts (
    wallet              text PRIMARY KEY CHECK (wallet ~ '^0x[0-9a-f]{40}$'),
    available_usd_micros bigint NOT NULL DEFAULT 0 CHECK (available_usd_micros >= 0),
    tier                text,
    lease_started_at    timestamptz,
    lease_expires_at    timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS run402_meta.ledger_entries (
    id                  bigserial PRIMARY KEY,
    wallet              text NOT NULL REFERENCES run402_meta.accounts(wallet),
    direction           text NOT NULL CHECK (direction IN ('credit', 'debit')),
    kind                text NOT NULL,
    amount_usd_micros   bigint NOT NULL CHECK (amount_usd_micros > 0),
    balance_after       bigint NOT NULL,
    reference_type      text,
    reference_id        text,
    metadata            jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS ledger_entries_wallet ON run402_meta.ledger_entries (wallet, id);

-- EIP-3009 authorization nonces already settled: a payment is spendable once.
CREATE TABLE IF NOT EXISTS run402_meta.payment_nonces (
    nonce               text PRIMARY KEY,
    payer               text NOT NULL,
    amount_usd_micros   bigint NOT NULL,
    resource            text NOT NULL,
    settled_at          timestamptz NOT NULL DEFAULT now()
);

-- SIGN-IN-WITH-X nonces seen inside their validity window, with the request each was first
-- presented on: a header is usable once, and once more on that same request carrying an x402
-- payment (the client's answer to a 402).
CREATE TABLE IF NOT EXISTS run402_meta.siwx_nonces (
    nonce               text PRIMARY KEY,
    wallet              text NOT NULL,
    expires_at          timestamptz NOT NULL
);
ALTER TABLE run402_meta.siwx_nonces ADD COLUMN IF NOT EXISTS method text NOT NULL DEFAULT '';
ALTER TABLE run402_meta.siwx_nonces ADD COLUMN IF NOT EXISTS path text NOT NULL DEFAULT '';
ALTER TABLE run402_meta.siwx_nonces ADD COLUMN IF NOT EXISTS uses integer NOT NULL DEFAULT 1;

CREATE SEQUENCE IF NOT EXISTS run402_meta.schema_slot_seq;

CREATE TABLE IF NOT EXISTS run402_meta.projects (
    id                  text PRIMARY KEY,
    name                text,
    wallet              text NOT NULL,
    tier                text NOT NULL,
    schema_slot         text NOT NULL UNIQUE,
    jwt_secret          text NOT NULL,
    sql_password        text NOT NULL,
    status              text NOT NULL DEFAULT 'active',
    api_calls           bigint NOT NULL DEFAULT 0,
    created_at          timestamptz NOT NULL DEFAULT now(),
    deleted_at          timestamptz
);
CREATE INDEX IF NOT EXISTS projects_wallet ON run402_meta.projects (wallet);

-- The applied expose manifest of each project (the desired state it converges to).
CREATE TABLE IF NOT EXISTS run402_meta.expose_manifests (
    project_id          text PRIMARY KEY REFERENCES run402_meta.projects(id),
    manifest            jsonb NOT NULL,
    applied_at          timestamptz NOT NULL DEFAULT now()
);

-- Supabase-style helpers for policies: who is calling, from PostgREST's verified JWT claims.
CREATE SCHEMA IF NOT EXISTS auth;
GRANT USAGE ON SCHEMA auth TO PUBLIC;
CREATE OR REPLACE FUNCTION auth.jwt() RETURNS jsonb LANGUAGE sql STABLE AS
$$ SELECT coalesce(nullif(current_setting('request.jwt.claims', true), ''), '{}')::jsonb $$;
CREATE OR REPLACE FUNCTION auth.uid() RETURNS uuid LANGUAGE sql STABLE AS
$$ SELECT nullif(auth.jwt() ->> 'sub', '')::uuid $$;
CREATE OR REPLACE FUNCTION auth.role() RETURNS text LANGUAGE sql STABLE AS
$$ SELECT coalesce(auth.jwt() ->> 'app_role', 'anon') $$;
CREATE OR REPLACE FUNCTION auth.email() RETURNS text LANGUAGE sql STABLE AS
$$ SELECT auth.jwt() ->> 'email' $$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA auth TO PUBLIC;

-- End users of each project (the project's own auth; passwords hashed with argon2id).
CREATE TABLE IF NOT EXISTS run402_meta.users (
    id                  uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    project_id          text NOT NULL REFERENCES run402_meta.projects(id),
    email               text NOT NULL,
    password_hash       text,
    role                text NOT NULL DEFAULT 'authenticated' CHECK (role IN ('authenticated', 'project_admin')),
    email_verified_at   timestamptz,
    display_name        text,
    avatar_url          text,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX IF NOT EXISTS users_project_email ON run402_meta.users (project_id, lower(email));

-- Refresh tokens are stored hashed and used once: each refresh rotates.
CREATE TABLE IF NOT EXISTS run402_meta.refresh_tokens (
    token_hash          text PRIMARY KEY,
    project_id          text NOT NULL,
    user_id             uuid NOT NULL REFERENCES run402_meta.users(id) ON DELETE CASCADE,
    expires_at          timestamptz NOT NULL,
    used_at             timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS run402_meta.magic_links (
    token_hash          text PRIMARY KEY,
    project_id          text NOT NULL,
    email               text NOT NULL,
    intent              text NOT NULL,
    redirect_url        text NOT NULL,
    client_state        text,
    state_source        text NOT NULL,
    expires_at          timestamptz NOT NULL,
    used_at             timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE IF NOT EXISTS run402_meta.auth_settings (
    project_id          text PRIMARY KEY REFERENCES run402_meta.projects(id),
    settings            jsonb NOT NULL
);

-- Mail the gateway "sends" for a project: captured here, never delivered.
CREATE TABLE IF NOT EXISTS run402_meta.mailbox (
    id                  bigserial PRIMARY KEY,
    project_id          text NOT NULL,
    to_address          text NOT NULL,
    subject             text NOT NULL,
    body_text           text NOT NULL,
    kind                text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS mailbox_project ON run402_meta.mailbox (project_id, id);

-- ---------------------------------------------------------------------------------------------
-- Deploys (deploy/content.py, deploy/apply_*.py, web/sites.py, web/subdomains.py).

-- Which CAS objects a project has proved it holds (uploaded or committed the bytes of). The CAS
-- itself is shared and content-addressed; a digest counts as "present" for a project only here,
-- so a project cannot serve another project's bytes by guessing their digest.
CREATE TABLE IF NOT EXISTS run402_meta.cas_refs (
    project_id          text NOT NULL,
    sha256              text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size                bigint NOT NULL CHECK (size >= 0),
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, sha256)
);

-- Content upload sessions: a content plan holds one upload per missing object.
CREATE TABLE IF NOT EXISTS run402_meta.content_plans (
    id                  text PRIMARY KEY,
    project_id          text NOT NULL,
    status              text NOT NULL DEFAULT 'open',
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS content_plans_project ON run402_meta.content_plans (project_id);

CREATE TABLE IF NOT EXISTS run402_meta.content_uploads (
    upload_id           text PRIMARY KEY,
    plan_id             text NOT NULL REFERENCES run402_meta.content_plans(id) ON DELETE CASCADE,
    project_id          text NOT NULL,
    sha256              text NOT NULL,
    size                bigint NOT NULL,
    content_type        text,
    part_size           bigint NOT NULL,
    part_count          integer NOT NULL,
    status              text NOT NULL DEFAULT 'pending',
    expires_at          timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS content_uploads_plan ON run402_meta.content_uploads (plan_id);

-- Deploy plans: the validated spec, the state it leads to, and what the commit must do.
CREATE TABLE IF NOT EXISTS run402_meta.deploy_plans (
    id                  text PRIMARY KEY,
    project_id          text NOT NULL,
    operation_id        text NOT NULL UNIQUE,
    wallet              text NOT NULL,
    base_mode           text NOT NULL,
    base_release_id     text,
    manifest_digest     text NOT NULL,
    idempotency_key     text,
    spec                jsonb NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    expires_at          timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS deploy_plans_digest ON run402_meta.deploy_plans (project_id, manifest_digest);


CREATE TABLE IF NOT EXISTS run402_meta.deploy_operations (
    id                  text PRIMARY KEY,
    project_id          text NOT NULL,
    plan_id             text NOT NULL,
    status              text NOT NULL,
    phase               text,
    base_release_id     text,
    target_release_id   text,
    release_id          text,
    urls                jsonb,
    error               jsonb,
    migrate_xid         bigint,
    activate_attempts   integer NOT NULL DEFAULT 0,
    last_activate_attempt_at timestamptz,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS deploy_operations_project ON run402_meta.deploy_operations (project_id, created_at DESC);

CREATE TABLE IF NOT EXISTS run402_meta.deploy_events (
    id                  bigserial PRIMARY KEY,
    operation_id        text NOT NULL,
    project_id          text NOT NULL,
    event               jsonb NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS deploy_events_operation ON run402_meta.deploy_events (operation_id, id);

-- Releases are immutable once written: `state` is the whole materialized site/routes/... of
-- the release. Only status/superseded_at change, when a later release supersedes it.
CREATE TABLE IF NOT EXISTS run402_meta.releases (
    id                  text PRIMARY KEY,
    project_id          text NOT NULL,
    generation          integer NOT NULL,
    deployment_id       text NOT NULL UNIQUE,
    parent_id           text,
    status              text NOT NULL,
    manifest_digest     text NOT NULL,
    state               jsonb NOT NULL,
    operation_id        text,
    plan_id             text,
    created_by          text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    activated_at        timestamptz,
    superseded_at       timestamptz
);
CREATE INDEX IF NOT EXISTS releases_project ON run402_meta.releases (project_id, generation);

-- The one pointer a project's hosts follow; activation is one UPDATE of it.
CREATE TABLE IF NOT EXISTS run402_meta.active_releases (
    project_id          text PRIMARY KEY,
    release_id          text NOT NULL,
    activated_at        timestamptz NOT NULL DEFAULT now()
);

-- Applied migrations. A row is written (confirmed=false, with the migrating transaction's id)
-- just before that transaction commits, then confirmed; txid_status settles a crash in between.
CREATE TABLE IF NOT EXISTS run402_meta.migrations_applied (
    project_id          text NOT NULL,
    migration_id        text NOT NULL,
    checksum            text NOT NULL,
    operation_id        text,
    xid                 bigint,
    confirmed           boolean NOT NULL DEFAULT false,
    applied_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, migration_id)
);

-- Project secrets (values are write-only; deploys only check for and delete keys).
CREATE TABLE IF NOT EXISTS run402_meta.secrets (
    project_id          text NOT NULL,
    key                 text NOT NULL,
    value               text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, key)
);

-- Claimed subdomains: <name>.localhost serves `deployment_id` (re-pointed at each activation).
CREATE TABLE IF NOT EXISTS run402_meta.subdomains (
    name                text PRIMARY KEY,
    project_id          text NOT NULL,
    deployment_id       text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS subdomains_project ON run402_meta.subdomains (project_id);

-- Deploy coordination: a row per (project, kind), locked FOR UPDATE for as long as a plan is being
-- written or an operation runs. Advisory locks would live in a key space every session of the
-- database shares, so a tenant could take another project's deploy lock and hold it; this table
-- is in a schema no tenant can reach.
CREATE TABLE IF NOT EXISTS run402_meta.deploy_locks (
    project_id          text NOT NULL,
    kind                text NOT NULL,
    PRIMARY KEY (project_id, kind)
);

-- Installation settings the database itself needs (written at every start by the gateway).
CREATE TABLE IF NOT EXISTS run402_meta.settings (
    key                 text PRIMARY KEY,
    value               text NOT NULL
);

-- NOTIFY on PostgREST's private channel (its name is a setting, derived from an installation secret).
CREATE OR REPLACE FUNCTION run402_meta.notify_postgrest(what text) RETURNS void
LANGUAGE sql SET search_path = pg_catalog AS $$
    SELECT pg_notify((SELECT value FROM run402_meta.settings WHERE key = 'postgrest_channel'), what)
$$;

-- Functions' console output, a row a line, with the invocation's request id (functions logs).
CREATE TABLE IF NOT EXISTS run402_meta.function_logs (
    id                  bigserial PRIMARY KEY,
    project_id          text NOT NULL,
    function_name       text NOT NULL,
    request_id          text,
    ts                  timestamptz NOT NULL,
    level               text NOT NULL,
    message             text NOT NULL
);
CREATE INDEX IF NOT EXISTS function_logs_fn ON run402_meta.function_logs (project_id, function_name, ts);
CREATE INDEX IF NOT EXISTS function_logs_request ON run402_meta.function_logs (project_id, request_id);

-- What a function's schedule has done (schedule_meta); kept across restarts and releases.
CREATE TABLE IF NOT EXISTS run402_meta.function_schedules (
    project_id          text NOT NULL,
    function_name       text NOT NULL,
    schedule            text NOT NULL,
    next_run_at         timestamptz,
    last_run_at         timestamptz,
    last_status         text,
    last_error          text,
    run_count           bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (project_id, function_name)
);

-- Blob storage (storage/): a project's keys, what each serves now, and the content-addressed
-- versions its immutable URLs keep serving after the key is overwritten. Bytes live in the CAS.
CREATE TABLE IF NOT EXISTS run402_meta.assets (
    project_id          text NOT NULL,
    key                 text NOT NULL,
    sha256              text NOT NULL CHECK (sha256 ~ '^[0-9a-f]{64}$'),
    size_bytes          bigint NOT NULL CHECK (size_bytes >= 0),
    content_type        text NOT NULL,
    visibility          text NOT NULL CHECK (visibility IN ('public', 'private')),
    immutable           boolean NOT NULL,
    metadata            jsonb,
    exif_policy         text,
    width_px            integer,
    height_px           integer,
    image_format        text,
    uploaded_by         text,
    created_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    updated_at          timestamptz NOT NULL DEFAULT clock_timestamp(),
    PRIMARY KEY (project_id, key)
);
CREATE INDEX IF NOT EXISTS assets_created ON run402_meta.assets (project_id, created_at, key);
-- Image uploads (storage/derive.py): what the gateway read, and the uploaded bytes' identity
-- when it serves other bytes (EXIF stripped), so a re-put of the same file is a no-op.
ALTER TABLE run402_meta.assets ADD COLUMN IF NOT EXISTS source_sha256 text;
ALTER TABLE run402_meta.assets ADD COLUMN IF NOT EXISTS source_size_bytes bigint;
ALTER TABLE run402_meta.assets ADD COLUMN IF NOT EXISTS image_info jsonb;
ALTER TABLE run402_meta.assets ADD COLUMN IF NOT EXISTS image_exif jsonb;
ALTER TABLE run402_meta.assets ADD COLUMN IF NOT EXISTS blurhash text;
ALTER TABLE run402_meta.assets ADD COLUMN IF NOT EXISTS variants jsonb;

CREATE TABLE IF NOT EXISTS run402_meta.asset_versions (
    project_id          text NOT NULL,
    immutable_key       text NOT NULL,
    key                 text NOT NULL,
    sha256              text NOT NULL,
    size_bytes          bigint NOT NULL,
    content_type        text NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, immutable_key)
);
CREATE INDEX IF NOT EXISTS asset_versions_key ON run402_meta.asset_versions (project_id, key);

-- An image's WebP variants, served at their content-addressed names. `retained`: made for an
-- immutable put, so they outlive an overwrite like its version does; the others go with it.
CREATE TABLE IF NOT EXISTS run402_meta.asset_variants (
    project_id          text NOT NULL,
    variant_key         text NOT NULL,
    key                 text NOT NULL,
    name                text NOT NULL,
    sha256              text NOT NULL,
    size_bytes          bigint NOT NULL,
    width_px            integer NOT NULL,
    height_px           integer NOT NULL,
    retained            boolean NOT NULL,
    created_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (project_id, variant_key)
);
CREATE INDEX IF NOT EXISTS asset_variants_key ON run402_meta.asset_variants (project_id, key);

-- A project's asset revision: bumped by every asset write, locked by each (FOR UPDATE), so a
-- prune's confirmation can say which set of keys it saw.
CREATE TABLE IF NOT EXISTS run402_meta.asset_revisions (
    project_id          text PRIMARY KEY,
    revision            bigint NOT NULL DEFAULT 0
);

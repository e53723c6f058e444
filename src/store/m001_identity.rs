//! Migration 1: virtual keys, teams and their members, users, end users and budgets.
//!
//! Column names follow LiteLLM's tables so an operator (and `import-litellm`) finds the same
//! facts under the same names; timestamps are unix milliseconds, lists and maps JSON text.

/// The same text serves both dialects: it uses only the common subset.
pub const SQL: &str = "
CREATE TABLE tollgate_keys (
    token TEXT PRIMARY KEY,
    key_name TEXT,
    key_alias TEXT,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    max_budget DOUBLE PRECISION,
    soft_budget DOUBLE PRECISION,
    budget_duration TEXT,
    budget_reset_at BIGINT,
    expires BIGINT,
    models TEXT NOT NULL DEFAULT '[]',
    aliases TEXT NOT NULL DEFAULT '{}',
    config TEXT NOT NULL DEFAULT '{}',
    user_id TEXT,
    team_id TEXT,
    budget_id TEXT,
    organization_id TEXT,
    max_parallel_requests BIGINT,
    tpm_limit BIGINT,
    rpm_limit BIGINT,
    model_max_budget TEXT NOT NULL DEFAULT '{}',
    model_spend TEXT NOT NULL DEFAULT '{}',
    metadata TEXT NOT NULL DEFAULT '{}',
    permissions TEXT NOT NULL DEFAULT '{}',
    blocked BIGINT NOT NULL DEFAULT 0,
    extra TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by TEXT,
    updated_by TEXT
);
CREATE INDEX tollgate_keys_alias ON tollgate_keys (key_alias);
CREATE INDEX tollgate_keys_team ON tollgate_keys (team_id);
CREATE INDEX tollgate_keys_user ON tollgate_keys (user_id);
CREATE INDEX tollgate_keys_reset ON tollgate_keys (budget_reset_at);
CREATE TABLE tollgate_teams (
    team_id TEXT PRIMARY KEY,
    team_alias TEXT,
    organization_id TEXT,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    max_budget DOUBLE PRECISION,
    budget_duration TEXT,
    budget_reset_at BIGINT,
    models TEXT NOT NULL DEFAULT '[]',
    tpm_limit BIGINT,
    rpm_limit BIGINT,
    max_parallel_requests BIGINT,
    blocked BIGINT NOT NULL DEFAULT 0,
    metadata TEXT NOT NULL DEFAULT '{}',
    extra TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE tollgate_team_members (
    team_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    role TEXT NOT NULL DEFAULT 'user',
    user_email TEXT,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    budget_id TEXT,
    created_at BIGINT NOT NULL,
    PRIMARY KEY (team_id, user_id)
);
CREATE INDEX tollgate_team_members_user ON tollgate_team_members (user_id);
CREATE TABLE tollgate_users (
    user_id TEXT PRIMARY KEY,
    user_email TEXT,
    user_alias TEXT,
    user_role TEXT,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    max_budget DOUBLE PRECISION,
    budget_duration TEXT,
    budget_reset_at BIGINT,
    models TEXT NOT NULL DEFAULT '[]',
    tpm_limit BIGINT,
    rpm_limit BIGINT,
    max_parallel_requests BIGINT,
    metadata TEXT NOT NULL DEFAULT '{}',
    extra TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
CREATE TABLE tollgate_end_users (
    user_id TEXT PRIMARY KEY,
    alias TEXT,
    spend DOUBLE PRECISION NOT NULL DEFAULT 0,
    blocked BIGINT NOT NULL DEFAULT 0,
    budget_id TEXT,
    allowed_model_region TEXT,
    default_model TEXT,
    budget_reset_at BIGINT,
    extra TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT,
    updated_at BIGINT
);
CREATE TABLE tollgate_budgets (
    budget_id TEXT PRIMARY KEY,
    max_budget DOUBLE PRECISION,
    soft_budget DOUBLE PRECISION,
    max_parallel_requests BIGINT,
    tpm_limit BIGINT,
    rpm_limit BIGINT,
    budget_duration TEXT,
    budget_reset_at BIGINT,
    model_max_budget TEXT NOT NULL DEFAULT '{}',
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    created_by TEXT,
    updated_by TEXT
)
";

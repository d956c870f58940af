-- flowgres 0.13 → 0.14: output safety rules (README "Output safety").
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.14'" to load this file. \quit

-- Rules every model answer is checked against, platform-wide (workspace_id null, the
-- operator's) and per workspace (owners and admins): a phrase, matched anywhere ignoring ASCII
-- case, or an RE2 pattern, each in one of seed §47's categories.
create table safety_rules (
    id            uuid primary key default gen_random_uuid(),
    workspace_id  uuid references workspaces (id),
    category      text not null check (category in ('self_harm', 'violence', 'illegal', 'hate', 'minors')),
    kind          text not null default 'phrase' check (kind in ('phrase', 'pattern')),
    text          text not null check (length(text) between 1 and 200),
    created_by    uuid references users (id),
    created_at    timestamptz not null default now()
);
comment on table safety_rules is 'Output safety rules (seed §47): phrases or RE2 patterns by category, platform-wide or per workspace.';
create index safety_rules_workspace_idx on safety_rules (workspace_id);
create unique index safety_rules_unique_idx
    on safety_rules (coalesce(workspace_id, '00000000-0000-0000-0000-000000000000'), category, kind, text);

alter table safety_rules enable row level security;
create policy member_rows on safety_rules for select using (workspace_id = any (flowgres.actor_workspace_ids()));
grant select on safety_rules to flowgres_user, flowgres_service;

-- A conservative starting list: phrases that ask for or give instructions, not topics, so
-- ordinary answers about history or news pass. Operators add their own.
insert into safety_rules (category, kind, text) values
    ('self_harm', 'phrase', 'how to kill myself'), ('self_harm', 'phrase', 'ways to commit suicide'),
    ('self_harm', 'phrase', '自杀方法'),
    ('violence', 'phrase', 'how to build a bomb'), ('violence', 'phrase', 'instructions for making a pipe bomb'),
    ('violence', 'phrase', '制作炸弹的方法'),
    ('illegal', 'phrase', 'how to launder money'), ('illegal', 'phrase', 'synthesize methamphetamine'),
    ('illegal', 'phrase', '洗钱的方法'),
    ('hate', 'phrase', 'exterminate all of them because of their race'), ('hate', 'phrase', '种族灭绝是正当的'),
    ('minors', 'phrase', 'sexual content involving minors'), ('minors', 'phrase', '儿童色情');

create function safety_rule_add(category text, text text, kind text default null, workspace_id uuid default null) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_safety_rule_add';
comment on function safety_rule_add(text, text, text, uuid) is
    'Adds an output safety rule: the platform''s (operator) or, with workspace_id, the workspace''s (app_publish).';

create function safety_rule_list(workspace_id uuid default null) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_safety_rule_list';
comment on function safety_rule_list(uuid) is
    'The platform''s rules (operator), or what applies to a workspace (app_edit): its own and the platform''s.';

create function safety_rule_delete(rule_id uuid) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_safety_rule_delete';
comment on function safety_rule_delete(uuid) is 'Removes a rule: a platform rule (operator) or a workspace''s (app_publish).';

create function safety_rules_for_run(workspace_id uuid) returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_safety_rules_for_run';
comment on function safety_rules_for_run(uuid) is 'Service only: the rules a run''s model answers are checked against.';
revoke execute on function safety_rules_for_run(uuid) from public;
grant execute on function safety_rules_for_run(uuid) to flowgres_service;

-- ---------------------------------------------------------------------------------------
-- A model call is refused before it is sent when the workspace's tokens quota or budget cannot
-- cover it: the call's worst case (its prompt's size plus max_tokens) is held here until the
-- run records what was really used (execution_finish drops the run's holds in the same
-- transaction). Holds serialise per workspace and count as used for the next check, so
-- parallel runs cannot overshoot together; a hold whose run died expires.
-- ---------------------------------------------------------------------------------------
create table token_holds (
    workspace_id  uuid not null references workspaces (id),
    id            bigint generated always as identity,
    execution_id  uuid not null,
    tokens        bigint not null check (tokens > 0),
    expires_at    timestamptz not null,
    created_at    timestamptz not null default now(),
    primary key (workspace_id, id)
);
comment on table token_holds is 'Tokens held for model calls in flight, counted as used until their run records its usage.';
create index token_holds_execution_idx on token_holds (execution_id);
alter table token_holds enable row level security;
create policy member_rows on token_holds for select using (workspace_id = any (flowgres.actor_workspace_ids()));
grant select on token_holds to flowgres_user, flowgres_service;

create function llm_tokens_reserve(execution_id uuid, tokens bigint) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_llm_tokens_reserve';
comment on function llm_tokens_reserve(uuid, bigint) is
    'Service only: holds a model call''s worst-case tokens for a running execution, or QUOTA_EXCEEDED when the tokens quota or budget cannot cover them.';
revoke execute on function llm_tokens_reserve(uuid, bigint) from public;
grant execute on function llm_tokens_reserve(uuid, bigint) to flowgres_service;

create function llm_tokens_release(execution_id uuid) returns integer
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_llm_tokens_release';
comment on function llm_tokens_release(uuid) is
    'Service only: drops a run''s token holds; called in the transaction that records its usage.';
revoke execute on function llm_tokens_release(uuid) from public;
grant execute on function llm_tokens_release(uuid) to flowgres_service;

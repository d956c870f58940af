-- flowgres 0.42 → 0.43: conversations and messages of gateway calls (README "Gateway"): a
-- chat app passes its conversation id (X-Conversation-Id), and each call adds its last
-- message and the model's answer.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.43'" to load this file. \quit

create table conversations (
    workspace_id  uuid not null references workspaces (id),
    id            uuid not null,
    api_key_id    uuid,
    created_at    timestamptz not null default now(),
    updated_at    timestamptz not null default now(),
    primary key (workspace_id, id)
);
comment on table conversations is
    'A chat app''s conversation through the gateway, named by the id the app passes (X-Conversation-Id); one per workspace and id.';
create index conversations_recent_idx on conversations (workspace_id, updated_at desc);

create table messages (
    workspace_id     uuid not null,
    id               bigint generated always as identity,
    conversation_id  uuid not null,
    role             text not null check (role in ('system', 'user', 'assistant')),
    content          text not null,
    trace_id         text,
    model            text,
    created_at       timestamptz not null default now(),
    primary key (workspace_id, id),
    foreign key (workspace_id, conversation_id) references conversations (workspace_id, id)
);
alter table messages alter column content set compression lz4;
comment on table messages is 'The turns of a conversation: each gateway call''s last message and the model''s answer.';
create index messages_conversation_idx on messages (workspace_id, conversation_id, id);

alter table conversations enable row level security;
create policy member_rows on conversations for select using (workspace_id = any (flowgres.actor_workspace_ids()));
alter table messages enable row level security;
create policy member_rows on messages for select using (workspace_id = any (flowgres.actor_workspace_ids()));
grant select on conversations, messages to flowgres_user, flowgres_service;

create function conversation_list(workspace_id uuid, filters jsonb default '{}') returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_conversation_list';
comment on function conversation_list(uuid, jsonb) is
    'The workspace''s conversations, the most recently active first (logs_view); filters: page, page_size.';

create function conversation_messages(workspace_id uuid, conversation_id uuid, filters jsonb default '{}') returns jsonb
language c stable security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_conversation_messages';
comment on function conversation_messages(uuid, uuid, jsonb) is
    'A conversation''s messages in order (logs_view); filters: page, page_size.';

-- flowgres 0.5 → 0.6: the public app page's settings (issue 5 §8, seed §123).
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.6'" to load this file. \quit

-- What the public page shows besides the UI schema: {"branding": {…}, "seo": {…},
-- "inputs": {…}} (core/include/flowgres/public_page.hpp lists the fields). On the app, not a
-- version: a new logo or SEO title needs no new version and applies at once.
alter table apps
    add column public_page jsonb not null default '{}'
        check (jsonb_typeof(public_page) = 'object' and pg_column_size(public_page) <= 65536);

create function app_public_page_update(app_id uuid, section text, changes jsonb) returns jsonb
language c volatile security definer set search_path = pg_catalog, pg_temp
as 'MODULE_PATHNAME', 'flowgres_app_public_page_update';
comment on function app_public_page_update(uuid, text, jsonb) is
    'Changes one section (branding, seo, inputs) of the public page: members replace, null removes (app_edit).';

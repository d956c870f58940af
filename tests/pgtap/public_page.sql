-- The public page's settings (seed §123): one section at a time, merged, checked, audited,
-- editors only, and handed to visitors by runtime admission with the app.
begin;
select plan(20);

select test.new_user('brand@example.com') as owner \gset
select test.home_of(:'owner') as ws \gset
select slug as ws_slug from flowgres.workspaces where id = :'ws' \gset
select test.new_member(:'ws', 'editor@example.com', 'member') as editor \gset
select test.new_user('outsider@example.com') as outsider \gset
select test.act_as(:'owner');
update flowgres.workspaces set plan = 'enterprise' where id = :'ws';
select flowgres.app_create(:'ws', 'Branded', 'branded') ->> 'id' as app \gset
select flowgres.version_create(:'app', '1.0.0', test.workflow()) ->> 'id' as v1 \gset
select flowgres.app_publish(:'app', :'v1', '{"access_mode": "public_anonymous", "allowed_origins": ["https://partner.example"]}');

select is(flowgres.app_public_page_update(:'app', 'branding', '{"title": "<b>Hi</b>", "theme": "dark"}') -> 'public_page',
          '{"branding": {"title": "<b>Hi</b>", "theme": "dark"}}', 'a section is stored as given, markup and all');
select is(flowgres.app_public_page_update(:'app', 'branding', '{"theme": null, "accent_color": "#123"}') -> 'public_page' -> 'branding',
          '{"title": "<b>Hi</b>", "accent_color": "#123"}', 'members replace, null removes');
select is(flowgres.app_public_page_update(:'app', 'seo', '{"title": "Branded app"}') -> 'public_page' -> 'seo',
          '{"title": "Branded app"}', 'sections are independent');
select is((select public_page -> 'branding' ->> 'accent_color' from flowgres.apps where id = :'app'), '#123', 'and kept on the app');
select is(test.audit_count(:'ws', 'app.public_page_update'), 3::bigint, 'each change is audited');

select is(test.error_code_of(format($$select flowgres.app_public_page_update(%L, 'theme', '{"a": 1}')$$, :'app')),
          'VALIDATION_FAILED', 'an unknown section is refused');
select is(test.error_detail_of(format($$select flowgres.app_public_page_update(%L, 'branding', '{"logo_url": "javascript:x", "theme": "neon"}')$$, :'app'))
          -> 'details', '[{"field": "branding.theme", "message": "must be light, dark or auto"},
                         {"field": "branding.logo_url", "message": "must be an https:// URL of at most 2048 characters"}]',
          'every bad field is named');
select is(test.error_code_of(format($$select flowgres.app_public_page_update(%L, 'inputs', '[]')$$, :'app')),
          'VALIDATION_FAILED', 'changes must be an object');
select is(test.error_code_of(format($$select flowgres.app_public_page_update(%L, 'seo', null)$$, :'app')),
          'VALIDATION_FAILED', 'and given');
select is((select public_page -> 'branding' from flowgres.apps where id = :'app'), '{"title": "<b>Hi</b>", "accent_color": "#123"}',
          'refused changes change nothing');

select test.act_as(:'editor');
select is(flowgres.app_public_page_update(:'app', 'inputs', '{"defaults": {"name": "Ada"}}') -> 'public_page' -> 'inputs',
          '{"defaults": {"name": "Ada"}}', 'members who edit apps edit their page');
select is(test.error_code_of(format($$select flowgres.app_public_page_update(%L, 'branding', '{"sign_in_url": "https://phish.example/login"}')$$, :'app')),
          'PERMISSION_DENIED', 'but where its sign-in link leads is a publisher''s to say');
select is(test.error_code_of(format($$select flowgres.app_public_page_update(%L, 'branding', '{"terms": {"url": "https://phish.example/terms"}}')$$, :'app')),
          'PERMISSION_DENIED', 'so are the terms');
select is(test.error_code_of(format($$select flowgres.app_public_page_update(%L, 'branding', '{"privacy": {"text": "None", "url": "https://phish.example"}}')$$, :'app')),
          'PERMISSION_DENIED', 'and the privacy notice');
select test.act_as(:'owner');
select is(flowgres.app_public_page_update(:'app', 'branding', '{"sign_in_url": "https://id.example/login"}') -> 'public_page' -> 'branding' ->> 'sign_in_url',
          'https://id.example/login', 'whoever may publish sets them');
select test.act_as(:'outsider');
select is(test.error_code_of(format($$select flowgres.app_public_page_update(%L, 'seo', '{"title": "x"}')$$, :'app')),
          'APP_NOT_FOUND', 'outsiders do not see the app');

-- Visitors get it with the app; the daemon gets the embed origins.
select test.act_as(null);
select flowgres.runtime_admit(jsonb_build_object('action', 'entry', 'workspace', :'ws_slug', 'app', 'branded', 'ip', '198.51.100.4')) as entry \gset
select is(:'entry'::jsonb -> 'app' -> 'page' -> 'seo', '{"title": "Branded app"}', 'the entry carries the page settings');
select is(:'entry'::jsonb -> 'allowed_origins', '["https://partner.example"]', 'and the origins that may embed it');
select is(flowgres.runtime_admit(jsonb_build_object('action', 'schema', 'workspace', :'ws_slug', 'app', 'branded', 'ip', '198.51.100.4'))
          -> 'app' -> 'page' -> 'branding' ->> 'title', '<b>Hi</b>', 'so does the schema');

select test.act_as(:'owner');
select flowgres.app_deprecate(:'app');
select flowgres.app_archive(:'app');
select is(test.error_code_of(format($$select flowgres.app_public_page_update(%L, 'seo', '{"title": "x"}')$$, :'app')),
          'STATE_CONFLICT', 'an archived app is not edited');

select * from finish();
rollback;

-- Hostile input through every kind of argument: each gets its code and nothing changes.
begin;
select plan(12);

select test.new_user('victim@example.com') as victim \gset
select test.home_of(:'victim') as ws \gset
select test.act_as(:'victim');
select flowgres.app_create(:'ws', 'Target') ->> 'id' as app \gset
create temp table before as
    select (select count(*) from flowgres.apps) apps, (select count(*) from flowgres.workspaces) workspaces,
           (select count(*) from flowgres.users) users;

select is(test.error_code_of(format('select flowgres.app_create(%L, %L, %L)', :'ws', 'x', $i$'); delete from flowgres.apps; --$i$)), 'VALIDATION_FAILED', 'injection in a slug');
select is(test.error_code_of(format('select flowgres.app_list(%L, %L)', :'ws', $j${"sort_by": "created_at; delete from flowgres.apps"}$j$)), 'VALIDATION_FAILED', 'injection in a sort column');
select is(test.error_code_of(format('select flowgres.app_list(%L, %L)', :'ws', $j${"q": "%' or 1=1 --"}$j$)) , 'ok', 'injection in a search term is just text');
select is((flowgres.app_list(:'ws', $j${"q": "%' or 1=1 --"}$j$)) -> 'meta' ->> 'total', '0', 'and matches nothing');
select is(test.error_code_of(format('select flowgres.member_invite(%L, %L)', :'ws', $e$x@example.com' or '1'='1$e$)), 'VALIDATION_FAILED', 'injection in an email');
select is(test.error_code_of(format('select flowgres.workspace_update(%L, %L)', :'ws', '{"name": "a\u0000b"}')), '22P05: unsupported Unicode escape sequence', 'NUL in JSON text is refused by jsonb itself');
select is(test.error_code_of(format('select flowgres.app_update(%L, %L)', :'app', '{"name": "../../etc/passwd"}')), 'ok', 'path-like names are plain text');
select is(test.error_code_of(format('select flowgres.version_create(%L, %L, %L, %L, %L, %L)', :'app', '1.0.0', test.workflow(), '{}', '{}', '{"a":' || repeat('[', 1000) || repeat(']', 1000) || '}')), 'ok', 'deep JSON within the limits is stored as data');
select is(test.error_code_of(format('select flowgres.app_update(%L, %L)', :'app', '{"name": 12345678901234567890123}')), 'BAD_REQUEST', 'numbers past 64 bits are refused as malformed');
select is(test.error_code_of(format('select flowgres.app_create(%L, %L, null, null, %L)', :'ws', 'Icon', repeat('🚀', 51))), 'VALIDATION_FAILED', 'oversized icons');
select is(test.error_code_of('select flowgres.app_get(null)'), 'VALIDATION_FAILED', 'NULL ids');
select is((select row((select count(*) from flowgres.apps), (select count(*) from flowgres.workspaces), (select count(*) from flowgres.users))::text),
          (select row(apps, workspaces, users)::text from before), 'the data is intact');

select * from finish();
rollback;

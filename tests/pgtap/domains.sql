-- Custom domains (0.45), called as SQL inside one transaction: the name's rules (IDN, IP
-- literals, wildcards, URLs, the platform's hosts), who may bind, read and act, the state
-- machine (pending → verifying → verified | failed; verified → active, one per app; rollback;
-- block and unblock), the backoff and support_url, audit rows and events (DNS lookups and
-- parallel sessions are in tests/integration/domains_test.py).
begin;
select plan(55);

select test.published_app('domain-owner@example.com', 'shop') as shop \gset
select (:'shop'::jsonb ->> 'owner') as owner, (:'shop'::jsonb ->> 'workspace') as ws, (:'shop'::jsonb ->> 'app') as app \gset
select test.new_member(:'ws', 'domain-member@example.com', 'member') as member \gset
select test.new_user('domain-outsider@example.com') as outsider \gset
set local flowgres.platform_hosts = 'apps.flowgres.test, Flowgres.Example';
set local flowgres.domain_verify_attempts = 3;
set local flowgres.domain_support_url = 'https://support.flowgres.test/domains';

-- the name's rules
select test.act_as(:'owner');
create function test.bind_error(name text) returns text language sql as $$
    select test.error_code_of(format('select flowgres.app_domain_bind(%L, %L)', current_setting('test.app'), name)) $$;
select set_config('test.app', :'app', true);
select is(test.bind_error(''), 'VALIDATION_FAILED', 'an empty name is refused');
select is(test.bind_error('localhost'), 'VALIDATION_FAILED', 'a single label is refused');
select is(test.bind_error('1.2.3.4'), 'VALIDATION_FAILED', 'an IPv4 literal is refused');
select is(test.bind_error('[::1]'), 'VALIDATION_FAILED', 'an IPv6 literal is refused');
select is(test.bind_error('*.example.com'), 'VALIDATION_FAILED', 'a wildcard is refused');
select is(test.bind_error('example.com:8443'), 'VALIDATION_FAILED', 'a port is refused');
select is(test.bind_error('https://example.com/'), 'VALIDATION_FAILED', 'a URL is refused');
select is(test.bind_error('exa mple.com'), 'VALIDATION_FAILED', 'a space is refused');
select is(test.bind_error('-bad.example.com'), 'VALIDATION_FAILED', 'a label starting with a hyphen is refused');
select is(test.bind_error('ab--cd.example.com'), 'VALIDATION_FAILED', 'hyphens in the third and fourth places are refused');
select is(test.bind_error('xn--zz.example.com'), 'VALIDATION_FAILED', 'an xn-- label that does not decode is refused');
select is(test.bind_error(repeat('a', 64) || '.com'), 'VALIDATION_FAILED', 'a label of 64 characters is refused');
select is(test.bind_error(repeat('abcdefghi.', 26) || 'com'), 'VALIDATION_FAILED', 'a name over 253 characters is refused');
select is(test.bind_error(repeat('é', 100000)), 'VALIDATION_FAILED', 'a huge name is refused before any conversion');
select is(test.bind_error('x''; drop table flowgres.app_domains; --.com'), 'VALIDATION_FAILED', 'SQL is refused as a name');
select is(test.bind_error('<script>.example.com'), 'VALIDATION_FAILED', 'HTML is refused as a name');
select is(test.bind_error('apps.flowgres.test'), 'DOMAIN_PLATFORM_HOST', 'the platform''s host is refused');
select is(test.bind_error('shop.APPS.flowgres.test.'), 'DOMAIN_PLATFORM_HOST', 'and any name below it, in any case');
select is(test.bind_error('deep.flowgres.example'), 'DOMAIN_PLATFORM_HOST', 'the list is trimmed and case-blind');
select is(test.bind_error('notflowgres.example'), 'ok', 'a name merely ending like a platform host is not reserved');

select flowgres.app_domain_bind(:'app', 'Bücher.Example.') as idn \gset
select is(:'idn'::jsonb ->> 'domain', 'xn--bcher-kva.example', 'an IDN is stored as punycode, lowercase, without the final dot');
select is(:'idn'::jsonb ->> 'display_domain', 'bücher.example', 'and shown as people read it');
select is(:'idn'::jsonb -> 'verification' -> 'txt' ->> 'name', '_flowgres.xn--bcher-kva.example', 'the TXT record to make');
select ok(length(:'idn'::jsonb -> 'verification' -> 'txt' ->> 'value') >= 32, 'holds a long random token');
select is(:'idn'::jsonb -> 'verification' -> 'cname', '{"type": "CNAME", "name": "xn--bcher-kva.example", "value": "apps.flowgres.test"}'::jsonb,
          'or a CNAME to the first platform host');
select is(test.bind_error('bücher.example'), 'DOMAIN_TAKEN', 'a bound name is taken, however it is written');
select is(test.bind_error('xn--bcher-kva.example'), 'DOMAIN_TAKEN', 'as punycode too');
select is(test.audit_count(:'ws', 'domain.bind'), 2::bigint, 'binding is audited');

-- who may do what
select test.act_as(:'member');
select is(test.bind_error('member.example.com'), 'PERMISSION_DENIED', 'a member binds nothing (app_publish)');
select is(flowgres.app_domain_get((:'idn'::jsonb ->> 'id')::uuid) ->> 'status', 'pending', 'but reads the domain');
select is((flowgres.app_domain_list(:'app', '{"status": "pending", "page_size": 1}') -> 'meta' ->> 'total')::int, 2, 'and the list');
select test.act_as(:'outsider');
select is(test.error_code_of(format('select flowgres.app_domain_get(%L)', :'idn'::jsonb ->> 'id')), 'DOMAIN_NOT_FOUND',
          'an outsider does not see it');
select is(test.error_code_of(format('select flowgres.app_domain_delete(%L)', :'idn'::jsonb ->> 'id')), 'DOMAIN_NOT_FOUND',
          'nor unbinds it');
select test.act_as(:'owner');
select is(test.error_code_of(format('select flowgres.app_domain_get(%L, gen_random_uuid())', :'idn'::jsonb ->> 'id')),
          'DOMAIN_NOT_FOUND', 'the nested form names the domain''s own app');
select is(test.error_code_of(format('select flowgres.app_domain_block(%L, %L)', :'idn'::jsonb ->> 'id', 'spam')),
          'PERMISSION_DENIED', 'an owner blocks nothing: the operator does');

-- the checks: claim, fail with backoff, succeed
select (:'idn'::jsonb ->> 'id') as d1 \gset
select is(test.error_code_of(format('select flowgres.app_domain_activate(%L)', :'d1')), 'STATE_CONFLICT',
          'a pending domain is not activated');
select is(flowgres.app_domain_verify_begin(:'d1', 'daemon-a') ->> 'status', 'verifying', 'a check claims the domain');
select is(test.error_code_of(format('select flowgres.app_domain_verify_begin(%L, %L)', :'d1', 'daemon-b')), 'STATE_CONFLICT',
          'a second daemon does not check it meanwhile');
select is(test.error_code_of(format($$select flowgres.app_domain_verify_finish(%L, 'daemon-b', '{"verified": true, "method": "txt"}')$$, :'d1')),
          'STATE_CONFLICT', 'nor records a result for it');
select is(test.error_code_of(format($$select flowgres.app_domain_verify_finish(%L, 'daemon-a', '{"verified": true, "method": "a"}')$$, :'d1')),
          'VALIDATION_FAILED', 'a method is txt or cname');
select flowgres.app_domain_verify_finish(:'d1', 'daemon-a', '{"verified": false, "error": "no TXT record"}') as failed \gset
select is(:'failed'::jsonb ->> 'status', 'failed', 'a failed check leaves the domain failed');
select ok((:'failed'::jsonb ->> 'next_retry_at')::timestamptz between now() + interval '59 seconds' and now() + interval '61 seconds',
          'the next check a minute later');
update flowgres.app_domains set verify_attempts = 2 where id = :'d1';
select flowgres.app_domain_verify_begin(:'d1', 'daemon-a') \gset ignored
select flowgres.app_domain_verify_finish(:'d1', 'daemon-a', '{"verified": false, "error": "still nothing"}') as third \gset
select ok((:'third'::jsonb ->> 'next_retry_at')::timestamptz between now() + interval '239 seconds' and now() + interval '241 seconds',
          'doubling with every failure');
select is(:'third'::jsonb ->> 'support_url', 'https://support.flowgres.test/domains', 'after the set number of failures, where to get help');
select test.act_as(null);
select ok(not flowgres.app_domain_verify_due() ? :'d1', 'and the sweep stops checking it');
select ok(flowgres.app_domain_verify_due() ? (select id::text from flowgres.app_domains where domain = 'notflowgres.example'),
          'while it checks a pending domain at once');
select test.act_as(:'owner');
select is((select count(*) from flowgres.runtime_events where app_id = :'app' and event_type = 'domain.verify.failed'), 2::bigint,
          'each failure is an event');
select flowgres.app_domain_verify_begin(:'d1', 'daemon-a') \gset ignored
select is(flowgres.app_domain_verify_finish(:'d1', 'daemon-a', '{"verified": true, "method": "txt"}') - 'updated_at' - 'verified_at'
              - 'created_at' - 'verification' - 'id' - 'workspace_id' - 'app_id' - 'next_retry_at'
              - 'ssl_attempts' - 'ssl_issued_at' - 'ssl_expires_at' - 'ssl_last_error' - 'ssl_next_retry_at',
          jsonb_build_object('domain', 'xn--bcher-kva.example', 'display_domain', 'bücher.example', 'status', 'verified',
                             'verified_by', 'txt', 'verify_attempts', 4, 'last_error', null, 'activated_at', null,
                             'replaced_domain_id', null, 'blocked_at', null, 'blocked_reason', null, 'ssl_status', 'none',
                             'support_url', null),
          'a check that finds the record verifies the domain');

-- activation, one per app, and rollback
select flowgres.app_domain_bind(:'app', 'shop.example.com') ->> 'id' as d2 \gset
update flowgres.app_domains set status = 'verified' where id = :'d2';
select flowgres.app_domain_activate(:'d1') \gset ignored
select is(flowgres.app_domain_activate(:'d2') ->> 'replaced_domain_id', :'d1', 'activating another remembers the one it replaced');
select is((select array_agg(status order by domain) from flowgres.app_domains where id in (:'d1', :'d2')), array['active', 'verified'],
          'which goes back to verified: one active domain per app');
select is(flowgres.app_domain_rollback(:'d2') -> 'restored' ->> 'status', 'active', 'a rollback restores the one replaced');

-- the operator's block
select test.act_as(null);
select is(flowgres.app_domain_block(:'d1', 'phishing reports') ->> 'status', 'blocked', 'the operator blocks the active domain');
select test.act_as(:'owner');
select is(test.error_code_of(format('select flowgres.app_domain_delete(%L)', :'d1')), 'STATE_CONFLICT',
          'a team cannot unbind a blocked domain (and bind it again to shed the block)');
select flowgres.app_domain_activate(:'d2') \gset ignored
select test.act_as(null);
select is(flowgres.app_domain_unblock(:'d1', 'cleared') ->> 'status', 'verified',
          'unblocked, it is verified when the app activated another meanwhile');
select is(test.audit_count(:'ws', 'domain.block') + test.audit_count(:'ws', 'domain.unblock'), 2::bigint, 'both are audited');

select * from finish();
rollback;

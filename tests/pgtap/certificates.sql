-- Certificates of custom domains (0.47), called as SQL inside one transaction: who may order,
-- the claim, the HTTP-01 answers anyone may read, what a finished order must carry, the backoff,
-- the sweep's list and the ACME accounts (the CA itself is in tests/integration/certificates_test.py).
begin;
select plan(34);

select test.published_app('cert-owner@example.com', 'certs') as shop \gset
select (:'shop'::jsonb ->> 'owner') as owner, (:'shop'::jsonb ->> 'workspace') as ws, (:'shop'::jsonb ->> 'app') as app \gset
select test.new_member(:'ws', 'cert-member@example.com', 'member') as member \gset
select test.act_as(:'owner');
select flowgres.app_domain_bind(:'app', 'certs.example.com') ->> 'id' as d \gset

select is(test.error_code_of(format($$select flowgres.app_domain_cert_begin(%L, 'daemon-a')$$, :'d')), 'STATE_CONFLICT',
          'a pending domain gets no certificate');
update flowgres.app_domains set status = 'verified' where id = :'d';
select test.act_as(:'member');
select is(test.error_code_of(format($$select flowgres.app_domain_cert_begin(%L, 'daemon-a')$$, :'d')), 'PERMISSION_DENIED',
          'a member orders nothing');
select test.act_as(:'owner');
select is(flowgres.app_domain_cert_begin(:'d', 'daemon-a') ->> 'ssl_status', 'issuing', 'the owner claims the order');
select is(test.error_code_of(format($$select flowgres.app_domain_cert_begin(%L, 'daemon-b')$$, :'d')), 'STATE_CONFLICT',
          'nobody else orders meanwhile');

-- the HTTP-01 answers
select is(test.error_code_of(format($$select flowgres.app_domain_cert_challenge(%L, 'daemon-b', 'tok', 'tok.x')$$, :'d')),
          'STATE_CONFLICT', 'only the claimant publishes answers');
select is(test.error_code_of(format($$select flowgres.app_domain_cert_challenge(%L, 'daemon-a', '../etc', '../etc.x')$$, :'d')),
          'VALIDATION_FAILED', 'a token is base64url');
select is(test.error_code_of(format($$select flowgres.app_domain_cert_challenge(%L, 'daemon-a', 'tok', 'other.x')$$, :'d')),
          'VALIDATION_FAILED', 'a key authorization begins with its token');
select is(flowgres.app_domain_cert_challenge(:'d', 'daemon-a', 'tok_1-A', 'tok_1-A.thumb'), '{"token": "tok_1-A"}'::jsonb,
          'the claimant publishes one');
select test.act_as(null);
set local role flowgres_user;
select is(flowgres.acme_challenge_answer('tok_1-A'), 'tok_1-A.thumb', 'which anyone may read');
reset role;
select is(flowgres.acme_challenge_answer('nothing'), null, 'an unknown token is nothing');
select is(flowgres.acme_challenge_answer(repeat('a', 1000)), null, 'nor is a huge one');
select test.act_as(:'owner');

-- finishing
select is(test.error_code_of(format($$select flowgres.app_domain_cert_finish(%L, 'daemon-a', '{"issued": true, "chain": "x", "key_sealed": "k", "expires_at": 1}')$$, :'d')),
          'VALIDATION_FAILED', 'a chain is PEM');
select is(test.error_code_of(format($$select flowgres.app_domain_cert_finish(%L, 'daemon-a', '{"issued": true, "chain": "-----BEGIN CERTIFICATE-----", "key_sealed": "k"}')$$, :'d')),
          'VALIDATION_FAILED', 'with its expiry');
select is(test.error_code_of(format($$select flowgres.app_domain_cert_finish(%L, 'daemon-a', '{"issued": false}')$$, :'d')),
          'VALIDATION_FAILED', 'a failure says why');
select flowgres.app_domain_cert_finish(:'d', 'daemon-a', '{"issued": false, "error": "the http-01 challenge failed"}') as failed \gset
select is(:'failed'::jsonb ->> 'ssl_status', 'failed', 'a failed order leaves the certificate failed');
select ok((:'failed'::jsonb ->> 'ssl_next_retry_at')::timestamptz between now() + interval '299 seconds' and now() + interval '301 seconds',
          'retried five minutes later');
select is((select count(*) from flowgres.acme_challenges where domain_id = :'d'), 0::bigint, 'its answers are gone');
select is(test.audit_count(:'ws', 'domain.cert_issue'), 1::bigint, 'the order is audited');
select flowgres.app_domain_cert_begin(:'d', 'daemon-a') \gset ignored
select is(flowgres.app_domain_cert_finish(:'d', 'daemon-a',
              '{"issued": true, "chain": "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n", "key_sealed": "k1:sealed", "expires_at": 4102444800}')
              ->> 'ssl_expires_at', '2100-01-01T00:00:00+00:00', 'an issued certificate records its expiry');
select is(test.error_code_of(format($$select flowgres.app_domain_cert_begin(%L, 'daemon-a')$$, :'d')), 'STATE_CONFLICT',
          'an issued certificate is ordered again only as a renewal');
select is((select count(*) from flowgres.runtime_events where details ->> 'domain_id' = :'d' and event_type like 'cert.%'), 2::bigint,
          'cert.issue.failed and cert.issued are events');

-- the sweep and the accounts
select test.act_as(:'owner');
select is(test.error_code_of('select flowgres.app_domain_cert_due()'), 'PERMISSION_DENIED', 'the sweep''s list is the operator''s');
select is(test.error_code_of($$select flowgres.acme_account_get('https://ca.test/dir')$$), 'PERMISSION_DENIED', 'as are accounts');
select test.act_as(null);
update flowgres.app_domains set ssl_expires_at = now() + interval '10 days' where id = :'d';
select is(flowgres.app_domain_cert_due(), jsonb_build_array(jsonb_build_object('id', :'d', 'renew', true)),
          'a certificate within 30 days of expiry is renewed');
select is(flowgres.app_domain_cert_begin(:'d', 'sweeper', true) ->> 'ssl_status', 'issuing', 'the renewal is claimed');
select is((select count(*) from flowgres.runtime_events where details ->> 'domain_id' = :'d' and event_type = 'cert.expiring'),
          1::bigint, 'and cert.expiring says the certificate ends within 30 days');
select is(flowgres.acme_account_save('https://ca.test/dir', null, 'k1:first', 'https://ca.test/acct/1') ->> 'account_url',
          'https://ca.test/acct/1', 'an account is kept');
select is(flowgres.acme_account_save('https://ca.test/dir', null, 'k1:second', 'https://ca.test/acct/2') ->> 'account_url',
          'https://ca.test/acct/1', 'the first kept wins');

-- what the HTTPS listener may answer for, and what it presents
select test.act_as(:'owner');
select is(test.error_code_of('select flowgres.app_domain_tls_names()'), 'PERMISSION_DENIED',
          'the list of names is the operator''s');
select is(test.error_code_of($$select flowgres.app_domain_tls('certs.example.com')$$), 'PERMISSION_DENIED',
          'as is a certificate');
select test.act_as(null);
select flowgres.app_domain_bind(:'app', 'bare.example.com') ->> 'id' as bare \gset
select is(flowgres.app_domain_tls_names() ? 'certs.example.com', false, 'a certified domain not active is not listed');
update flowgres.app_domains set status = 'active' where id = :'d';
select is(flowgres.app_domain_tls_names() ? 'certs.example.com', true, 'an active one with its certificate is');
update flowgres.app_domains set status = 'verified' where id = :'d';
update flowgres.app_domains set status = 'active' where id = :'bare';
select is(flowgres.app_domain_tls_names() ? 'bare.example.com', false, 'an active one without a certificate is not');
select flowgres.app_domain_block(:'d', 'abuse') \gset ignored
select is(flowgres.app_domain_tls_names() ? 'certs.example.com', false, 'nor is a blocked one');

select * from finish();
rollback;

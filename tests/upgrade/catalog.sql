-- One line per catalog fact of schema flowgres (relations, columns, constraints, indexes,
-- policies, privileges, functions with their bodies and settings, comments, triggers), sorted:
-- scripts/test.sh compares a database updated version by version with a fresh install.
select line from (
    select format('relation %s kind=%s rls=%s force=%s acl=%s', c.relname, c.relkind, c.relrowsecurity, c.relforcerowsecurity,
                  c.relacl::text) as line
    from pg_class c where c.relnamespace = 'flowgres'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f')
    union all
    select format('column %s.%s %s notnull=%s default=%s acl=%s', c.relname, a.attname, format_type(a.atttypid, a.atttypmod),
                  a.attnotnull, pg_get_expr(d.adbin, d.adrelid), a.attacl::text)
    from pg_attribute a join pg_class c on c.oid = a.attrelid
    left join pg_attrdef d on d.adrelid = a.attrelid and d.adnum = a.attnum
    where c.relnamespace = 'flowgres'::regnamespace and c.relkind in ('r', 'p', 'v', 'm', 'f') and a.attnum > 0 and not a.attisdropped
    union all
    select format('constraint %s.%s %s', c.relname, k.conname, pg_get_constraintdef(k.oid))
    from pg_constraint k join pg_class c on c.oid = k.conrelid where c.relnamespace = 'flowgres'::regnamespace
    union all
    select format('index %s', pg_get_indexdef(i.indexrelid))
    from pg_index i join pg_class c on c.oid = i.indrelid where c.relnamespace = 'flowgres'::regnamespace
    union all
    select format('policy %s.%s %s %s using=%s check=%s', tablename, policyname, cmd, roles::text, qual, with_check)
    from pg_policies where schemaname = 'flowgres'
    union all
    select format('trigger %s', pg_get_triggerdef(t.oid))
    from pg_trigger t join pg_class c on c.oid = t.tgrelid where c.relnamespace = 'flowgres'::regnamespace and not t.tgisinternal
    union all
    select format('function %s returns %s lang=%s secdef=%s volatile=%s strict=%s config=%s acl=%s body=%s',
                  p.oid::regprocedure, pg_get_function_result(p.oid), l.lanname, p.prosecdef, p.provolatile, p.proisstrict,
                  p.proconfig::text, p.proacl::text, md5(p.prosrc))
    from pg_proc p join pg_language l on l.oid = p.prolang where p.pronamespace = 'flowgres'::regnamespace
    union all
    select format('comment on %s: %s', pg_describe_object(d.classoid, d.objoid, d.objsubid), md5(d.description))
    from pg_description d
    where (d.classoid = 'pg_class'::regclass and d.objoid in (select oid from pg_class where relnamespace = 'flowgres'::regnamespace))
       or (d.classoid = 'pg_proc'::regclass and d.objoid in (select oid from pg_proc where pronamespace = 'flowgres'::regnamespace))
    union all
    select format('type %s %s', t.typname, t.typtype)
    from pg_type t where t.typnamespace = 'flowgres'::regnamespace and t.typtype in ('e', 'd', 'c')
      and not exists (select 1 from pg_class c where c.reltype = t.oid)
) facts order by line;

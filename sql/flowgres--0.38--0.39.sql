-- flowgres 0.38 → 0.39: the run documents that 0.38 gave domains are compressed with lz4
-- again.
\echo Use "ALTER EXTENSION flowgres UPDATE TO '0.39'" to load this file. \quit

-- 0.26 set lz4 on the documents every run writes (pglz cost about 7% of the server's CPU
-- per visitor run); 0.38 changed four of them to domains, and a column whose type changes
-- takes the default compression again: a visitor's trail was pglz-compressed once more
-- (5% of the server's CPU at 64 connections). No rewrite: values stored since keep their
-- compression, and both are read alike.
alter table executions alter column inputs set compression lz4,
                       alter column error set compression lz4;
alter table execution_trails alter column events set compression lz4,
                             alter column node_logs set compression lz4;

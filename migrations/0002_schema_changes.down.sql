drop table flowgres_meta.schema_changes;

drop table flowgres_meta.workspace_meta;

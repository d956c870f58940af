// Workspace schema planning: db_schema checks, DDL in an order PostgreSQL accepts, the risks a
// reviewer sees, and no plan at all when the catalog (as PostgreSQL prints it) already matches.
// The same planner verifies real applies in tests/integration/schema_changes_test.py.
#include <gtest/gtest.h>

#include <algorithm>

#include "flowgres/json.hpp"
#include "flowgres/schema_plan.hpp"

namespace flowgres::schema_plan {
namespace {

Schema parsed(const char *text) {
    Json document = parse_json(text, "db_schema");
    ValidationProblems problems;
    Schema schema = parse(document.get(), problems);
    EXPECT_TRUE(problems.empty()) << text;
    return schema;
}

// The fields of every problem a document has ("" when none).
std::vector<std::string> problem_fields(const char *text) {
    Json document = parse_json(text, "db_schema");
    ValidationProblems problems;
    parse(document.get(), problems);
    std::vector<std::string> fields;
    try {
        problems.throw_if_any();
    } catch (const Error &error) {
        Json details = parse_json(error.details_json(), "details");
        size_t index;
        json_t *entry;
        json_array_foreach(details.get(), index, entry) fields.push_back(json_string_value(json_object_get(entry, "field")));
    }
    return fields;
}

Plan plan_of(const char *schema_text, const char *catalog_text) {
    Schema schema = parsed(schema_text);
    Json catalog = parse_json(catalog_text, "catalog");
    return plan(schema, catalog.get());
}

std::vector<std::string> actions(const Plan &plan) {
    std::vector<std::string> out;
    for (const auto &step : plan.steps) out.push_back(step.action);
    return out;
}

bool has_risk(const Plan &plan, const std::string &code) {
    for (const auto &step : plan.steps)
        for (const auto &risk : step.risks)
            if (risk.code == code) return true;
    return false;
}

constexpr const char *kNotes = R"J({"tables": [
    {"name": "people", "columns": [{"name": "id", "type": "BIGINT", "identity": true, "primary_key": true},
                                   {"name": "email", "type": "varchar( 200 )", "nullable": false, "unique": true}]},
    {"name": "notes", "columns": [{"name": "id", "type": "bigint", "identity": true, "primary_key": true},
                                  {"name": "author", "type": "bigint", "references": {"table": "people", "column": "id", "on_delete": "cascade"}},
                                  {"name": "body", "type": "text", "nullable": false, "default": "it's"},
                                  {"name": "score", "type": "integer", "default": -5},
                                  {"name": "price", "type": "numeric(10,2)", "default": 1.50},
                                  {"name": "meta", "type": "jsonb", "default": {"a": 1}},
                                  {"name": "created_at", "type": "timestamptz", "nullable": false, "default": {"expression": "now()"}}],
     "indexes": [{"columns": ["author", "created_at"]}]}]})J";

// kNotes as PostgreSQL's catalog shows it once applied (catalog_query's shape).
constexpr const char *kNotesCatalog = R"J({
  "people": {"columns": [{"name": "id", "type": "bigint", "nullable": false, "default": null, "identity": true},
                         {"name": "email", "type": "character varying(200)", "nullable": false, "default": null, "identity": false}],
             "indexes": [{"name": "people_email_key", "unique": true, "primary": false, "constraint": "people_email_key", "partial": false, "columns": ["email"]},
                         {"name": "people_pkey", "unique": true, "primary": true, "constraint": "people_pkey", "partial": false, "columns": ["id"]}],
             "foreign_keys": []},
  "notes": {"columns": [{"name": "id", "type": "bigint", "nullable": false, "default": null, "identity": true},
                        {"name": "author", "type": "bigint", "nullable": true, "default": null, "identity": false},
                        {"name": "body", "type": "text", "nullable": false, "default": "'it''s'::text", "identity": false},
                        {"name": "score", "type": "integer", "nullable": true, "default": "'-5'::integer", "identity": false},
                        {"name": "price", "type": "numeric(10,2)", "nullable": true, "default": "1.5::numeric(10,2)", "identity": false},
                        {"name": "meta", "type": "jsonb", "nullable": true, "default": "'{\"a\": 1}'::jsonb", "identity": false},
                        {"name": "created_at", "type": "timestamp with time zone", "nullable": false, "default": "now()", "identity": false}],
            "indexes": [{"name": "notes_author_created_at_idx", "unique": false, "primary": false, "constraint": null, "partial": false, "columns": ["author", "created_at"]},
                        {"name": "notes_pkey", "unique": true, "primary": true, "constraint": "notes_pkey", "partial": false, "columns": ["id"]}],
            "foreign_keys": [{"name": "notes_author_fkey", "ref_schema": "data", "ref_table": "people", "columns": ["author"],
                              "ref_columns": ["id"], "on_delete": "cascade"}]}})J";

TEST(SchemaPlan, TypesHaveOneSpelling) {
    EXPECT_EQ(canonical_type("VARCHAR ( 20 )"), "character varying(20)");
    EXPECT_EQ(canonical_type("timestamptz"), "timestamp with time zone");
    EXPECT_EQ(canonical_type("numeric(8)"), "numeric(8,0)");
    EXPECT_EQ(canonical_type("int[]"), "integer[]");
    EXPECT_EQ(canonical_type("double   precision"), "double precision");
    for (const char *bad : {"text; drop table x", "varchar(0)", "numeric(2,5)", "serial", "pg_catalog.text", "integer)", ""})
        EXPECT_FALSE(canonical_type(bad)) << bad;
}

TEST(SchemaPlan, AnEmptyDatabaseGetsTablesThenIndexesThenForeignKeys) {
    Plan made = plan_of(kNotes, "{}");
    EXPECT_EQ(actions(made), (std::vector<std::string>{"create_table", "create_table", "create_index", "add_foreign_key"}));
    EXPECT_FALSE(made.destructive());
    EXPECT_EQ(made.steps[0].sql,
              R"J(create table "data"."people" ("id" bigint generated by default as identity not null, )J"
              R"J("email" character varying(200) not null, constraint "people_pkey" primary key ("id"), )J"
              R"J(constraint "people_email_key" unique ("email")))J");
    EXPECT_NE(made.steps[1].sql.find(R"J("body" text default 'it''s'::text not null)J"), std::string::npos) << made.steps[1].sql;
    EXPECT_NE(made.steps[1].sql.find(R"J("meta" jsonb default '{"a":1}'::jsonb)J"), std::string::npos) << made.steps[1].sql;
    EXPECT_EQ(made.steps[2].sql, R"J(create index "notes_author_created_at_idx" on "data"."notes" ("author", "created_at"))J");
    EXPECT_EQ(made.steps[3].sql, R"J(alter table "data"."notes" add constraint "notes_author_fkey" foreign key ("author") )J"
                                 R"J(references "data"."people" ("id") on delete cascade)J");
}

TEST(SchemaPlan, ACatalogThatMatchesNeedsNothing) {
    Plan made = plan_of(kNotes, kNotesCatalog);
    EXPECT_TRUE(made.steps.empty()) << made.to_json();
    EXPECT_EQ(made.to_json(), R"J({"steps":[],"destructive":false,"risks":[]})J");
}

TEST(SchemaPlan, DroppingAndNarrowingAreDestructiveWideningIsNot) {
    Plan made = plan_of(R"J({"tables": [{"name": "t", "columns": [
                              {"name": "a", "type": "bigint"}, {"name": "b", "type": "varchar(10)"},
                              {"name": "c", "type": "text"}, {"name": "d", "type": "integer", "nullable": false}]}],
                            "drop_tables": ["old", "never_was"]})J",
                        R"J({"t": {"columns": [{"name": "a", "type": "integer", "nullable": true, "default": null, "identity": false},
                                              {"name": "b", "type": "text", "nullable": true, "default": null, "identity": false},
                                              {"name": "c", "type": "character varying(5)", "nullable": true, "default": "'x'::character varying", "identity": false},
                                              {"name": "d", "type": "integer", "nullable": true, "default": null, "identity": false},
                                              {"name": "gone", "type": "text", "nullable": true, "default": null, "identity": false}],
                                  "indexes": [], "foreign_keys": []},
                            "old": {"columns": [], "indexes": [], "foreign_keys": []}})J");
    EXPECT_EQ(actions(made), (std::vector<std::string>{"alter_type", "alter_type", "drop_default", "alter_type", "set_not_null",
                                                       "drop_column", "drop_table"}));
    EXPECT_TRUE(made.destructive());
    // integer → bigint keeps every value but rewrites; text → varchar(10) may cut values.
    EXPECT_EQ(made.steps[0].risks.size(), 1u);
    EXPECT_EQ(made.steps[0].risks[0].code, "table_rewrite");
    EXPECT_FALSE(made.steps[0].risks[0].destructive);
    EXPECT_EQ(made.steps[1].risks[0].code, "type_narrowing");
    EXPECT_TRUE(made.steps[1].risks[0].destructive);
    EXPECT_EQ(made.steps[1].sql, R"J(alter table "data"."t" alter column "b" type character varying(10) using "b"::character varying(10))J");
    // varchar(5) → text: binary compatible, no risk; its default goes first and is not set again.
    EXPECT_TRUE(made.steps[3].risks.empty());
    EXPECT_EQ(made.steps[4].risks[0].code, "set_not_null");
    EXPECT_EQ(made.steps[5].sql, R"J(alter table "data"."t" drop column "gone")J");
    EXPECT_EQ(made.steps[6].sql, R"J(drop table "data"."old")J");
    EXPECT_TRUE(has_risk(made, "drop_column"));
    EXPECT_TRUE(has_risk(made, "drop_table"));
}

TEST(SchemaPlan, NewColumnsAndConstraintsOnAnExistingTableCarryTheirRisks) {
    Plan made = plan_of(R"J({"tables": [{"name": "t", "columns": [
                              {"name": "id", "type": "integer", "primary_key": true},
                              {"name": "code", "type": "text", "unique": true},
                              {"name": "must", "type": "text", "nullable": false},
                              {"name": "token", "type": "uuid", "default": {"expression": "gen_random_uuid()"}}],
                            "indexes": [{"name": "t_code_lookup", "columns": ["code"], "unique": true}]}]})J",
                        R"J({"t": {"columns": [{"name": "id", "type": "integer", "nullable": true, "default": null, "identity": false},
                                              {"name": "code", "type": "text", "nullable": true, "default": null, "identity": false}],
                                  "indexes": [{"name": "t_stale_idx", "unique": false, "primary": false, "constraint": null, "partial": false, "columns": ["code"]}],
                                  "foreign_keys": []}})J");
    EXPECT_EQ(actions(made), (std::vector<std::string>{"drop_index", "set_not_null", "add_column", "add_column", "add_primary_key",
                                                       "add_unique", "create_index"}));
    EXPECT_FALSE(made.destructive());
    for (const char *code : {"drop_index", "set_not_null", "not_null_without_default", "table_rewrite", "new_primary_key", "new_unique",
                             "index_build"})
        EXPECT_TRUE(has_risk(made, code)) << code << " " << made.to_json();
}

TEST(SchemaPlan, ChangedKeysAreDroppedBeforeColumnsAndAddedAfter) {
    Plan made = plan_of(R"J({"tables": [{"name": "t", "columns": [{"name": "a", "type": "integer", "primary_key": true},
                                                                 {"name": "b", "type": "integer", "primary_key": true}]}]})J",
                        R"J({"t": {"columns": [{"name": "a", "type": "integer", "nullable": false, "default": null, "identity": false},
                                              {"name": "b", "type": "integer", "nullable": true, "default": null, "identity": false}],
                                  "indexes": [{"name": "t_pkey", "unique": true, "primary": true, "constraint": "t_pkey", "partial": false, "columns": ["a"]}],
                                  "foreign_keys": [{"name": "t_a_fkey", "ref_schema": "data", "ref_table": "x", "columns": ["a"], "ref_columns": ["id"], "on_delete": "no action"}]}})J");
    EXPECT_EQ(actions(made), (std::vector<std::string>{"drop_foreign_key", "drop_primary_key", "set_not_null", "add_primary_key"}));
    EXPECT_EQ(made.steps.back().sql, R"J(alter table "data"."t" add constraint "t_pkey" primary key ("a", "b"))J");
}

TEST(SchemaPlan, DefaultsAreComparedByMeaning) {
    const char *schema = R"J({"tables": [{"name": "t", "columns": [{"name": "a", "type": "real", "default": 0.1},
                                                                 {"name": "b", "type": "uuid", "default": "0E984725-C51C-4BF4-9960-E1C80E27ABA0"},
                                                                 {"name": "c", "type": "boolean", "default": false}]}]})J";
    Plan same = plan_of(schema, R"J({"t": {"columns": [
        {"name": "a", "type": "real", "nullable": true, "default": "0.1", "identity": false},
        {"name": "b", "type": "uuid", "nullable": true, "default": "'0e984725-c51c-4bf4-9960-e1c80e27aba0'::uuid", "identity": false},
        {"name": "c", "type": "boolean", "nullable": true, "default": "false", "identity": false}], "indexes": [], "foreign_keys": []}})J");
    EXPECT_TRUE(same.steps.empty()) << same.to_json();
    Plan changed = plan_of(schema, R"J({"t": {"columns": [
        {"name": "a", "type": "real", "nullable": true, "default": "0.2", "identity": false},
        {"name": "b", "type": "uuid", "nullable": true, "default": null, "identity": false},
        {"name": "c", "type": "boolean", "nullable": true, "default": "true", "identity": false}], "indexes": [], "foreign_keys": []}})J");
    EXPECT_EQ(actions(changed), (std::vector<std::string>{"set_default", "set_default", "set_default"}));
    EXPECT_EQ(changed.steps[0].sql, R"J(alter table "data"."t" alter column "a" set default '0.1'::real)J");
}

TEST(SchemaPlan, ValuesThatCarrySqlStayLiterals) {
    Plan made = plan_of(R"J({"tables": [{"name": "t", "columns": [{"name": "a", "type": "text", "default": "x'); drop table t; --"}]}]})J",
                        "{}");
    ASSERT_EQ(made.steps.size(), 1u);
    EXPECT_EQ(made.steps[0].sql, R"J(create table "data"."t" ("a" text default 'x''); drop table t; --'::text))J");
}

TEST(SchemaPlan, BadDocumentsNameEveryField) {
    EXPECT_EQ(problem_fields(R"J({"tables": [{"name": "Bad\"; drop", "columns": [{"name": "a", "type": "text; drop table x"}]}]})J"),
              (std::vector<std::string>{"db_schema.tables[0].name", "db_schema.tables[0].columns[0].type"}));
    EXPECT_EQ(problem_fields(R"J({"tables": [{"name": "t", "columns": [{"name": "a", "type": "text", "identity": true},
                                                                       {"name": "b", "type": "timestamptz", "default": {"expression": "pg_sleep(10)"}}]}],
                                  "extra": 1})J"),
              (std::vector<std::string>{"db_schema.extra", "db_schema.tables[0].columns[0].identity", "db_schema.tables[0].columns[1].default.expression"}));
    EXPECT_EQ(problem_fields(R"J({"tables": [{"name": "t", "columns": [{"name": "a", "type": "integer", "default": "1"},
                                                                       {"name": "a", "type": "date", "default": {"expression": "gen_random_uuid()"}},
                                                                       {"name": "r", "type": "integer", "references": {"table": "nowhere", "column": "id"}}],
                                              "indexes": [{"columns": ["missing"]}, {"name": "t", "columns": ["a"]}]}],
                              "drop_tables": ["t", "pg_catalog.pg_authid"]})J"),
              (std::vector<std::string>{"db_schema.tables[0].columns[0].default", "db_schema.tables[0].columns[1].default.expression",
                                        "db_schema.tables[0].indexes[0].columns[0]", "db_schema.drop_tables[1]",
                                        "db_schema.tables[0].columns[1].name", "db_schema.tables[0].indexes[1].name",
                                        "db_schema.tables[0].columns[2].references.table", "db_schema.drop_tables[0]"}));
    EXPECT_EQ(problem_fields(R"J({"tables": [{"name": "p", "columns": [{"name": "id", "type": "integer"}]},
                                            {"name": "c", "columns": [{"name": "p", "type": "bigint", "nullable": false,
                                                                       "references": {"table": "p", "column": "id", "on_delete": "set null"}}]}]})J"),
              (std::vector<std::string>{"db_schema.tables[1].columns[0].references.on_delete", "db_schema.tables[1].columns[0].references.column"}));
    EXPECT_EQ(problem_fields("[]"), (std::vector<std::string>{"db_schema"}));
    EXPECT_TRUE(problem_fields("{}").empty());
}

}  // namespace
}  // namespace flowgres::schema_plan

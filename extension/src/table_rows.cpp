// TableRows (table_rows.hpp): COPY FROM's way of storing rows (an executor state with one
// result relation, its indexes opened once, partition routing for a partitioned table), fed
// with values the caller sets by column instead of parsed lines.
#include <set>
#include <string>
#include <vector>

#include "flowgres/errors.hpp"
#include "guard.hpp"
#include "jsonb_document.hpp"
#include "table_rows.hpp"

extern "C" {
#include "access/genam.h"
#include "access/relscan.h"
#include "access/stratnum.h"
#include "access/table.h"
#include "access/tableam.h"
#include "access/toast_compression.h"
#include "access/toast_internals.h"
#include "catalog/index.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "executor/execPartition.h"
#include "executor/executor.h"
#include "nodes/makefuncs.h"
#include "rewrite/rewriteHandler.h"
#include "storage/lmgr.h"
#include "utils/lsyscache.h"
#include "utils/rel.h"
#include "utils/rls.h"
#include "utils/fmgroids.h"
#include "utils/snapmgr.h"
#include "utils/timestamp.h"
}

namespace flowgres {

struct TableRows::State {
    EState *estate = nullptr;
    ResultRelInfo *root = nullptr;  // the table named; for a partitioned one, rows go to a partition
    ModifyTableState *routing_state = nullptr;
    PartitionTupleRouting *routing = nullptr;
    TupleTableSlot *slot = nullptr;
    int columns = 0;
    std::vector<std::string> names;    // by attribute number - 1; "" for a dropped column
    std::vector<Oid> types, base_types;
    std::vector<bool> domains;
    std::vector<void *> domain_caches;  // domain_check()'s, per column
    std::vector<Datum> values;
    std::vector<bool> nulls, given;
    std::vector<bool> compressible;     // a varlena column the heap may compress (storage extended or main)
    std::vector<char> methods;          // its compression method
    std::vector<ExprState *> defaults;  // prepared on first need
    std::vector<bool> defaults_prepared;
};

namespace {

void refuse(const char *table, const char *why) {
    throw Error(ErrorCode::INTERNAL_ERROR, std::string("rows cannot be stored directly into ") + table + ": " + why);
}

// The executor state COPY FROM builds, for `relid` (locked): one range table entry, its result
// relation with indexes, and partition routing when it is partitioned.
void open_table(TableRows::State &state, Oid relid) {
    EState *estate = CreateExecutorState();
    estate->es_output_cid = GetCurrentCommandId(true);
    RangeTblEntry *entry = makeNode(RangeTblEntry);
    entry->rtekind = RTE_RELATION;
    entry->relid = relid;
    entry->relkind = get_rel_relkind(relid);
    entry->rellockmode = RowExclusiveLock;
    entry->requiredPerms = ACL_INSERT;
    ExecInitRangeTable(estate, list_make1(entry));
    ResultRelInfo *root = makeNode(ResultRelInfo);
    ExecInitResultRelation(estate, root, 1);
    CheckValidResultRel(root, CMD_INSERT);
    ExecOpenIndices(root, false);
    ModifyTableState *routing_state = makeNode(ModifyTableState);
    routing_state->ps.plan = nullptr;
    routing_state->ps.state = estate;
    routing_state->operation = CMD_INSERT;
    routing_state->mt_nrels = 1;
    routing_state->resultRelInfo = root;
    routing_state->rootResultRelInfo = root;
    Relation relation = root->ri_RelationDesc;
    if (relation->rd_rel->relkind == RELKIND_PARTITIONED_TABLE)
        state.routing = ExecSetupPartitionTupleRouting(estate, relation);
    state.slot = table_slot_create(relation, &estate->es_tupleTable);
    state.estate = estate;
    state.root = root;
    state.routing_state = routing_state;

    TupleDesc descriptor = RelationGetDescr(relation);
    state.columns = descriptor->natts;
    for (int i = 0; i < descriptor->natts; i++) {
        Form_pg_attribute attribute = TupleDescAttr(descriptor, i);
        state.names.emplace_back(attribute->attisdropped ? "" : NameStr(attribute->attname));
        state.types.push_back(attribute->atttypid);
        state.base_types.push_back(getBaseType(attribute->atttypid));
        state.domains.push_back(get_typtype(attribute->atttypid) == TYPTYPE_DOMAIN);
        state.compressible.push_back(!attribute->attisdropped && attribute->attlen == -1 &&
                                     (attribute->attstorage == TYPSTORAGE_EXTENDED ||
                                      attribute->attstorage == TYPSTORAGE_MAIN));
        state.methods.push_back(CompressionMethodIsValid(attribute->attcompression)
                                    ? attribute->attcompression
                                    : static_cast<char>(default_toast_compression));
    }
}

bool has_insert_triggers(Relation relation) {
    TriggerDesc *triggers = relation->trigdesc;
    return triggers != nullptr && (triggers->trig_insert_before_row || triggers->trig_insert_after_row ||
                                   triggers->trig_insert_instead_row || triggers->trig_insert_before_statement ||
                                   triggers->trig_insert_after_statement || triggers->trig_insert_new_table);
}

// Whatever an INSERT would do for the table that these rows would not: see table_rows.hpp.
const char *unsupported(Relation relation) {
    if (relation->rd_rel->relkind == RELKIND_FOREIGN_TABLE) return "it is a foreign table";
    // As for an INSERT by this user: row-level security that applies to them (not to the
    // table's owner, whom it does not bind unless forced).
    if (check_enable_rls(RelationGetRelid(relation), InvalidOid, false) == RLS_ENABLED)
        return "row-level security applies to its rows";
    if (has_insert_triggers(relation)) return "it has insert triggers";
    if (relation->rd_att->constr != nullptr && relation->rd_att->constr->has_generated_stored)
        return "it has generated columns";
    return nullptr;
}

// A document worth compressing, compressed as its column says (lz4 for the run documents): the
// heap compresses a row's values only past about 2 kB a row (TOAST_TUPLE_THRESHOLD), so a
// visitor's trail of a kilobyte or so was stored, and written to the WAL, whole. Values the
// method cannot shrink, and values already compressed or out of line, are stored as given;
// readers decompress as they would a toasted value.
constexpr Size kCompressFrom = 256;

Datum compressed(Datum value, char method, ExprContext *context) {
    auto *text = reinterpret_cast<struct varlena *>(DatumGetPointer(value));
    if (VARATT_IS_EXTENDED(text) || VARSIZE(text) < kCompressFrom) return value;
    MemoryContext caller = MemoryContextSwitchTo(context->ecxt_per_tuple_memory);
    Datum packed = toast_compress_datum(value, method);
    MemoryContextSwitchTo(caller);
    return DatumGetPointer(packed) != nullptr ? packed : value;
}

// One row: defaults for the columns not given, domain checks, the partition, constraints, the
// heap tuple and its index entries. Owns no C++ resources (it runs under guard()).
void store_row(TableRows::State &state) {
    EState *estate = state.estate;
    ResetPerTupleExprContext(estate);
    ExprContext *context = GetPerTupleExprContext(estate);
    TupleTableSlot *slot = state.slot;
    ExecClearTuple(slot);
    Relation relation = state.root->ri_RelationDesc;
    for (int i = 0; i < state.columns; i++) {
        if (state.names[i].empty()) {
            slot->tts_values[i] = 0;
            slot->tts_isnull[i] = true;
            continue;
        }
        if (!state.given[i]) {
            if (!state.defaults_prepared[i]) {
                Node *expression = build_column_default(relation, i + 1);
                state.defaults[i] = expression != nullptr ? ExecPrepareExpr(reinterpret_cast<Expr *>(expression), estate)
                                                          : nullptr;
                state.defaults_prepared[i] = true;
            }
            if (state.defaults[i] != nullptr) {
                bool is_null = false;
                MemoryContext caller = MemoryContextSwitchTo(context->ecxt_per_tuple_memory);
                state.values[i] = ExecEvalExpr(state.defaults[i], context, &is_null);
                MemoryContextSwitchTo(caller);
                state.nulls[i] = is_null;
            } else {
                state.values[i] = 0;
                state.nulls[i] = true;
            }
        } else if (state.domains[i]) {
            domain_check(state.values[i], state.nulls[i], state.types[i], &state.domain_caches[i],
                         estate->es_query_cxt);
        }
        slot->tts_values[i] = state.values[i];
        slot->tts_isnull[i] = state.nulls[i];
        if (!state.nulls[i] && state.compressible[i]) slot->tts_values[i] = compressed(state.values[i], state.methods[i], context);
    }
    ExecStoreVirtualTuple(slot);
    slot->tts_tableOid = RelationGetRelid(relation);

    ResultRelInfo *target = state.root;
    TupleTableSlot *stored = slot;
    if (state.routing != nullptr) {
        target = ExecFindPartition(state.routing_state, state.root, state.routing, slot, estate);
        if (target->ri_RootToPartitionMap != nullptr)
            stored = execute_attr_map_slot(target->ri_RootToPartitionMap->attrMap, slot, target->ri_PartitionTupleSlot);
        // Row-level security is the partitioned table's (checked at open), triggers a partition's own.
        if (has_insert_triggers(target->ri_RelationDesc))
            elog(ERROR, "flowgres: partition %s has insert triggers", RelationGetRelationName(target->ri_RelationDesc));
    }
    if (target->ri_RelationDesc->rd_att->constr != nullptr) ExecConstraints(target, stored, estate);
    table_tuple_insert(target->ri_RelationDesc, stored, estate->es_output_cid, 0, nullptr);
    if (target->ri_NumIndices > 0) ExecInsertIndexTuples(target, stored, estate, false, false, nullptr, NIL);
}

}  // namespace

TableRows::TableRows(const char *schema, const char *table) : state_(std::make_unique<State>()) {
    const char *why = guard([&] {
        Oid relid = RangeVarGetRelid(makeRangeVar(const_cast<char *>(schema), const_cast<char *>(table), -1),
                                     RowExclusiveLock, false);
        Relation relation = table_open(relid, NoLock);
        const char *reason = unsupported(relation);
        table_close(relation, NoLock);
        if (reason == nullptr) open_table(*state_, relid);
        return reason;
    });
    if (why != nullptr) refuse(table, why);
    State &state = *state_;
    state.domain_caches.assign(state.columns, nullptr);
    state.values.assign(state.columns, 0);
    state.nulls.assign(state.columns, true);
    state.given.assign(state.columns, false);
    state.defaults.assign(state.columns, nullptr);
    state.defaults_prepared.assign(state.columns, false);
}

bool TableRows::can_store(const char *schema, const char *table) {
    return guard([&] {
        Oid relid = RangeVarGetRelid(makeRangeVar(const_cast<char *>(schema), const_cast<char *>(table), -1),
                                     RowExclusiveLock, false);
        Relation relation = table_open(relid, NoLock);
        bool plain = unsupported(relation) == nullptr;
        table_close(relation, NoLock);
        return plain;
    });
}

// Nothing PostgreSQL's own: after an error the transaction's abort releases the table, and a
// close() that did not happen because C++ unwound has nothing left to keep.
TableRows::~TableRows() = default;

int TableRows::column(std::string_view name, unsigned base_type) {
    State &state = *state_;
    for (int i = 0; i < state.columns; i++) {
        if (state.names[i] != name) continue;
        if (state.base_types[i] != base_type)
            throw Error(ErrorCode::INTERNAL_ERROR, "column " + std::string(name) + " is not of the type its value is");
        state.given[i] = true;
        state.nulls[i] = false;
        return i;
    }
    throw Error(ErrorCode::INTERNAL_ERROR, "no column " + std::string(name) + " to store a value in");
}

void TableRows::uuid(std::string_view name, std::string_view text) {
    int i = column(name, UUIDOID);
    std::string value(text);
    state_->values[i] = guard([&] { return DirectFunctionCall1(uuid_in, CStringGetDatum(value.c_str())); });
}

void TableRows::text(std::string_view name, std::string_view value) {
    int i = column(name, TEXTOID);
    state_->values[i] = guard([&] {
        return PointerGetDatum(cstring_to_text_with_len(value.data(), static_cast<int>(value.size())));
    });
}

void TableRows::bigint(std::string_view name, long long value) {
    int i = column(name, INT8OID);
    state_->values[i] = Int64GetDatum(value);
}

void TableRows::integer(std::string_view name, int value) {
    int i = column(name, INT4OID);
    state_->values[i] = Int32GetDatum(value);
}

void TableRows::boolean(std::string_view name, bool value) {
    int i = column(name, BOOLOID);
    state_->values[i] = BoolGetDatum(value);
}

void TableRows::jsonb(std::string_view name, const JsonbRef &value) {
    if (!value.present()) return null(name);
    int i = column(name, JSONBOID);
    state_->values[i] = PointerGetDatum(jsonb_copy(value));
}

void TableRows::jsonb_text(std::string_view name, const std::string &json, bool strip_nulls) {
    int i = column(name, JSONBOID);
    state_->values[i] = guard([&] {
        Datum parsed = DirectFunctionCall1(jsonb_in, CStringGetDatum(json.c_str()));
        return strip_nulls ? DirectFunctionCall1(jsonb_strip_nulls, parsed) : parsed;
    });
}

void TableRows::timestamptz_text(std::string_view name, const std::string &text) {
    int i = column(name, TIMESTAMPTZOID);
    state_->values[i] = guard([&] {
        return DirectFunctionCall3(timestamptz_in, CStringGetDatum(text.c_str()), ObjectIdGetDatum(InvalidOid),
                                   Int32GetDatum(-1));
    });
}

void TableRows::transaction_start(std::string_view name) {
    int i = column(name, TIMESTAMPTZOID);
    state_->values[i] = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
}

void TableRows::null(std::string_view name) {
    State &state = *state_;
    for (int i = 0; i < state.columns; i++)
        if (state.names[i] == name) {
            state.given[i] = true;
            state.nulls[i] = true;
            state.values[i] = 0;
            return;
        }
    throw Error(ErrorCode::INTERNAL_ERROR, "no column " + std::string(name) + " to store a value in");
}

void TableRows::insert() {
    State &state = *state_;
    guard([&] {
        CHECK_FOR_INTERRUPTS();
        store_row(state);
    });
    state.given.assign(state.columns, false);
    state.nulls.assign(state.columns, true);
}

void TableRows::close() {
    State &state = *state_;
    if (state.estate == nullptr) return;
    guard([&] {
        ExecResetTupleTable(state.estate->es_tupleTable, false);
        if (state.routing != nullptr) ExecCleanupTupleRouting(state.routing_state, state.routing);
        ExecCloseResultRelations(state.estate);
        ExecCloseRangeTableRelations(state.estate);
        FreeExecutorState(state.estate);
    });
    state.estate = nullptr;
}

std::set<std::string, std::less<>> uuids_indexed(const char *schema, const char *index, const std::vector<std::string> &ids) {
    std::set<std::string, std::less<>> found;
    if (ids.empty()) return found;
    std::vector<char> hits(ids.size(), 0);
    guard([&] {
        Oid index_id = RangeVarGetRelid(makeRangeVar(const_cast<char *>(schema), const_cast<char *>(index), -1),
                                        AccessShareLock, false);
        Relation table = table_open(IndexGetRelation(index_id, false), AccessShareLock);
        Relation index_relation = index_open(index_id, AccessShareLock);
        if (index_relation->rd_index->indnkeyatts != 1 || TupleDescAttr(RelationGetDescr(index_relation), 0)->atttypid != UUIDOID)
            elog(ERROR, "flowgres: %s is not an index on one uuid column", index);
        TupleTableSlot *slot = table_slot_create(table, nullptr);
        IndexScanDesc scan = index_beginscan(table, index_relation, GetActiveSnapshot(), 1, 0);
        for (size_t i = 0; i < ids.size(); i++) {
            CHECK_FOR_INTERRUPTS();
            ScanKeyData key;
            ScanKeyInit(&key, 1, BTEqualStrategyNumber, F_UUID_EQ,
                        DirectFunctionCall1(uuid_in, CStringGetDatum(ids[i].c_str())));
            index_rescan(scan, &key, 1, nullptr, 0);
            hits[i] = index_getnext_slot(scan, ForwardScanDirection, slot) ? 1 : 0;
        }
        index_endscan(scan);
        ExecDropSingleTupleTableSlot(slot);
        index_close(index_relation, AccessShareLock);
        table_close(table, AccessShareLock);
    });
    for (size_t i = 0; i < ids.size(); i++)
        if (hits[i]) found.insert(ids[i]);
    return found;
}

}  // namespace flowgres

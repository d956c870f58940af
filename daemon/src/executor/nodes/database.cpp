// db_select, db_insert, db_update, db_delete, db_query: the config's values rendered, the
// table's columns looked up in the workspace's catalog (kept across runs: see
// WorkspaceDatabase::columns), the statement built by core/database_steps (names quoted,
// values bound) and run as the workspace's role. The output is {"count", "rows"}; a write also
// reports data_written.
//
// Columns kept from an earlier look may be out of date: a step that finds a name missing, or
// whose statement the server refuses for a missing column or table or a privilege, looks at
// the catalog again and tries once more. A statement refused that way changed nothing, so the
// second try is the step's only effect.
#include <map>
#include <memory>

#include "executor/nodes/nodes.hpp"
#include "flowgres/database_steps.hpp"
#include "flowgres/errors.hpp"

namespace flowgres::executor::nodes {
namespace {

class DatabaseTask : public NodeTask, public std::enable_shared_from_this<DatabaseTask> {
public:
    DatabaseTask(std::shared_ptr<WorkspaceDatabase> database, std::string node_id, std::string type, Json config, NodeDone done)
        : database_(std::move(database)), node_id_(std::move(node_id)), type_(std::move(type)), config_(std::move(config)),
          done_(std::move(done)) {}

    void start() {
        if (type_ == "db_query") return run({});
        const char *table = json_string_value(json_object_get(config_.get(), "table"));
        auto self = shared_from_this();
        database_->columns(table ? table : "", [self](DatabaseAnswer answer) {
            if (self->cancelled_) return;
            if (!answer.ok) return self->finish(NodeOutcome::failure(answer.error_code, answer.message));
            std::map<std::string, std::string> columns;
            try {
                Json catalog = parse_json(answer.value, "catalog");
                const char *name;
                json_t *type;
                json_object_foreach(catalog.get(), name, type) columns[name] = json_string_value(type) ? json_string_value(type) : "";
            } catch (const Error &error) {
                return self->finish(NodeOutcome::failure("NODE_FAILED", error.message()));
            }
            self->run(columns);
        });
    }

    void cancel() override { cancelled_ = true; }

private:
    void run(const std::map<std::string, std::string> &columns) {
        database_steps::Statement statement;
        try {
            statement = database_steps::build(type_, config_.get(), columns, database_->max_rows);
        } catch (const database_steps::StepError &error) {
            if (look_again()) return;
            return finish(NodeOutcome::failure("NODE_FAILED", error.what()));
        }
        auto self = shared_from_this();
        std::string table = statement.table;
        bool writes = statement.writes;
        database_->query(std::move(statement.sql), std::move(statement.params), [self, table, writes](DatabaseAnswer answer) {
            if (self->cancelled_) return;
            // 42703 undefined_column, 42P01 undefined_table, 42501 insufficient_privilege.
            bool stale = answer.sqlstate == "42703" || answer.sqlstate == "42P01" || answer.sqlstate == "42501";
            if (!answer.ok && stale && self->look_again()) return;
            if (!answer.ok) return self->finish(NodeOutcome::failure(answer.error_code, answer.message));
            Json output;
            try {
                output = parse_json(answer.value, "result");
            } catch (const Error &error) {
                return self->finish(NodeOutcome::failure("NODE_FAILED", error.message()));
            }
            long long count = json_integer_value(json_object_get(output.get(), "count"));
            if (writes && count > 0) self->database_->data_written(self->node_id_, table, count);
            self->finish(NodeOutcome::success(std::move(output)));
        });
    }

    // Once per step: the table's kept columns forgotten and the step started again from the
    // catalog. False when it has been done (or the step reads no table).
    bool look_again() {
        if (looked_again_ || type_ == "db_query") return false;
        looked_again_ = true;
        const char *table = json_string_value(json_object_get(config_.get(), "table"));
        database_->forget_columns(table ? table : "");
        start();
        return true;
    }

    void finish(NodeOutcome outcome) {
        if (done_) {
            NodeDone done = std::move(done_);
            done_ = nullptr;
            done(std::move(outcome));
        }
    }

    std::shared_ptr<WorkspaceDatabase> database_;
    std::string node_id_;
    std::string type_;
    Json config_;
    NodeDone done_;
    bool cancelled_ = false;
    bool looked_again_ = false;
};

// The engine owns the task through this handle; the task itself lives as long as a query
// of it is in flight (a cancelled run's late answers find it and are ignored).
class DatabaseTaskHandle : public NodeTask {
public:
    explicit DatabaseTaskHandle(std::shared_ptr<DatabaseTask> task) : task_(std::move(task)) {}
    ~DatabaseTaskHandle() override { task_->cancel(); }
    void cancel() override { task_->cancel(); }

private:
    std::shared_ptr<DatabaseTask> task_;
};

}  // namespace

std::unique_ptr<NodeTask> run_database_step(NodeCall &call, NodeDone done) {
    if (!call.options.database) {
        done(NodeOutcome::failure("NODE_FAILED", "this run has no workspace database to use"));
        return nullptr;
    }
    Json config;
    try {
        config = Json(render_json_templates(call.node.config.get(), call.roots));
    } catch (const std::exception &error) {
        done(NodeOutcome::failure("NODE_FAILED", error.what()));
        return nullptr;
    }
    auto task = std::make_shared<DatabaseTask>(call.options.database, call.node.id, call.node.type, std::move(config), std::move(done));
    task->start();
    return std::make_unique<DatabaseTaskHandle>(task);
}

}  // namespace flowgres::executor::nodes

// The workflow model of seed §52 and its validation, shared by the extension (version_create)
// and the daemon (before running). Parsing normalises the protocol's spellings: config may
// sit on the node or under data, so may label, inputs and outputs; camelCase config keys
// (maxTokens, retryCount, outputSchema) become snake_case (max_tokens, retry_count,
// output_schema). Validation reports every problem at once, each with its node id and field.
// Node types live in a registry, so llm and db steps are added without touching the engine.
// Not for: running a workflow (the daemon's executor) or the UI schema (ui_schema.hpp).
#pragma once

#include <map>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "flowgres/json.hpp"

namespace flowgres::workflow {

inline constexpr size_t kMaxNodes = 1000;
inline constexpr size_t kMaxEdges = 5000;

struct Port {
    std::string name;  // the port's id or name
    std::string type;  // "string", "number", … (free text; checked by the UI schema)
    bool required = false;
};

struct Node {
    std::string id;
    std::string type;
    std::string label;
    Json config;  // always an object, keys snake_case
    std::vector<Port> inputs;
    std::vector<Port> outputs;
    size_t index = 0;  // position in the document, for field paths
};

struct Edge {
    std::string id;
    std::string source;
    std::string source_handle;  // "" when not given
    std::string target;
    std::string target_handle;
    size_t index = 0;
};

struct Workflow {
    std::vector<Node> nodes;
    std::vector<Edge> edges;
    const Node *find(std::string_view id) const;
    const Node *start() const;  // the one start node, once validated
    // The start node's inputs: what {{name}} and {{inputs.name}} refer to.
    std::vector<Port> start_inputs() const;
};

struct Problem {
    std::string node_id;  // "" for problems of the whole document or of an edge
    std::string field;    // "nodes[2].config.url", "edges[0].target", …
    std::string message;
};

class Problems {
public:
    void add(std::string node_id, std::string field, std::string message);
    bool empty() const { return list_.empty(); }
    const std::vector<Problem> &list() const { return list_; }
    // [{"node_id", "field", "message"}, …]
    std::string to_json() const;

private:
    std::vector<Problem> list_;
};

// What a node type requires and offers. `check` reports problems in the node's own config;
// `output_handles` lists the only source handles its edges may use (empty: any, or none
// needed); `terminal` types end a path (output, end).
struct NodeType {
    std::string name;
    void (*check)(const Node &node, const std::string &field, Problems &problems) = nullptr;
    std::vector<std::string> output_handles;
    bool terminal = false;
    // Names a `variable` node sets for downstream {{vars.name}} references ("" when none).
    std::string (*sets_variable)(const Node &node) = nullptr;
    // The config fields where a credential belongs (http: "headers", "query"): the only places
    // {{secrets.NAME}} may appear, the field itself or anything inside it.
    std::vector<std::string> credential_fields = {};
};

class NodeTypeRegistry {
public:
    void add(NodeType type);
    const NodeType *find(std::string_view name) const;
    std::vector<std::string> names() const;
    // start, input, transform, condition, variable, http, llm, delay, db_*, output, end.
    static const NodeTypeRegistry &builtin();

private:
    std::map<std::string, NodeType, std::less<>> types_;
};

// Parses and normalises; shape problems (a node that is not an object, an id that is not a
// string) are reported, and such nodes or edges are left out of the result.
Workflow parse_workflow(const json_t *document, Problems &problems);

// All problems of `document` against the registry: structure, node configs, edges and
// handles, one start, an output or end, no cycles, every node reachable from start, every
// {{reference}} resolvable to a start input, an upstream node or an upstream variable.
Problems validate_workflow(const json_t *document, const NodeTypeRegistry &registry = NodeTypeRegistry::builtin());

// Whether `config_path` (relative to the node's config: "headers.Authorization") lies in one
// of the type's credential fields.
bool is_credential_field(const NodeType &type, std::string_view config_path);

// The secret names a validated workflow's credential fields reference ({{secrets.NAME}}), for
// the daemon to open before the run. Empty for most workflows.
std::set<std::string> referenced_secrets(const Workflow &workflow,
                                         const NodeTypeRegistry &registry = NodeTypeRegistry::builtin());
// The model ids a validated workflow's llm steps name (model, candidates, fallbacks), for the
// daemon to find routes to before the run.
std::set<std::string> referenced_models(const Workflow &workflow);

// The same for one node.
std::set<std::string> referenced_secrets(const Node &node, const NodeTypeRegistry &registry = NodeTypeRegistry::builtin());

// Node ids in an order where every node comes after all its upstream nodes (Kahn). Only for
// validated workflows (no cycles).
std::vector<std::string> topological_order(const Workflow &workflow);

// The common per-node options every node type accepts, in milliseconds and counts.
struct NodeOptions {
    std::optional<long long> timeout_ms;
    long long retry_count = 0;
    long long retry_delay_ms = 0;
};
NodeOptions node_options(const Node &node);

}  // namespace flowgres::workflow

// Parsing, normalising and validating workflows. Node-type rules are in workflow_nodes.cpp.
#include "flowgres/workflow.hpp"

#include <algorithm>
#include <cctype>
#include <deque>
#include <functional>

#include "flowgres/errors.hpp"
#include "flowgres/secrets.hpp"
#include "flowgres/template.hpp"

namespace flowgres::workflow {

const Node *Workflow::find(std::string_view id) const {
    for (const Node &node : nodes)
        if (node.id == id) return &node;
    return nullptr;
}

const Node *Workflow::start() const {
    for (const Node &node : nodes)
        if (node.type == "start") return &node;
    return nullptr;
}

std::vector<Port> Workflow::start_inputs() const {
    std::vector<Port> ports;
    for (const Node &node : nodes) {
        if (node.type == "start") {
            ports.insert(ports.end(), node.inputs.begin(), node.inputs.end());
            // A start that declares only outputs (seed §52's example does both) offers those.
            if (node.inputs.empty()) ports.insert(ports.end(), node.outputs.begin(), node.outputs.end());
        } else if (node.type == "input") {
            if (const char *name = json_string_value(json_object_get(node.config.get(), "name")))
                ports.push_back(Port{name, "", false});
        }
    }
    return ports;
}

void Problems::add(std::string node_id, std::string field, std::string message) {
    list_.push_back(Problem{std::move(node_id), std::move(field), std::move(message)});
}

std::string Problems::to_json() const {
    std::string out = "[";
    for (const Problem &problem : list_) {
        if (out.size() > 1) out += ",";
        out += "{\"node_id\":" + (problem.node_id.empty() ? std::string("null") : json_quote(problem.node_id)) +
               ",\"field\":" + json_quote(problem.field) + ",\"message\":" + json_quote(problem.message) + "}";
    }
    return out + "]";
}

void NodeTypeRegistry::add(NodeType type) {
    types_[type.name] = std::move(type);
}

const NodeType *NodeTypeRegistry::find(std::string_view name) const {
    auto found = types_.find(name);
    return found == types_.end() ? nullptr : &found->second;
}

std::vector<std::string> NodeTypeRegistry::names() const {
    std::vector<std::string> out;
    for (const auto &[name, type] : types_) out.push_back(name);
    return out;
}

namespace {

std::string snake_case(std::string_view key) {
    std::string out;
    for (char c : key) {
        if (std::isupper(static_cast<unsigned char>(c))) {
            if (!out.empty() && out.back() != '_') out += '_';
            out += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
        } else {
            out += c;
        }
    }
    return out;
}

bool valid_id(std::string_view id) {
    if (id.empty() || id.size() > 64) return false;
    for (char c : id)
        if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_' && c != '-') return false;
    return true;
}

// config from node.config, then data.config (seed §52 lets either carry it); keys normalised
// to snake_case. The first spelling of a key wins: node.config over data.config, and within
// one object the key written first.
Json normalised_config(const json_t *node, const json_t *data) {
    Json config(new_json_object());
    auto merge = [&](const json_t *source) {
        if (!json_is_object(source)) return;
        const char *key;
        json_t *value;
        json_object_foreach(const_cast<json_t *>(source), key, value) {
            std::string name = snake_case(key);
            if (!json_object_get(config.get(), name.c_str())) json_object_set(config.get(), name.c_str(), value);
        }
    };
    merge(json_object_get(node, "config"));
    if (json_is_object(data)) merge(json_object_get(data, "config"));
    return config;
}

std::vector<Port> parse_ports(const json_t *list, const std::string &field, const std::string &node_id,
                              Problems &problems) {
    std::vector<Port> ports;
    if (list == nullptr || json_is_null(list)) return ports;
    if (!json_is_array(list)) {
        problems.add(node_id, field, "must be an array of ports");
        return ports;
    }
    size_t index;
    json_t *port;
    json_array_foreach(const_cast<json_t *>(list), index, port) {
        std::string at = field + "[" + std::to_string(index) + "]";
        if (json_is_string(port)) {  // a bare name is a port of that name
            ports.push_back(Port{json_string_value(port), "", false});
            continue;
        }
        const char *name = json_string_value(json_object_get(port, "name"));
        if (!name) name = json_string_value(json_object_get(port, "id"));
        if (!name) name = json_string_value(json_object_get(port, "key"));
        if (!json_is_object(port) || !name || !valid_id(name)) {
            problems.add(node_id, at, "must be an object with a name (letters, digits, _ and -)");
            continue;
        }
        const char *type = json_string_value(json_object_get(port, "type"));
        ports.push_back(Port{name, type ? type : "", json_is_true(json_object_get(port, "required"))});
    }
    return ports;
}

// Every string inside `value` with its field path, for template checks.
void each_string(const json_t *value, const std::string &field,
                 const std::function<void(const std::string &, const std::string &)> &visit) {
    if (json_is_string(value)) {
        visit(field, std::string(json_string_value(value), json_string_length(value)));
    } else if (json_is_array(value)) {
        size_t index;
        json_t *item;
        json_array_foreach(const_cast<json_t *>(value), index, item)
            each_string(item, field + "[" + std::to_string(index) + "]", visit);
    } else if (json_is_object(value)) {
        const char *key;
        json_t *item;
        json_object_foreach(const_cast<json_t *>(value), key, item) each_string(item, field + "." + key, visit);
    }
}

}  // namespace

Workflow parse_workflow(const json_t *document, Problems &problems) {
    Workflow workflow;
    if (!json_is_object(document)) {
        problems.add("", "workflow", "must be a JSON object with nodes and edges");
        return workflow;
    }
    const json_t *nodes = json_object_get(document, "nodes");
    if (!json_is_array(nodes) || json_array_size(nodes) == 0) {
        problems.add("", "nodes", "must be a non-empty array");
        return workflow;
    }
    if (json_array_size(nodes) > kMaxNodes) {
        problems.add("", "nodes",
                     "has " + std::to_string(json_array_size(nodes)) + " nodes; at most " + std::to_string(kMaxNodes) +
                         " are allowed");
        return workflow;
    }
    size_t index;
    json_t *item;
    json_array_foreach(const_cast<json_t *>(nodes), index, item) {
        std::string field = "nodes[" + std::to_string(index) + "]";
        if (!json_is_object(item)) {
            problems.add("", field, "must be an object");
            continue;
        }
        const char *id = json_string_value(json_object_get(item, "id"));
        if (!id || !valid_id(id)) {
            problems.add("", field + ".id", "must be 1 to 64 letters, digits, _ or -");
            continue;
        }
        const char *type = json_string_value(json_object_get(item, "type"));
        const json_t *data = json_object_get(item, "data");
        if (data && !json_is_object(data)) problems.add(id, field + ".data", "must be an object");
        Node node;
        node.id = id;
        node.type = type ? type : "";
        node.index = index;
        const char *label = json_string_value(json_object_get(item, "label"));
        if (!label && json_is_object(data)) label = json_string_value(json_object_get(data, "label"));
        node.label = label ? label : "";
        node.config = normalised_config(item, data);
        for (const char *key : {"config"}) {
            const json_t *value = json_object_get(item, key);
            if (value && !json_is_object(value)) problems.add(id, field + "." + key, "must be an object");
        }
        const json_t *inputs = json_object_get(item, "inputs");
        if (!inputs && json_is_object(data)) inputs = json_object_get(data, "inputs");
        node.inputs = parse_ports(inputs, field + ".inputs", id, problems);
        const json_t *outputs = json_object_get(item, "outputs");
        if (!outputs && json_is_object(data)) outputs = json_object_get(data, "outputs");
        node.outputs = parse_ports(outputs, field + ".outputs", id, problems);
        workflow.nodes.push_back(std::move(node));
    }

    const json_t *edges = json_object_get(document, "edges");
    if (edges && !json_is_array(edges)) {
        problems.add("", "edges", "must be an array");
        return workflow;
    }
    if (json_array_size(edges) > kMaxEdges) {
        problems.add("", "edges", "has more than " + std::to_string(kMaxEdges) + " edges");
        return workflow;
    }
    json_array_foreach(const_cast<json_t *>(edges), index, item) {
        std::string field = "edges[" + std::to_string(index) + "]";
        const char *source = json_string_value(json_object_get(item, "source"));
        const char *target = json_string_value(json_object_get(item, "target"));
        if (!json_is_object(item) || !source || !target) {
            problems.add("", field, "must be an object with source and target node ids");
            continue;
        }
        auto text = [&](const char *key) {
            const char *value = json_string_value(json_object_get(item, key));
            return std::string(value ? value : "");
        };
        workflow.edges.push_back(
            Edge{text("id"), source, text("sourceHandle").empty() ? text("source_handle") : text("sourceHandle"),
                 target, text("targetHandle").empty() ? text("target_handle") : text("targetHandle"), index});
    }
    return workflow;
}

std::vector<std::string> topological_order(const Workflow &workflow) {
    std::map<std::string, size_t> incoming;
    std::map<std::string, std::vector<std::string>> next;
    for (const Node &node : workflow.nodes) incoming[node.id];
    for (const Edge &edge : workflow.edges) {
        if (!incoming.count(edge.source) || !incoming.count(edge.target)) continue;
        incoming[edge.target]++;
        next[edge.source].push_back(edge.target);
    }
    std::deque<std::string> ready;
    for (const Node &node : workflow.nodes)  // document order among equals: stable output
        if (incoming[node.id] == 0) ready.push_back(node.id);
    std::vector<std::string> order;
    while (!ready.empty()) {
        std::string id = ready.front();
        ready.pop_front();
        order.push_back(id);
        for (const std::string &target : next[id])
            if (--incoming[target] == 0) ready.push_back(target);
    }
    return order;
}

NodeOptions node_options(const Node &node) {
    NodeOptions options;
    const json_t *config = node.config.get();
    if (const json_t *timeout = json_object_get(config, "timeout"); json_is_integer(timeout))
        options.timeout_ms = json_integer_value(timeout);
    if (const json_t *retries = json_object_get(config, "retry_count"); json_is_integer(retries))
        options.retry_count = json_integer_value(retries);
    if (const json_t *delay = json_object_get(config, "retry_delay"); json_is_integer(delay))
        options.retry_delay_ms = json_integer_value(delay);
    return options;
}

namespace {

// {{secrets.NAME}}: the one root no node, input or variable may take.
constexpr std::string_view kSecretsRoot = "secrets";

// "http: headers, query; …" for the message that refuses a secret elsewhere.
std::string credential_field_list(const NodeTypeRegistry &registry) {
    std::string out;
    for (const auto &name : registry.names()) {
        const NodeType *type = registry.find(name);
        if (!type || type->credential_fields.empty()) continue;
        std::string fields;
        for (const auto &field : type->credential_fields) fields += (fields.empty() ? "" : " and ") + field;
        out += (out.empty() ? "" : "; ") + name + " " + fields;
    }
    return out.empty() ? "none" : out;
}

void check_common_options(const Node &node, const std::string &field, Problems &problems) {
    auto integer_in = [&](const char *key, long long low, long long high) {
        const json_t *value = json_object_get(node.config.get(), key);
        if (value && (!json_is_integer(value) || json_integer_value(value) < low || json_integer_value(value) > high))
            problems.add(node.id, field + ".config." + key,
                         "must be an integer from " + std::to_string(low) + " to " + std::to_string(high));
    };
    integer_in("timeout", 1, 600000);
    integer_in("retry_count", 0, 10);
    integer_in("retry_delay", 0, 60000);
}

}  // namespace

Problems validate_workflow(const json_t *document, const NodeTypeRegistry &registry) {
    Problems problems;
    Workflow workflow = parse_workflow(document, problems);
    if (workflow.nodes.empty()) return problems;

    // Ids, types and each node's own configuration.
    std::set<std::string> ids;
    size_t starts = 0, terminals = 0;
    for (const Node &node : workflow.nodes) {
        std::string field = "nodes[" + std::to_string(node.index) + "]";
        if (!ids.insert(node.id).second) problems.add(node.id, field + ".id", "is used by another node");
        const NodeType *type = registry.find(node.type);
        if (!type) {
            std::string known;
            for (const auto &name : registry.names()) known += (known.empty() ? "" : ", ") + name;
            problems.add(node.id, field + ".type", "must be one of " + known);
            continue;
        }
        if (node.id == kSecretsRoot)
            problems.add(node.id, field + ".id", "\"secrets\" is reserved for {{secrets.NAME}}");
        if (node.type == "start") {
            starts++;
            for (const Port &port : node.inputs)
                if (port.name == kSecretsRoot)
                    problems.add(node.id, field + ".inputs", "\"secrets\" is reserved for {{secrets.NAME}}");
        }
        if (type->terminal) terminals++;
        check_common_options(node, field, problems);
        if (type->check) type->check(node, field, problems);
    }
    if (starts != 1)
        problems.add("", "nodes", "must have exactly one start node (found " + std::to_string(starts) + ")");
    if (terminals == 0) problems.add("", "nodes", "must have at least one output or end node");

    // Edges: between existing nodes, through handles the nodes have.
    std::vector<Edge> sound_edges;
    for (const Edge &edge : workflow.edges) {
        std::string field = "edges[" + std::to_string(edge.index) + "]";
        const Node *source = workflow.find(edge.source);
        const Node *target = workflow.find(edge.target);
        if (!source) problems.add("", field + ".source", "names no node: " + edge.source);
        if (!target) problems.add("", field + ".target", "names no node: " + edge.target);
        if (!source || !target) continue;
        if (edge.source == edge.target) {
            problems.add(edge.source, field, "connects a node to itself");
            continue;
        }
        if (target->type == "start")
            problems.add(edge.target, field + ".target", "the start node takes no incoming edge");
        if (const NodeType *type = registry.find(source->type)) {
            if (type->terminal)
                problems.add(edge.source, field + ".source", "an " + source->type + " node ends a path");
            if (!type->output_handles.empty() && std::find(type->output_handles.begin(), type->output_handles.end(),
                                                           edge.source_handle) == type->output_handles.end()) {
                std::string handles;
                for (const auto &handle : type->output_handles) handles += (handles.empty() ? "" : ", ") + handle;
                problems.add(edge.source, field + ".sourceHandle",
                             "must be one of " + handles + " for a " + source->type + " node");
            } else if (type->output_handles.empty() && !edge.source_handle.empty() && !source->outputs.empty() &&
                       std::none_of(source->outputs.begin(), source->outputs.end(),
                                    [&](const Port &port) { return port.name == edge.source_handle; })) {
                problems.add(edge.source, field + ".sourceHandle", "names no output of node " + source->id);
            }
        }
        if (!edge.target_handle.empty() && !target->inputs.empty() && target->type != "start" &&
            std::none_of(target->inputs.begin(), target->inputs.end(),
                         [&](const Port &port) { return port.name == edge.target_handle; }))
            problems.add(edge.target, field + ".targetHandle", "names no input of node " + target->id);
        sound_edges.push_back(edge);
    }

    Workflow graph;
    graph.edges = sound_edges;
    for (const Node &node : workflow.nodes) {
        Node copy;
        copy.id = node.id;
        graph.nodes.push_back(std::move(copy));
    }

    // No cycles: whatever Kahn's algorithm cannot order sits on or behind a cycle.
    std::vector<std::string> order = topological_order(graph);
    bool cyclic = order.size() < ids.size();
    if (cyclic) {
        std::set<std::string> ordered(order.begin(), order.end());
        for (const Node &node : workflow.nodes)
            if (!ordered.count(node.id))
                problems.add(node.id, "nodes[" + std::to_string(node.index) + "]",
                             "is on a cycle or reached only through one");
    }

    // Every node reachable from start.
    std::map<std::string, std::vector<std::string>> next, previous;
    for (const Edge &edge : sound_edges) {
        next[edge.source].push_back(edge.target);
        previous[edge.target].push_back(edge.source);
    }
    if (const Node *start = workflow.start(); start && starts == 1) {
        std::set<std::string> seen{start->id};
        std::deque<std::string> frontier{start->id};
        while (!frontier.empty()) {
            std::string id = frontier.front();
            frontier.pop_front();
            for (const auto &target : next[id])
                if (seen.insert(target).second) frontier.push_back(target);
        }
        for (const Node &node : workflow.nodes)
            if (!seen.count(node.id))
                problems.add(node.id, "nodes[" + std::to_string(node.index) + "]",
                             "cannot be reached from the start node");
    }

    // Every {{reference}}: a start input, an upstream node, or an upstream variable.
    if (cyclic) return problems;  // "upstream" means nothing on a cycle
    std::set<std::string> inputs;
    for (const Port &port : workflow.start_inputs()) inputs.insert(port.name);
    for (const Node &node : workflow.nodes) {
        std::set<std::string> upstream;
        std::deque<std::string> frontier{node.id};
        while (!frontier.empty()) {
            std::string id = frontier.front();
            frontier.pop_front();
            for (const auto &source : previous[id])
                if (upstream.insert(source).second) frontier.push_back(source);
        }
        std::set<std::string> variables;
        for (const auto &id : upstream) {
            const Node *source = workflow.find(id);
            const NodeType *type = source ? registry.find(source->type) : nullptr;
            if (type && type->sets_variable) variables.insert(type->sets_variable(*source));
        }
        std::string field = "nodes[" + std::to_string(node.index) + "].config";
        each_string(node.config.get(), field, [&](const std::string &at, const std::string &text) {
            std::vector<TemplatePath> paths;
            try {
                paths = template_paths(text);
            } catch (const Error &error) {
                problems.add(node.id, at, error.message());
                return;
            }
            for (const TemplatePath &path : paths) {
                const std::string &root = path.root();
                auto second = [&]() -> std::string {
                    if (path.steps.size() < 2) return "";
                    const auto *name = std::get_if<std::string>(&path.steps[1]);
                    return name ? *name : "";
                };
                if (root == kSecretsRoot) {
                    std::string relative = at.substr(field.size() + 1);
                    const NodeType *type = registry.find(node.type);
                    if (!type || !is_credential_field(*type, relative))
                        problems.add(node.id, at,
                                     "{{" + path.text + "}}: secrets may only be used in credential fields (" +
                                         credential_field_list(registry) + ")");
                    else if (path.steps.size() != 2 || !secrets::is_name(second()))
                        problems.add(node.id, at, "{{" + path.text + "}}: must be {{secrets.NAME}}, NAME a secret's name");
                    continue;
                }
                bool resolved = false;
                if (root == "inputs" || root == "start")
                    resolved = inputs.count(second()) > 0 || (root == "start" && path.steps.size() == 1);
                else if (root == "vars" || root == "variables")
                    resolved = variables.count(second()) > 0;
                else if (inputs.count(root))
                    resolved = true;
                else if (upstream.count(root))
                    resolved = true;
                if (!resolved) {
                    std::string why = workflow.find(root) ? "node " + root + " is not upstream of this node"
                                                          : "names no start input, upstream node or variable";
                    problems.add(node.id, at, "{{" + path.text + "}}: " + why);
                }
            }
        });
    }
    return problems;
}

bool is_credential_field(const NodeType &type, std::string_view config_path) {
    for (const auto &field : type.credential_fields)
        if (config_path == field ||
            (config_path.size() > field.size() && config_path.rfind(field, 0) == 0 &&
             (config_path[field.size()] == '.' || config_path[field.size()] == '[')))
            return true;
    return false;
}

std::set<std::string> referenced_secrets(const Node &node, const NodeTypeRegistry &registry) {
    std::set<std::string> names;
    const NodeType *type = registry.find(node.type);
    if (!type) return names;
    for (const auto &field : type->credential_fields)
        each_string(json_object_get(node.config.get(), field.c_str()), field,
                    [&](const std::string &, const std::string &text) {
                        std::vector<TemplatePath> paths;
                        try {
                            paths = template_paths(text);
                        } catch (const Error &) {
                            return;  // refused by validation; nothing to open
                        }
                        for (const TemplatePath &path : paths)
                            if (path.root() == kSecretsRoot && path.steps.size() == 2)
                                if (const auto *name = std::get_if<std::string>(&path.steps[1])) names.insert(*name);
                    });
    return names;
}

std::set<std::string> referenced_models(const Workflow &workflow) {
    std::set<std::string> models;
    auto add = [&](const json_t *entry) {
        const json_t *model = json_is_object(entry) ? json_object_get(entry, "model") : entry;
        if (json_is_string(model)) models.insert(json_string_value(model));
    };
    for (const Node &node : workflow.nodes) {
        if (node.type != "llm") continue;
        add(json_object_get(node.config.get(), "model"));
        for (const char *key : {"model_candidates", "routing_models", "fallback_models"}) {
            size_t index;
            json_t *entry;
            json_array_foreach(json_object_get(node.config.get(), key), index, entry) add(entry);
        }
    }
    return models;
}

std::set<std::string> referenced_secrets(const Workflow &workflow, const NodeTypeRegistry &registry) {
    std::set<std::string> names;
    for (const Node &node : workflow.nodes) names.merge(referenced_secrets(node, registry));
    return names;
}

}  // namespace flowgres::workflow

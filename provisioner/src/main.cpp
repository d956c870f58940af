// flowgres-provision: the provisioner for DBAs (README "Workspace databases"). Talks to the control
// database as the invoking role (a superuser or BYPASSRLS role is the operator), and to the
// pool's servers as their administrators. Prints JSON on success; on failure prints
// "error CODE: message" on stderr and exits 1 (2 for a usage error).
#include <unistd.h>

#include <cctype>
#include <cstdlib>
#include <iostream>
#include <map>
#include <string>
#include <vector>

#include "flowgres/json.hpp"
#include "flowgres/provisioner.hpp"
#include "flowgres/secret_box.hpp"
#include "control_plane.hpp"

namespace {

using namespace flowgres;

const char *kUsage = R"(usage: flowgres-provision [--control CONNINFO] [--keys-file PATH] COMMAND …

  keygen [--id ID]                          print a new master key entry (ID=key)
  server add NAME --host H [--port P] --admin CONNINFO [--admin-password-env VAR] [--max-databases N]
                                            [--skip-hba-check] (refused unless pg_hba.conf isolates tenants)
  server list
  server drain NAME | server activate NAME  stop or resume placing new databases there
  provision WORKSPACE_ID [--server NAME]     create or repair the workspace's database
  status WORKSPACE_ID                        where it is and its state (never the password)
  rotate-secret WORKSPACE_ID                 a new password for the workspace's role
  migrate WORKSPACE_ID [--to N]              tenant migrations up to the latest (or N)
  rollback WORKSPACE_ID --to N               tenant migrations down to N
  backup WORKSPACE_ID                        pg_dump into the backup directory (keeps the newest --keep, 7)
  backups WORKSPACE_ID                       the workspace's backups, newest first
  restore WORKSPACE_ID BACKUP_ID [--into copy]   restore and check the rows (copy: into <db>_restore)
  app-role create APP_ID --type read|write|admin [--expires-at TIMESTAMP]
  app-role list APP_ID                       an app's database roles (never their passwords)
  app-role revoke ROLE_ID [--reason TEXT]    end its sessions, hand over what it owns, drop it
  schema submit APP_ID VERSION_ID            plan the version's db_schema against the workspace database
  schema list APP_ID | schema show CHANGE_ID the app's schema changes, or one with its plan and risks
  schema approve CHANGE_ID [--allow-destructive] [--comment TEXT]
  schema reject CHANGE_ID [--comment TEXT]
  schema apply CHANGE_ID                     backup, then the approved statements in one transaction
  rekey                                      re-seal stored secrets with the first master key

The control database: --control, else FLOWGRES_DATABASE_URL. Master keys: --keys-file, else
FLOWGRES_MASTER_KEY_FILE, else FLOWGRES_MASTER_KEYS ("id=key" entries, the first one seals).
Attempts and backoff: --max-attempts N (5), --first-backoff-ms N (250). Tenant migrations:
--migrations-dir PATH (default: the ones flowgres ships). Backups: --backup-dir PATH, else
FLOWGRES_BACKUP_DIR.
)";

struct CommandLine {
    std::vector<std::string> words;
    std::map<std::string, std::string> flags;
};

struct UsageError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

CommandLine parse(int argc, char **argv) {
    CommandLine line;
    for (int i = 1; i < argc; i++) {
        std::string word = argv[i];
        if (word == "-h" || word == "--help") throw UsageError("");
        if (word == "--skip-hba-check" || word == "--allow-destructive") {  // the flags without a value
            line.flags[word.substr(2)] = "true";
        } else if (word.rfind("--", 0) == 0) {
            size_t equals = word.find('=');
            if (equals != std::string::npos) {
                line.flags[word.substr(2, equals - 2)] = word.substr(equals + 1);
            } else {
                if (i + 1 >= argc) throw UsageError(word + " needs a value");
                line.flags[word.substr(2)] = argv[++i];
            }
        } else {
            line.words.push_back(word);
        }
    }
    return line;
}

std::string flag(const CommandLine &line, const std::string &name, const std::string &fallback = "") {
    auto found = line.flags.find(name);
    return found == line.flags.end() ? fallback : found->second;
}

std::string required_flag(const CommandLine &line, const std::string &name) {
    std::string value = flag(line, name);
    if (value.empty()) throw UsageError("--" + name + " is required");
    return value;
}

const std::string &word(const CommandLine &line, size_t index, const char *what) {
    if (index >= line.words.size()) throw UsageError(std::string(what) + " is missing");
    return line.words[index];
}

// Checked here so a typo reads as one, not as the control database's cast error.
const std::string &uuid_word(const CommandLine &line, size_t index, const char *field) {
    const std::string &id = word(line, index, field);
    bool valid = id.size() == 36;
    for (size_t i = 0; valid && i < id.size(); i++) {
        char c = id[i];
        valid = (i == 8 || i == 13 || i == 18 || i == 23) ? c == '-' : isxdigit(static_cast<unsigned char>(c)) != 0;
    }
    if (!valid) throw field_error(field, "must be a UUID");
    return id;
}

const std::string &workspace_word(const CommandLine &line) { return uuid_word(line, 1, "workspace_id"); }

int integer_flag(const CommandLine &line, const std::string &name, int fallback, bool zero_allowed = false) {
    std::string text = flag(line, name);
    if (text.empty()) return fallback;
    try {
        size_t used = 0;
        int value = std::stoi(text, &used);
        if (used == text.size() && (value > 0 || (zero_allowed && value == 0))) return value;
    } catch (const std::exception &) {
    }
    throw UsageError("--" + name + (zero_allowed ? " must be a number from 0" : " must be a positive number"));
}

Keyring load_keys(const CommandLine &line) {
    std::string path = flag(line, "keys-file", getenv("FLOWGRES_MASTER_KEY_FILE") ? getenv("FLOWGRES_MASTER_KEY_FILE") : "");
    return Keyring::load(path, getenv("FLOWGRES_MASTER_KEYS"));
}

// A pool server must keep tenants out of every database but their own (README, "Workspace
// databases"): its pg_hba.conf lets +flowgres_tenants in by samerole and then rejects them,
// with no earlier host line letting every user in. Read from pg_hba_file_rules as the
// administrator; a server that does not do so is refused (--skip-hba-check: a test bench).
void check_pool_server_hba(const std::string &admin_conninfo, const std::string &password) {
    std::vector<std::pair<std::string, std::string>> parameters{{"dbname", admin_conninfo}, {"connect_timeout", "5"}};
    if (!password.empty()) parameters.push_back({"password", password});
    std::optional<provisioner::BlockingConnection> admin;
    try {
        admin.emplace(parameters);
    } catch (const provisioner::DatabaseError &error) {
        throw Error(ErrorCode::DB_UNAVAILABLE, std::string("the server cannot be reached as its administrator: ") + error.what());
    }
    auto verdict = admin->value(R"sql(
        with rules as (select * from pg_hba_file_rules where type like 'host%' and error is null),
             allow as (select min(line_number) as line from rules
                       where 'samerole' = any (database) and '+flowgres_tenants' = any (user_name) and auth_method <> 'reject'),
             deny as (select min(line_number) as line from rules
                      where 'all' = any (database) and '+flowgres_tenants' = any (user_name) and auth_method = 'reject'),
             open_before as (select min(line_number) as line from rules
                             where 'all' = any (user_name) and auth_method <> 'reject')
        select case
            when (select line from allow) is null then 'no host line lets +flowgres_tenants into samerole'
            when (select line from deny) is null then 'no host line rejects +flowgres_tenants from all databases'
            when (select line from deny) < (select line from allow) then 'the reject line comes before the samerole line'
            when (select line from open_before) < (select line from deny) then
                'line ' || (select line from open_before) || ' lets every user in before tenants are rejected'
            else 'ok' end)sql");
    if (verdict != "ok")
        throw Error(ErrorCode::VALIDATION_FAILED,
                    "the server's pg_hba.conf does not keep tenants in their own databases: " + verdict.value_or("unknown") +
                        " (README, \"Workspace databases\"; --skip-hba-check to add it anyway)",
                    "[{\"field\":\"admin\",\"message\":" + json_quote(verdict.value_or("")) + "}]");
}

provisioner::Options options_of(const CommandLine &line) {
    provisioner::Options options;
    options.control_conninfo = flag(line, "control", getenv("FLOWGRES_DATABASE_URL") ? getenv("FLOWGRES_DATABASE_URL") : "");
    if (options.control_conninfo.empty()) throw UsageError("the control database is not set (--control or FLOWGRES_DATABASE_URL)");
    char host[256] = {};
    gethostname(host, sizeof host - 1);
    options.claimant = std::string("flowgres-provision@") + host + ":" + std::to_string(getpid());
    options.max_attempts = integer_flag(line, "max-attempts", options.max_attempts);
    options.migrations_dir = flag(line, "migrations-dir");
    options.backup_dir = flag(line, "backup-dir", getenv("FLOWGRES_BACKUP_DIR") ? getenv("FLOWGRES_BACKUP_DIR") : "");
    options.backup_keep = integer_flag(line, "keep", options.backup_keep);
    options.first_backoff = std::chrono::milliseconds(integer_flag(line, "first-backoff-ms", 250));
    options.on_retry = [](int attempt, const std::string &error) {
        std::cerr << "attempt " << attempt << " failed, retrying: " << error << "\n";
    };
    return options;
}

std::string call(const provisioner::Options &options, const std::string &sql, const std::vector<std::optional<std::string>> &params) {
    provisioner::ControlPlane control(options);
    return control.call(sql, params);
}

int run(const CommandLine &line) {
    const std::string &command = word(line, 0, "the command");
    if (command == "keygen") {
        std::cout << flag(line, "id", "k1") << "=" << new_master_key_text() << "\n";
        return 0;
    }
    provisioner::Options options = options_of(line);
    std::string result;
    if (command == "server") {
        const std::string &action = word(line, 1, "the server action");
        if (action == "list") {
            result = call(options, "select flowgres.database_server_list()::text", {});
        } else if (action == "add") {
            std::string name = word(line, 2, "the server name");
            std::string admin = required_flag(line, "admin");
            std::string max = flag(line, "max-databases");
            std::string password_variable = flag(line, "admin-password-env");
            const char *password = nullptr;
            if (!password_variable.empty() && !(password = getenv(password_variable.c_str())))
                throw UsageError("the environment variable " + password_variable + " is not set");
            if (flag(line, "skip-hba-check").empty()) check_pool_server_hba(admin, password ? password : "");
            result = call(options, "select flowgres.database_server_add($1, $2, $3::integer, $4, $5::integer)::text",
                          {name, required_flag(line, "host"), flag(line, "port", "5432"), admin,
                           max.empty() ? std::nullopt : std::optional<std::string>(max)});
            if (password) {
                Json server = parse_json(result, "server");
                std::string id = json_string_value(json_object_get(server.get(), "id"));
                std::string sealed = load_keys(line).seal(password, "database_server:" + id);
                result = call(options, "select flowgres.database_server_update($1, jsonb_build_object('admin_secret_ref', $2::text))::text",
                              {name, sealed});
            }
        } else if (action == "drain" || action == "activate") {
            result = call(options, "select flowgres.database_server_update($1, jsonb_build_object('status', $2::text))::text",
                          {word(line, 2, "the server name"), action == "drain" ? "draining" : "active"});
        } else {
            throw UsageError("unknown server action " + action);
        }
    } else if (command == "provision") {
        result = provisioner::provision(options, load_keys(line), workspace_word(line), flag(line, "server"));
    } else if (command == "status") {
        result = call(options, "select flowgres.workspace_database_get($1::uuid)::text", {workspace_word(line)});
    } else if (command == "rotate-secret") {
        result = provisioner::rotate_secret(options, load_keys(line), workspace_word(line));
    } else if (command == "migrate") {
        std::optional<int> target;
        if (!flag(line, "to").empty()) target = integer_flag(line, "to", 0, true);
        result = provisioner::migrate(options, load_keys(line), workspace_word(line), target);
    } else if (command == "rollback") {
        if (flag(line, "to").empty()) throw UsageError("rollback needs --to N");
        provisioner::Claim claimed = provisioner::claim(options, load_keys(line), workspace_word(line), "rollback", "",
                                                        integer_flag(line, "to", 0, true));
        result = provisioner::carry_out(options, load_keys(line), claimed);
    } else if (command == "backup") {
        result = provisioner::backup(options, load_keys(line), workspace_word(line));
    } else if (command == "backups") {
        result = call(options, "select flowgres.workspace_database_backup_list($1::uuid)::text", {workspace_word(line)});
    } else if (command == "restore") {
        std::string into = flag(line, "into", "workspace");
        if (into != "workspace" && into != "copy") throw UsageError("--into must be workspace or copy");
        result = provisioner::restore(options, load_keys(line), workspace_word(line), uuid_word(line, 2, "backup_id"), into == "copy");
    } else if (command == "app-role") {
        const std::string &action = word(line, 1, "the app-role action");
        if (action == "create")
            result = provisioner::create_app_role(options, load_keys(line), uuid_word(line, 2, "app_id"), required_flag(line, "type"),
                                                  flag(line, "expires-at"));
        else if (action == "list")
            result = call(options, "select flowgres.app_database_role_list($1::uuid)::text", {uuid_word(line, 2, "app_id")});
        else if (action == "revoke")
            result = provisioner::revoke_app_role(options, load_keys(line), uuid_word(line, 2, "role_id"), flag(line, "reason"));
        else
            throw UsageError("unknown app-role action " + action);
    } else if (command == "schema") {
        const std::string &action = word(line, 1, "the schema action");
        std::optional<std::string> comment;
        if (!flag(line, "comment").empty()) comment = flag(line, "comment");
        if (action == "submit")
            result = provisioner::submit_schema_change(options, load_keys(line), uuid_word(line, 2, "app_id"),
                                                       uuid_word(line, 3, "version_id"));
        else if (action == "list")
            result = call(options, "select flowgres.schema_change_list($1::uuid)::text", {uuid_word(line, 2, "app_id")});
        else if (action == "show")
            result = call(options, "select flowgres.schema_change_get($1::uuid)::text", {uuid_word(line, 2, "change_id")});
        else if (action == "approve")
            result = call(options, "select flowgres.schema_change_approve($1::uuid, $2::boolean, $3)::text",
                          {uuid_word(line, 2, "change_id"), flag(line, "allow-destructive", "false"), comment});
        else if (action == "reject")
            result = call(options, "select flowgres.schema_change_reject($1::uuid, $2)::text", {uuid_word(line, 2, "change_id"), comment});
        else if (action == "apply")
            result = provisioner::apply_schema_change(options, load_keys(line), uuid_word(line, 2, "change_id"));
        else
            throw UsageError("unknown schema action " + action);
    } else if (command == "rekey") {
        result = "{\"resealed\":" + std::to_string(provisioner::reseal_secrets(options, load_keys(line))) + "}";
    } else {
        throw UsageError("unknown command " + command);
    }
    std::cout << result << "\n";
    return 0;
}

}  // namespace

int main(int argc, char **argv) {
    try {
        return run(parse(argc, argv));
    } catch (const UsageError &error) {
        if (*error.what()) std::cerr << "flowgres-provision: " << error.what() << "\n\n";
        std::cerr << kUsage;
        return 2;
    } catch (const Error &error) {
        std::cerr << "error " << error_info(error.code()).name << ": " << error.message() << "\n";
        if (error.details_json() != "null") std::cerr << "details: " << error.details_json() << "\n";
        return 1;
    } catch (const std::exception &error) {
        std::cerr << "error: " << error.what() << "\n";
        return 1;
    }
}

// pg_dump and pg_restore as child processes, file digests and row counts (dump_tools.hpp).
#include "dump_tools.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <openssl/evp.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "flowgres/json.hpp"

extern char **environ;

namespace flowgres::provisioner {
namespace {

std::string quoted_value(const std::string &value) {
    std::string out = "'";
    for (char c : value) {
        if (c == '\'' || c == '\\') out += '\\';
        out += c;
    }
    return out + "'";
}

}  // namespace

std::vector<std::string> child_environment(char **inherited, const std::string &password) {
    // What a libpq tool needs to find itself, speak the locale and reach a server over TLS;
    // nothing else (the daemon's environment holds master keys and the admin key).
    static const char *const kept_names[] = {"PATH", "LANG", "LANGUAGE", "TZ", "TMPDIR", "PGCONNECT_TIMEOUT",
                                             "PGSSLMODE", "PGSSLROOTCERT", "PGSSLCERT", "PGSSLKEY", "PGSSLCRL"};
    std::vector<std::string> kept;
    for (char **entry = inherited; entry && *entry; entry++) {
        std::string_view text(*entry);
        std::string_view name = text.substr(0, text.find('='));
        bool wanted = name.rfind("LC_", 0) == 0;
        for (const char *allowed : kept_names) wanted = wanted || name == allowed;
        if (wanted) kept.emplace_back(text);
    }
    if (!password.empty()) kept.push_back("PGPASSWORD=" + password);
    return kept;
}

namespace {

// Runs `program` (found on PATH) with `arguments` in child_environment(); stdout goes nowhere,
// stderr is returned when it exits non-zero (as std::runtime_error).
void run_tool(const std::string &program, const std::vector<std::string> &arguments, const std::string &password,
              int timeout_seconds) {
    std::vector<std::string> environment_text = child_environment(environ, password);
    std::vector<char *> environment;
    for (auto &entry : environment_text) environment.push_back(entry.data());
    environment.push_back(nullptr);

    std::vector<std::string> argv_text{program};
    argv_text.insert(argv_text.end(), arguments.begin(), arguments.end());
    std::vector<char *> argv;
    for (auto &argument : argv_text) argv.push_back(argument.data());
    argv.push_back(nullptr);

    int error_pipe[2];
    if (pipe2(error_pipe, O_CLOEXEC) != 0) throw std::runtime_error("pipe failed: " + std::string(std::strerror(errno)));
    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_addopen(&actions, STDIN_FILENO, "/dev/null", O_RDONLY, 0);
    posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_adddup2(&actions, error_pipe[1], STDERR_FILENO);
    pid_t child = 0;
    int spawned = posix_spawnp(&child, program.c_str(), &actions, nullptr, argv.data(), environment.data());
    posix_spawn_file_actions_destroy(&actions);
    close(error_pipe[1]);
    if (spawned != 0) {
        close(error_pipe[0]);
        throw std::runtime_error(program + " could not be started: " + std::strerror(spawned));
    }
    // stderr is read until the tool closes it (its exit), or until the deadline: then the tool
    // is killed, so a hung server or a huge database never holds a provisioner thread forever.
    std::string errors;
    char buffer[4096];
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(timeout_seconds);
    bool timed_out = false;
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) {
            timed_out = true;
            kill(child, SIGKILL);
            break;
        }
        pollfd readable{error_pipe[0], POLLIN, 0};
        int ready = poll(&readable, 1, static_cast<int>(std::min<long long>(left.count(), 1000)));
        if (ready < 0 && errno == EINTR) continue;
        if (ready <= 0) continue;
        ssize_t count = read(error_pipe[0], buffer, sizeof buffer);
        if (count < 0 && errno == EINTR) continue;
        if (count <= 0) break;
        if (errors.size() < 16384) errors.append(buffer, static_cast<size_t>(count));
    }
    close(error_pipe[0]);
    int status = 0;
    while (waitpid(child, &status, 0) < 0 && errno == EINTR) {
    }
    if (timed_out)
        throw std::runtime_error(program + " ran longer than " + std::to_string(timeout_seconds) + " s and was stopped");
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        while (!errors.empty() && (errors.back() == '\n' || errors.back() == ' ')) errors.pop_back();
        throw std::runtime_error(program + " failed: " + (errors.empty() ? "exit status " + std::to_string(status) : errors));
    }
}

}  // namespace

ToolConnection tool_connection(const std::string &admin_conninfo, const std::string &database, const std::string &password) {
    char *error = nullptr;
    std::unique_ptr<PQconninfoOption, decltype(&PQconninfoFree)> options(PQconninfoParse(admin_conninfo.c_str(), &error),
                                                                         &PQconninfoFree);
    if (!options) {
        std::string message = error ? error : "out of memory";
        if (error) PQfreemem(error);
        throw std::runtime_error("admin_conninfo cannot be parsed: " + message);
    }
    ToolConnection connection{"dbname=" + quoted_value(database), password};
    for (PQconninfoOption *option = options.get(); option->keyword; option++) {
        if (!option->val) continue;
        std::string keyword = option->keyword;
        if (keyword == "dbname") continue;
        if (keyword == "password") {
            if (connection.password.empty()) connection.password = option->val;
            continue;
        }
        connection.conninfo += " " + keyword + "=" + quoted_value(option->val);
    }
    return connection;
}

void dump_database(const ToolConnection &connection, const std::string &path, const std::string &snapshot) {
    // Created here with mode 600 before pg_dump writes into it: a dump holds the tenant's data.
    int file = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (file < 0) throw std::runtime_error("cannot create " + path + ": " + std::strerror(errno));
    close(file);
    std::vector<std::string> arguments{"--format=custom", "--file=" + path, "--dbname=" + connection.conninfo,
                                       "--lock-wait-timeout=" + std::to_string(connection.lock_wait_ms)};
    if (!snapshot.empty()) arguments.push_back("--snapshot=" + snapshot);
    run_tool("pg_dump", arguments, connection.password, connection.timeout_seconds);
}

void restore_database(const ToolConnection &connection, const std::string &path, bool clean) {
    std::vector<std::string> arguments{"--single-transaction", "--exit-on-error", "--dbname=" + connection.conninfo};
    if (clean) {
        arguments.push_back("--clean");
        arguments.push_back("--if-exists");
    }
    arguments.push_back(path);
    run_tool("pg_restore", arguments, connection.password, connection.timeout_seconds);
}

std::string file_sha256(const std::string &path) {
    std::ifstream file(path, std::ios::binary);
    if (!file) throw std::runtime_error("cannot read " + path);
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> digest(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
    EVP_DigestInit_ex(digest.get(), EVP_sha256(), nullptr);
    char buffer[65536];
    while (file.read(buffer, sizeof buffer) || file.gcount() > 0)
        EVP_DigestUpdate(digest.get(), buffer, static_cast<size_t>(file.gcount()));
    unsigned char value[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    EVP_DigestFinal_ex(digest.get(), value, &length);
    static const char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < length; i++) {
        out += hex[value[i] >> 4];
        out += hex[value[i] & 15];
    }
    return out;
}

std::string table_row_counts(BlockingConnection &connection) {
    Rows tables = connection.query(R"sql(
        select format('%I.%I', n.nspname, c.relname), n.nspname || '.' || c.relname
        from pg_class c join pg_namespace n on n.oid = c.relnamespace
        where c.relkind in ('r', 'p') and n.nspname in ('data', 'flowgres_meta')
        order by 2)sql");
    std::string out = "{";
    for (const auto &table : tables) {
        std::string count = connection.value("select count(*) from " + table[0].value_or("")).value_or("0");
        out += (out.size() > 1 ? "," : "") + json_quote(table[1].value_or("")) + ":" + count;
    }
    return out + "}";
}

}  // namespace flowgres::provisioner

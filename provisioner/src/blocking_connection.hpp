// A blocking libpq connection for the provisioner: open with keyword/value pairs, run
// statements with bound parameters, quote identifiers, and classify errors as worth retrying
// or not. Not for: the daemon's request path (pg/pool.hpp is non-blocking).
#pragma once

#include <libpq-fe.h>

#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace flowgres::provisioner {

// An error from a server or from reaching one. `sqlstate` is empty when there was no server
// answer (connection refused, lost, timed out).
class DatabaseError : public std::runtime_error {
public:
    DatabaseError(std::string message, std::string sqlstate, std::string detail = {})
        : std::runtime_error(std::move(message)), sqlstate_(std::move(sqlstate)), detail_(std::move(detail)) {}
    const std::string &sqlstate() const { return sqlstate_; }
    const std::string &detail() const { return detail_; }
    // Errors that may pass by themselves: no connection, the server starting or stopping, too
    // many connections, lock and serialization conflicts, a template database in use.
    bool may_pass() const;

private:
    std::string sqlstate_;
    std::string detail_;
};

using Rows = std::vector<std::vector<std::optional<std::string>>>;

class BlockingConnection {
public:
    // Keyword/value pairs in libpq's order; the first "dbname" may be a whole connection
    // string (expand_dbname), later pairs override what it says.
    explicit BlockingConnection(const std::vector<std::pair<std::string, std::string>> &parameters);
    ~BlockingConnection();
    BlockingConnection(const BlockingConnection &) = delete;
    BlockingConnection &operator=(const BlockingConnection &) = delete;

    Rows query(const std::string &sql, const std::vector<std::optional<std::string>> &params = {});
    // The first column of the first row, nullopt for none or NULL.
    std::optional<std::string> value(const std::string &sql, const std::vector<std::optional<std::string>> &params = {});
    void run(const std::string &sql) { query(sql); }

    std::string quote_identifier(const std::string &name);
    std::string quote_literal(const std::string &text);
    // The SCRAM-SHA-256 verifier of a password, computed here so the password itself never
    // reaches the server (nor its statement log).
    std::string scram_verifier(const std::string &password, const std::string &user);

private:
    [[noreturn]] void fail(const std::string &what, PGresult *result);
    PGconn *connection_ = nullptr;
};

}  // namespace flowgres::provisioner

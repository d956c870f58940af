// Blocking libpq with bound parameters and error classification (blocking_connection.hpp).
#include "blocking_connection.hpp"

namespace flowgres::provisioner {

bool DatabaseError::may_pass() const {
    if (sqlstate_.empty()) return true;                       // never reached a server, or lost it
    if (sqlstate_.rfind("08", 0) == 0) return true;           // connection exceptions
    if (sqlstate_.rfind("53", 0) == 0) return true;           // insufficient resources, too many connections
    if (sqlstate_.rfind("57P", 0) == 0) return true;          // shutting down, cannot connect now
    return sqlstate_ == "40001" || sqlstate_ == "40P01" ||    // serialization failure, deadlock
           sqlstate_ == "55P03" || sqlstate_ == "55006";      // lock not available, object in use
}

BlockingConnection::BlockingConnection(const std::vector<std::pair<std::string, std::string>> &parameters) {
    std::vector<const char *> keywords, values;
    for (const auto &[keyword, value] : parameters) {
        keywords.push_back(keyword.c_str());
        values.push_back(value.c_str());
    }
    keywords.push_back(nullptr);
    values.push_back(nullptr);
    connection_ = PQconnectdbParams(keywords.data(), values.data(), 1);
    if (!connection_) throw DatabaseError("out of memory opening a connection", "");
    if (PQstatus(connection_) != CONNECTION_OK) {
        std::string message = PQerrorMessage(connection_);
        while (!message.empty() && message.back() == '\n') message.pop_back();
        PQfinish(connection_);
        connection_ = nullptr;
        // libpq reports authentication failures as text only; a server's refusal of a
        // password is final, not worth retrying.
        bool refused = message.find("password authentication failed") != std::string::npos ||
                       message.find("no pg_hba.conf entry") != std::string::npos ||
                       message.find("does not exist") != std::string::npos;
        throw DatabaseError(message, refused ? "28000" : "");
    }
    // NOTICEs ("… does not exist, skipping") are not for the provisioner's users.
    PQsetNoticeProcessor(connection_, [](void *, const char *) {}, nullptr);
}

BlockingConnection::~BlockingConnection() {
    if (connection_) PQfinish(connection_);
}

void BlockingConnection::fail(const std::string &what, PGresult *result) {
    std::string sqlstate, detail, message;
    if (result) {
        const char *state = PQresultErrorField(result, PG_DIAG_SQLSTATE);
        const char *detail_field = PQresultErrorField(result, PG_DIAG_MESSAGE_DETAIL);
        const char *primary = PQresultErrorField(result, PG_DIAG_MESSAGE_PRIMARY);
        if (state) sqlstate = state;
        if (detail_field) detail = detail_field;
        if (primary) message = primary;
        PQclear(result);
    }
    if (message.empty()) message = PQerrorMessage(connection_);
    while (!message.empty() && message.back() == '\n') message.pop_back();
    // A broken connection's "error" may carry a stale SQLSTATE; what matters is the socket.
    if (PQstatus(connection_) != CONNECTION_OK) sqlstate.clear();
    throw DatabaseError(what.empty() ? message : what + ": " + message, sqlstate, detail);
}

Rows BlockingConnection::query(const std::string &sql, const std::vector<std::optional<std::string>> &params) {
    std::vector<const char *> values;
    for (const auto &param : params) values.push_back(param ? param->c_str() : nullptr);
    PGresult *result = params.empty() ? PQexec(connection_, sql.c_str())
                                      : PQexecParams(connection_, sql.c_str(), static_cast<int>(values.size()), nullptr,
                                                     values.data(), nullptr, nullptr, 0);
    ExecStatusType status = result ? PQresultStatus(result) : PGRES_FATAL_ERROR;
    if (status != PGRES_COMMAND_OK && status != PGRES_TUPLES_OK) fail("", result);
    Rows rows;
    for (int row = 0; row < PQntuples(result); row++) {
        std::vector<std::optional<std::string>> columns;
        for (int column = 0; column < PQnfields(result); column++)
            columns.push_back(PQgetisnull(result, row, column) ? std::nullopt
                                                               : std::optional<std::string>(PQgetvalue(result, row, column)));
        rows.push_back(std::move(columns));
    }
    PQclear(result);
    return rows;
}

std::optional<std::string> BlockingConnection::value(const std::string &sql, const std::vector<std::optional<std::string>> &params) {
    Rows rows = query(sql, params);
    if (rows.empty() || rows[0].empty()) return std::nullopt;
    return rows[0][0];
}

std::string BlockingConnection::quote_identifier(const std::string &name) {
    char *quoted = PQescapeIdentifier(connection_, name.c_str(), name.size());
    if (!quoted) fail("quoting an identifier", nullptr);
    std::string out = quoted;
    PQfreemem(quoted);
    return out;
}

std::string BlockingConnection::quote_literal(const std::string &text) {
    char *quoted = PQescapeLiteral(connection_, text.c_str(), text.size());
    if (!quoted) fail("quoting a literal", nullptr);
    std::string out = quoted;
    PQfreemem(quoted);
    return out;
}

std::string BlockingConnection::scram_verifier(const std::string &password, const std::string &user) {
    char *verifier = PQencryptPasswordConn(connection_, password.c_str(), user.c_str(), "scram-sha-256");
    if (!verifier) fail("computing the password verifier", nullptr);
    std::string out = verifier;
    PQfreemem(verifier);
    return out;
}

}  // namespace flowgres::provisioner

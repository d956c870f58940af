// The error table's lookups and the DETAIL document the extension attaches to each error.
#include "flowgres/errors.hpp"

#include "flowgres/json.hpp"

#include <array>

namespace flowgres {
namespace {

constexpr std::array kErrorTable = {
#define FLOWGRES_ERROR_ROW(code, sqlstate, http, summary) \
    ErrorInfo{ErrorCode::code, #code, sqlstate, http, summary},
    FLOWGRES_ERROR_CODES(FLOWGRES_ERROR_ROW)
#undef FLOWGRES_ERROR_ROW
};

}  // namespace

const ErrorInfo &error_info(ErrorCode code) { return kErrorTable[static_cast<size_t>(code)]; }

std::optional<ErrorCode> error_code_from_name(std::string_view name) {
    for (const auto &row : kErrorTable)
        if (row.name == name) return row.code;
    return std::nullopt;
}

std::optional<ErrorCode> error_code_from_sqlstate(std::string_view sqlstate) {
    for (const auto &row : kErrorTable)
        if (row.sqlstate == sqlstate) return row.code;
    return std::nullopt;
}

const ErrorInfo *error_table_begin() { return kErrorTable.data(); }
const ErrorInfo *error_table_end() { return kErrorTable.data() + kErrorTable.size(); }

std::string Error::detail_document() const {
    return "{\"error_code\":" + json_quote(error_info(code_).name) + ",\"details\":" + details_json_ + "}";
}

Error field_error(std::string_view field, std::string_view message) {
    return Error(ErrorCode::VALIDATION_FAILED, std::string(field) + ": " + std::string(message),
                 "[{\"field\":" + json_quote(field) + ",\"message\":" + json_quote(message) + "}]");
}

void ValidationProblems::add(std::string_view field, std::string_view message) { add(field, message, ""); }

void ValidationProblems::add(std::string_view field, std::string_view message, std::string_view extra_members) {
    if (count_ == 0) first_ = std::string(field) + ": " + std::string(message);
    if (count_ > 0) details_ += ",";
    details_ += "{\"field\":" + json_quote(field) + ",\"message\":" + json_quote(message);
    if (!extra_members.empty()) details_ += "," + std::string(extra_members);
    details_ += "}";
    count_++;
}

void ValidationProblems::add(std::string_view field, const Error &error) {
    // field_error's message is "<field>: <message>"; keep the part after the field name.
    const std::string &message = error.message();
    size_t colon = message.find(": ");
    add(field, colon == std::string::npos ? std::string_view(message) : std::string_view(message).substr(colon + 2));
}

void ValidationProblems::throw_if_any() const {
    if (count_ == 0) return;
    std::string message = first_;
    if (count_ > 1) message += " (and " + std::to_string(count_ - 1) + " more)";
    throw Error(ErrorCode::VALIDATION_FAILED, message, details_ + "]");
}

}  // namespace flowgres

// run_sql_function and CallArgs: the only code that turns C++ failures into PostgreSQL errors.
#include <cstring>
#include <string>

#include "boundary.hpp"
#include "flowgres/errors.hpp"
#include "guard.hpp"
#include "spi.hpp"

namespace flowgres {
namespace {

FunctionCallInfo call_info(void *fcinfo) { return static_cast<FunctionCallInfo>(fcinfo); }

// Unique violations that race past a function's own checks still get their flowgres code.
std::optional<ErrorCode> code_for_constraint(const char *constraint) {
    if (constraint == nullptr) return std::nullopt;
    std::string_view name(constraint);
    if (name == "workspaces_slug_key" || name == "workspace_slug_aliases_pkey")
        return ErrorCode::WORKSPACE_SLUG_TAKEN;
    if (name == "apps_workspace_id_slug_key" || name == "app_slug_aliases_pkey")
        return ErrorCode::APP_SLUG_TAKEN;
    if (name == "app_versions_app_id_version_key") return ErrorCode::VERSION_EXISTS;
    if (name == "users_email_key") return ErrorCode::USER_EMAIL_TAKEN;
    if (name == "users_pg_role_key") return ErrorCode::USER_ROLE_TAKEN;
    if (name == "workspace_members_workspace_id_user_id_key") return ErrorCode::MEMBER_EXISTS;
    return std::nullopt;
}

std::string uuid_to_string(const pg_uuid_t *uuid) {
    static const char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(36);
    for (int i = 0; i < UUID_LEN; i++) {
        if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
        out.push_back(hex[uuid->data[i] >> 4]);
        out.push_back(hex[uuid->data[i] & 0x0F]);
    }
    return out;
}

Datum to_datum(const SqlValue &value, bool *is_null) {
    *is_null = false;
    switch (value.kind) {
        case SqlValue::Kind::null:
            *is_null = true;
            return (Datum)0;
        case SqlValue::Kind::boolean:
            return BoolGetDatum(value.flag);
        case SqlValue::Kind::integer:  // SQL integer: callers keep values within int4
            return Int32GetDatum(static_cast<int32>(value.number));
        case SqlValue::Kind::jsonb: {
            const char *text = value.text.c_str();
            return guard([&] { return DirectFunctionCall1(jsonb_in, CStringGetDatum(text)); });
        }
        case SqlValue::Kind::uuid: {
            const char *text = value.text.c_str();
            return guard([&] { return DirectFunctionCall1(uuid_in, CStringGetDatum(text)); });
        }
        case SqlValue::Kind::json:  // json is stored as its text
        case SqlValue::Kind::text: {
            const char *text = value.text.c_str();
            size_t length = value.text.size();
            return guard([&] { return PointerGetDatum(cstring_to_text_with_len(text, (int)length)); });
        }
    }
    *is_null = true;
    return (Datum)0;
}

}  // namespace

bool CallArgs::is_null(int position) const {
    auto *info = call_info(fcinfo_);
    return position >= info->nargs || info->args[position].isnull;
}

std::optional<std::string> CallArgs::text(int position) const {
    if (is_null(position)) return std::nullopt;
    auto *info = call_info(fcinfo_);
    Datum datum = info->args[position].value;
    // (`text` names this member function here, so the varlena type is spelled out.)
    char *cstring = guard([&] {
        return text_to_cstring(pg_detoast_datum_packed(reinterpret_cast<struct varlena *>(DatumGetPointer(datum))));
    });
    std::string out(cstring);
    pfree(cstring);
    return out;
}

std::optional<std::string> CallArgs::uuid(int position) const {
    if (is_null(position)) return std::nullopt;
    return uuid_to_string(DatumGetUUIDP(call_info(fcinfo_)->args[position].value));
}

std::optional<std::string> CallArgs::jsonb(int position) const {
    if (is_null(position)) return std::nullopt;
    Datum datum = call_info(fcinfo_)->args[position].value;
    char *cstring = guard([&] {
        Jsonb *document = DatumGetJsonbP(datum);
        return JsonbToCString(nullptr, &document->root, VARSIZE(document));
    });
    std::string out(cstring);
    pfree(cstring);
    return out;
}

std::optional<std::string> CallArgs::timestamptz(int position) const {
    if (is_null(position)) return std::nullopt;
    Datum datum = call_info(fcinfo_)->args[position].value;
    // In the session's DateStyle, which a later ::timestamptz in the same session reads back.
    char *cstring = guard([&] {
        return DatumGetCString(DirectFunctionCall1(timestamptz_out, datum));
    });
    std::string out(cstring);
    pfree(cstring);
    return out;
}

std::optional<bool> CallArgs::boolean(int position) const {
    if (is_null(position)) return std::nullopt;
    return DatumGetBool(call_info(fcinfo_)->args[position].value);
}

std::optional<long long> CallArgs::bigint(int position) const {
    if (is_null(position)) return std::nullopt;
    return DatumGetInt64(call_info(fcinfo_)->args[position].value);
}

std::optional<long long> CallArgs::integer(int position) const {
    if (is_null(position)) return std::nullopt;
    return DatumGetInt32(call_info(fcinfo_)->args[position].value);
}

std::string CallArgs::required_text(int position, std::string_view name) const {
    auto value = text(position);
    if (!value) throw field_error(name, "is required");
    return *value;
}

std::string CallArgs::required_uuid(int position, std::string_view name) const {
    auto value = uuid(position);
    if (!value) throw field_error(name, "is required");
    return *value;
}

std::string CallArgs::required_jsonb(int position, std::string_view name) const {
    auto value = jsonb(position);
    if (!value) throw field_error(name, "is required");
    return *value;
}

unsigned long run_sql_function(void *fcinfo, SqlFunctionBody body) {
    // Everything the error path needs is plain memory, so it survives the C++ frames' end.
    ErrorData *postgres_error = nullptr;
    char *message = nullptr;
    char *detail = nullptr;
    int sqlstate = 0;
    Datum result = (Datum)0;
    bool is_null = false;

    try {
        spi_connect();
        SqlValue value;
        {
            CallArgs args(fcinfo);
            value = body(args);
        }
        spi_finish();
        result = to_datum(value, &is_null);
    } catch (const Error &error) {
        const auto &info = error_info(error.code());
        sqlstate = MAKE_SQLSTATE(info.sqlstate[0], info.sqlstate[1], info.sqlstate[2], info.sqlstate[3],
                                 info.sqlstate[4]);
        message = pstrdup(error.message().c_str());
        detail = pstrdup(error.detail_document().c_str());
    } catch (const PostgresError &error) {
        ErrorData *data = error.data();
        auto code = data->sqlerrcode == ERRCODE_UNIQUE_VIOLATION ? code_for_constraint(data->constraint_name)
                                                                 : std::nullopt;
        if (code) {
            Error translated(*code, std::string(error_info(*code).summary) + " (" + data->constraint_name + ")");
            const auto &info = error_info(*code);
            sqlstate = MAKE_SQLSTATE(info.sqlstate[0], info.sqlstate[1], info.sqlstate[2], info.sqlstate[3],
                                     info.sqlstate[4]);
            message = pstrdup(translated.message().c_str());
            detail = pstrdup(translated.detail_document().c_str());
        } else {
            postgres_error = data;
        }
    } catch (const std::exception &error) {
        Error internal(ErrorCode::INTERNAL_ERROR, std::string("internal error: ") + error.what());
        sqlstate = MAKE_SQLSTATE('F', 'G', '9', '9', '9');
        message = pstrdup(internal.message().c_str());
        detail = pstrdup(internal.detail_document().c_str());
    } catch (...) {
        sqlstate = MAKE_SQLSTATE('F', 'G', '9', '9', '9');
        message = pstrdup("internal error: unknown exception");
        detail = pstrdup("{\"error_code\":\"INTERNAL_ERROR\",\"details\":null}");
    }

    // No C++ object is alive past this point: ereport may longjmp freely.
    if (postgres_error != nullptr) ReThrowError(postgres_error);
    if (message != nullptr) ereport(ERROR, (errcode(sqlstate), errmsg("%s", message), errdetail("%s", detail)));
    if (is_null) {
        call_info(fcinfo)->isnull = true;
        return (Datum)0;
    }
    return result;
}

}  // namespace flowgres

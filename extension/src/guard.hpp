// guard(): call PostgreSQL functions that may ereport from C++ (pg_duckdb's
// PostgresFunctionGuard). The callable must own no C++ resources: a longjmp skips destructors.
// After a caught error the transaction is unusable until it aborts, so callers only unwind.
#pragma once

#include <exception>
#include <string>
#include <type_traits>

#include "postgres.hpp"

namespace flowgres {

// A PostgreSQL error turned into a C++ exception; the boundary re-raises it as it was.
class PostgresError : public std::exception {
public:
    explicit PostgresError(ErrorData *data) : data_(data) {}
    ErrorData *data() const { return data_; }
    const char *what() const noexcept override { return data_->message ? data_->message : "postgres error"; }

private:
    ErrorData *data_;  // palloc'd in the memory context that was current before the call
};

// -Wclobbered: `result` is read only on the path where no longjmp happened, where it is intact.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wclobbered"
template <typename Callable>
auto guard(Callable &&callable) -> decltype(callable()) {
    using Result = decltype(callable());
    MemoryContext caller_context = CurrentMemoryContext;
    ErrorData *volatile error = nullptr;
    if constexpr (std::is_void_v<Result>) {
        PG_TRY();
        { callable(); }
        PG_CATCH();
        {
            MemoryContextSwitchTo(caller_context);
            error = CopyErrorData();
            FlushErrorState();
        }
        PG_END_TRY();
        if (error != nullptr) throw PostgresError(error);
    } else {
        // Assigned only inside PG_TRY and read only when no error happened.
        Result result{};
        PG_TRY();
        { result = callable(); }
        PG_CATCH();
        {
            MemoryContextSwitchTo(caller_context);
            error = CopyErrorData();
            FlushErrorState();
        }
        PG_END_TRY();
        if (error != nullptr) throw PostgresError(error);
        return result;
    }
}
#pragma GCC diagnostic pop

}  // namespace flowgres

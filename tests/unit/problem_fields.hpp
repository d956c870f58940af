// For validation tests: the fields a VALIDATION_FAILED names, in the order it names them.
#pragma once

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "flowgres/errors.hpp"
#include "flowgres/json.hpp"

inline std::vector<std::string> problem_fields(const flowgres::Error &error) {
    EXPECT_EQ(error.code(), flowgres::ErrorCode::VALIDATION_FAILED);
    flowgres::Json details = flowgres::parse_json(error.details_json(), "details");
    std::vector<std::string> fields;
    size_t index;
    json_t *item;
    json_array_foreach(details.get(), index, item) fields.emplace_back(json_string_value(json_object_get(item, "field")));
    return fields;
}

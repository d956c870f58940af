// OpenAI's chat-completions wire protocol, as flowgres speaks it to providers: the request body
// (streamed, with the usage chunk asked for, an output schema as a json_schema response
// format), each streamed chunk's delta, finish reason and usage, a whole (unstreamed) answer,
// and the message of an error body. Pure: no sockets (daemon/src/llm has the client).
#pragma once

#include <jansson.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "flowgres/json.hpp"

namespace flowgres::llm {

struct Message {
    std::string role;  // system, user, assistant
    std::string content;
};

struct ChatRequest {
    std::string model;
    std::vector<Message> messages;
    std::optional<double> temperature;
    std::optional<long long> max_tokens;
    std::string output_schema;  // a JSON Schema as JSON text ("" when none): asked for as json_schema
    bool stream = true;
};

// {"model", "messages", "stream": true, "stream_options": {"include_usage": true}, …}
std::string chat_request_body(const ChatRequest &request);

struct Usage {
    long long prompt_tokens = 0;
    long long completion_tokens = 0;
};

struct StreamChunk {
    std::string delta;          // the content this chunk adds ("" when none)
    std::string finish_reason;  // "" until the last choice chunk
    std::optional<Usage> usage;  // the usage chunk (choices empty)
};

// One `data:` payload of a streamed answer; nullopt when it is not a chunk. "[DONE]" is not
// a chunk: the caller checks for it first.
std::optional<StreamChunk> parse_stream_chunk(std::string_view data);

struct Completion {
    std::string text;
    std::string finish_reason;
    std::optional<Usage> usage;
};
std::optional<Completion> parse_completion(std::string_view body);

// What an error body says ({"error": {"message"}}), else its first 200 characters.
std::string error_message(std::string_view body);

// The JSON an answer holds: the whole text, else its first ```-fenced block, else the text from
// its first '{' to its last '}' (models put sentences around what they were asked for). A null
// Json when none parses.
Json json_in_answer(std::string_view text);

// A prompt's size in tokens, estimated before sending (four characters to a token, rounded
// up): what a quota check reserves before the provider reports its own count.
long long estimate_tokens(std::string_view text);

}  // namespace flowgres::llm

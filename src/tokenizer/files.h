// Reading tokenizer files, with errors that name the file.
#pragma once
#include <nlohmann/json.hpp>
#include <string>
#include <unordered_map>

namespace tcat::tokenizer {

// The bytes of `path`; `what` says what the file is for ("GPT-2 merges") in the error message.
std::string read_file(const std::string& path, std::string_view what);
// `path` parsed as JSON; a syntax error names the file and the byte offset.
nlohmann::json read_json(const std::string& path, std::string_view what);

// A {"piece": id} object (vocab.json); `origin` names it in errors.
std::unordered_map<std::string, int64_t> vocab_from_json(const nlohmann::json& json, const std::string& origin);

}  // namespace tcat::tokenizer

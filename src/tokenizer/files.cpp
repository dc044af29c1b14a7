#include "tokenizer/files.h"

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>

#include "core/error.h"

namespace tcat::tokenizer {

std::string read_file(const std::string& path, std::string_view what) {
  std::ifstream in(path, std::ios::binary);
  TCAT_CHECK(in, "cannot open {} '{}': {}", what, path, std::strerror(errno));
  std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  TCAT_CHECK(!in.bad(), "cannot read {} '{}': {}", what, path, std::strerror(errno));
  return bytes;
}

nlohmann::json read_json(const std::string& path, std::string_view what) {
  const std::string text = read_file(path, what);
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    fail("{} '{}' is not valid JSON: {}", what, path, e.what());
  }
}

std::unordered_map<std::string, int64_t> vocab_from_json(const nlohmann::json& json, const std::string& origin) {
  TCAT_CHECK(json.is_object(), "{}: the vocabulary must be a JSON object of piece -> id, not {}", origin,
             json.type_name());
  std::unordered_map<std::string, int64_t> vocab;
  for (const auto& [piece, id] : json.items()) {
    TCAT_CHECK(id.is_number_integer() && id.get<int64_t>() >= 0 && id.get<int64_t>() < (int64_t(1) << 31),
               "{}: the id of piece '{}' is {}, not an id", origin, piece, id.dump());
    vocab.emplace(piece, id.get<int64_t>());
  }
  TCAT_CHECK(!vocab.empty(), "{}: the vocabulary is empty", origin);
  return vocab;
}

}  // namespace tcat::tokenizer

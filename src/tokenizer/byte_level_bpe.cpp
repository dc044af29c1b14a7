#include "tokenizer/byte_level_bpe.h"

#include <algorithm>
#include <array>
#include <limits>
#include <sstream>

#include "core/error.h"
#include "tokenizer/files.h"
#include "tokenizer/unicode.h"

namespace tcat::tokenizer {

namespace {

// GPT-2's reversible byte -> character map: printable Latin-1 bytes stand for themselves, the other
// 68 bytes take the characters from U+0100 on, in byte order.
struct ByteAlphabet {
  std::array<std::string, 256> byte_to_char;  // UTF-8 of each byte's character
  std::unordered_map<char32_t, unsigned char> char_to_byte;

  ByteAlphabet() {
    char32_t next_unprintable = 256;
    for (unsigned b = 0; b < 256; ++b) {
      const bool printable = (b >= '!' && b <= '~') || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE && b <= 0xFF);
      const char32_t c = printable ? char32_t(b) : next_unprintable++;
      unicode::append_utf8(byte_to_char[b], c);
      char_to_byte[c] = static_cast<unsigned char>(b);
    }
  }
};

const ByteAlphabet& byte_alphabet() {
  static const ByteAlphabet alphabet;
  return alphabet;
}

std::string merge_key(std::string_view a, std::string_view b) {
  std::string key(a);
  key += '\0';
  key += b;
  return key;
}

enum class CharClass { Letter, Number, Space, Other };

CharClass classify(char32_t c) {
  if (unicode::is_letter(c)) return CharClass::Letter;
  if (unicode::is_number(c)) return CharClass::Number;
  if (unicode::is_white_space(c)) return CharClass::Space;
  return CharClass::Other;
}

// Length of a contraction ('s 't 're 've 'm 'll 'd, lower case only) at the start of `s`, or 0.
size_t contraction_length(std::u32string_view s) {
  if (s.empty() || s[0] != U'\'') return 0;
  for (const std::u32string_view suffix : {U"s", U"t", U"re", U"ve", U"m", U"ll", U"d"})
    if (s.substr(1).starts_with(suffix)) return 1 + suffix.size();
  return 0;
}

}  // namespace

std::vector<std::u32string> gpt2_pre_tokenize(std::u32string_view text) {
  std::vector<std::u32string> pieces;
  const size_t n = text.size();
  const auto run_end = [&](size_t from, CharClass cls) {
    while (from < n && classify(text[from]) == cls) ++from;
    return from;
  };
  for (size_t at = 0; at < n;) {
    size_t end;
    if (const size_t length = contraction_length(text.substr(at)); length > 0) {
      end = at + length;
    } else {
      // " ?\p{L}+", " ?\p{N}+" and " ?[^\s\p{L}\p{N}]+": an optional ASCII space, then a run of one class.
      const size_t body = (text[at] == U' ' && at + 1 < n && classify(text[at + 1]) != CharClass::Space) ? at + 1 : at;
      const CharClass cls = classify(text[body]);
      if (cls != CharClass::Space) {
        end = run_end(body, cls);
      } else {
        // "\s+(?!\S)" leaves the last space of a run for the word after it; a lone space before a word
        // falls to "\s+".
        end = run_end(at, CharClass::Space);
        if (end < n && end - at > 1) --end;
      }
    }
    pieces.emplace_back(text.substr(at, end - at));
    at = end;
  }
  return pieces;
}

SpecialTokenNames ByteLevelBpeTokenizer::default_special_tokens() {
  SpecialTokenNames names;
  names.unk = names.bos = names.eos = "<|endoftext|>";
  return names;
}

ByteLevelBpeTokenizer ByteLevelBpeTokenizer::load(const std::string& vocab_json, const std::string& merges_txt,
                                                  const SpecialTokenNames& names) {
  auto vocab = vocab_from_json(read_json(vocab_json, "BPE vocabulary"), fmt::format("BPE vocabulary '{}'", vocab_json));
  std::istringstream lines(read_file(merges_txt, "BPE merges"));
  std::vector<Merge> merges;
  std::string line;
  for (size_t number = 1; std::getline(lines, line); ++number) {
    if (number == 1 && line.starts_with("#version")) continue;
    std::istringstream fields(line);
    Merge merge;
    std::string extra;
    if (!(fields >> merge.first)) continue;  // blank line
    TCAT_CHECK(fields >> merge.second && !(fields >> extra),
               "BPE merges '{}' line {}: expected two pieces separated by a space, got '{}'", merges_txt, number, line);
    merges.push_back(std::move(merge));
  }
  return ByteLevelBpeTokenizer(std::move(vocab), merges, {}, names, false, fmt::format("'{}'", vocab_json));
}

ByteLevelBpeTokenizer ByteLevelBpeTokenizer::load_tokenizer_json(const std::string& path,
                                                                 const SpecialTokenNames& names) {
  const nlohmann::json json = read_json(path, "tokenizer.json");
  const std::string origin = fmt::format("tokenizer.json '{}'", path);
  try {
    const auto& model = json.at("model");
    const std::string type = model.value("type", "BPE");
    TCAT_CHECK(type == "BPE", "{}: model type '{}' is not supported (only byte-level BPE)", origin, type);
    const auto& pre = json.at("pre_tokenizer");
    TCAT_CHECK(pre.is_object() && pre.value("type", "") == "ByteLevel",
               "{}: the pre-tokenizer is {}, but only a ByteLevel pre-tokenizer (GPT-2 style) is supported", origin,
               pre.dump());
    std::vector<Merge> merges;
    for (const auto& merge : model.at("merges")) {
      if (merge.is_array()) {
        TCAT_CHECK(merge.size() == 2, "{}: merge {} is not a pair", origin, merge.dump());
        merges.emplace_back(merge[0].get<std::string>(), merge[1].get<std::string>());
        continue;
      }
      const std::string text = merge.get<std::string>();
      const size_t space = text.find(' ');
      TCAT_CHECK(space != std::string::npos && text.find(' ', space + 1) == std::string::npos,
                 "{}: merge '{}' is not two pieces separated by a space", origin, text);
      merges.emplace_back(text.substr(0, space), text.substr(space + 1));
    }
    std::vector<AddedToken> added;
    SpecialTokenNames all_names = names;
    for (const auto& token : json.value("added_tokens", nlohmann::json::array())) {
      added.push_back({token.at("content").get<std::string>(), token.at("id").get<int64_t>(),
                       token.value("lstrip", false), token.value("rstrip", false)});
      if (token.value("special", false)) all_names.additional.push_back(added.back().content);
    }
    return ByteLevelBpeTokenizer(vocab_from_json(model.at("vocab"), origin), merges, std::move(added), all_names,
                                 pre.value("add_prefix_space", false), origin);
  } catch (const nlohmann::json::exception& e) {
    fail("{}: unexpected structure: {}", origin, e.what());
  }
}

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer(std::unordered_map<std::string, int64_t> vocab,
                                             const std::vector<Merge>& merges, std::vector<AddedToken> added,
                                             const SpecialTokenNames& names, bool add_prefix_space,
                                             const std::string& origin)
    : add_prefix_space_(add_prefix_space) {
  for (const AddedToken& token : added) vocab.emplace(token.content, token.id);
  vocab_ = PieceVocabulary(std::move(vocab), origin);
  // The slow tokenizer matches its special tokens in the text too.
  for (const std::string& name : names.all()) {
    const int64_t id = vocab_.find(name);
    if (id < 0) continue;
    special_ids_.insert(id);
    if (std::none_of(added.begin(), added.end(), [&](const AddedToken& t) { return t.content == name; }))
      added.push_back({name, id});
  }
  added_ = AddedTokens(std::move(added));

  for (size_t rank = 0; rank < merges.size(); ++rank)
    merge_ranks_.emplace(merge_key(merges[rank].first, merges[rank].second), int(rank));

  pad_id_ = vocab_.find(names.pad), bos_id_ = vocab_.find(names.bos), eos_id_ = vocab_.find(names.eos);
  unk_id_ = vocab_.find(names.unk);
}

std::vector<std::string> ByteLevelBpeTokenizer::bpe(const std::string& word) const {
  std::vector<std::string> symbols;
  for (const char32_t c : unicode::decode_utf8(word, "BPE")) {
    symbols.emplace_back();
    unicode::append_utf8(symbols.back(), c);
  }
  while (symbols.size() > 1) {
    int best_rank = std::numeric_limits<int>::max();
    size_t best = 0;
    for (size_t i = 0; i + 1 < symbols.size(); ++i) {
      const auto it = merge_ranks_.find(merge_key(symbols[i], symbols[i + 1]));
      if (it != merge_ranks_.end() && it->second < best_rank) best_rank = it->second, best = i;
    }
    if (best_rank == std::numeric_limits<int>::max()) break;
    // Merge every occurrence of that pair, left to right.
    const std::string first = symbols[best], second = symbols[best + 1];
    std::vector<std::string> merged;
    merged.reserve(symbols.size());
    for (size_t i = 0; i < symbols.size(); ++i) {
      if (i + 1 < symbols.size() && symbols[i] == first && symbols[i + 1] == second) {
        merged.push_back(first + second);
        ++i;
      } else {
        merged.push_back(std::move(symbols[i]));
      }
    }
    symbols = std::move(merged);
  }
  return symbols;
}

std::vector<std::string> ByteLevelBpeTokenizer::tokenize(std::string_view text) const {
  std::string prefixed;
  if (add_prefix_space_ && !text.empty() && text[0] != ' ') {
    prefixed = " " + std::string(text);
    text = prefixed;
  }
  const ByteAlphabet& alphabet = byte_alphabet();
  std::vector<std::string> pieces;
  for (const AddedTokens::Segment& segment : added_.split(text)) {
    if (segment.token) {
      pieces.emplace_back(segment.text);
      continue;
    }
    for (const std::u32string& word : gpt2_pre_tokenize(unicode::decode_utf8(segment.text, "GPT-2 BPE encode"))) {
      std::string mapped;
      for (const char byte : unicode::encode_utf8(word)) mapped += alphabet.byte_to_char[static_cast<unsigned char>(byte)];
      for (std::string& piece : bpe(mapped)) pieces.push_back(std::move(piece));
    }
  }
  return pieces;
}

std::vector<int64_t> ByteLevelBpeTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids;
  for (const std::string& piece : tokenize(text)) ids.push_back(piece_to_id(piece));
  return ids;
}

std::string ByteLevelBpeTokenizer::id_to_piece(int64_t id) const { return vocab_.piece(id, "byte-level BPE"); }

int64_t ByteLevelBpeTokenizer::piece_to_id(std::string_view piece) const {
  const int64_t id = vocab_.find(piece);
  return id < 0 ? unk_id_ : id;
}

std::string ByteLevelBpeTokenizer::decode_ids(std::span<const int64_t> ids, bool skip_special_tokens) const {
  const ByteAlphabet& alphabet = byte_alphabet();
  std::string bytes;
  for (const int64_t id : ids) {
    const std::string piece = id_to_piece(id);
    if (skip_special_tokens && special_ids_.contains(id)) continue;
    for (const char32_t c : unicode::decode_utf8(piece, "byte-level BPE decode")) {
      const auto it = alphabet.char_to_byte.find(c);
      if (it != alphabet.char_to_byte.end())
        bytes += static_cast<char>(it->second);
      else
        unicode::append_utf8(bytes, c);  // an added token's own text
    }
  }
  return unicode::repair_utf8(bytes);
}

}  // namespace tcat::tokenizer

#include "tokenizer/sentencepiece_hf.h"

#include "core/error.h"
#include "tokenizer/files.h"
#include "tokenizer/unicode.h"

namespace tcat::tokenizer {

namespace {

constexpr std::string_view kWordBoundary = "\u2581";

// transformers' re.sub(">>.+<<", "", text): each ">>" with a "<<" later on the same line (at least one
// character between) is cut out up to the last such "<<". Returns the text left and the code found at
// the very start (MarianTokenizer keeps only that one as a piece).
std::pair<std::string, std::string> remove_language_codes(std::string_view text) {
  std::string rest, leading_code;
  for (size_t at = 0; at < text.size();) {
    if (text.substr(at, 2) == ">>") {
      const size_t line_end = std::min(text.find('\n', at), text.size());
      const size_t close = text.substr(0, line_end).rfind("<<");
      if (close != std::string_view::npos && close >= at + 3) {
        if (at == 0) leading_code = std::string(text.substr(0, close + 2));
        at = close + 2;
        continue;
      }
    }
    rest += text[at++];
  }
  return {std::move(rest), std::move(leading_code)};
}

}  // namespace

// --- T5 ---------------------------------------------------------------------------------------

SpecialTokenNames T5Tokenizer::default_special_tokens() {
  SpecialTokenNames names;
  names.eos = "</s>", names.unk = "<unk>", names.pad = "<pad>";
  return names;
}

T5Tokenizer T5Tokenizer::load(const std::string& spiece_model, int64_t extra_ids, const SpecialTokenNames& names) {
  TCAT_CHECK(extra_ids >= 0, "T5 tokenizer '{}': extra_ids {} is negative", spiece_model, extra_ids);
  return T5Tokenizer(SentencePieceTokenizer::load(spiece_model), extra_ids, names);
}

T5Tokenizer::T5Tokenizer(SentencePieceTokenizer sp, int64_t extra_ids, const SpecialTokenNames& names)
    : sp_(std::move(sp)), extra_ids_(extra_ids) {
  std::vector<AddedToken> added;
  for (const std::string& name : names.all()) {
    const int64_t id = sp_.piece_to_id(name);
    if (id == sp_.unk_id() && name != names.unk) continue;
    added.push_back({name, id});
    special_ids_.insert(id);
  }
  // The sentinels swallow the spaces around them (transformers adds them with lstrip and rstrip).
  for (int64_t id = sp_.vocab_size(); id < vocab_size(); ++id) {
    added.push_back({id_to_piece(id), id, true, true});
    special_ids_.insert(id);
  }
  added_ = AddedTokens(std::move(added));
  const auto id_of = [&](const std::string& name) -> int64_t {
    const AddedToken* token = name.empty() ? nullptr : added_.find(name);
    return token ? token->id : -1;
  };
  pad_id_ = id_of(names.pad), eos_id_ = id_of(names.eos), unk_id_ = id_of(names.unk);
}

std::vector<std::string> T5Tokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> pieces;
  for (const AddedTokens::Segment& segment : added_.split(text)) {
    if (segment.token) {
      pieces.emplace_back(segment.text);
      continue;
    }
    // Legacy mode: each segment is encoded on its own, so each gets sentencepiece's dummy prefix.
    for (std::string& piece : sp_.tokenize(segment.text)) pieces.push_back(std::move(piece));
  }
  return pieces;
}

std::vector<int64_t> T5Tokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids;
  for (const std::string& piece : tokenize(text)) ids.push_back(piece_to_id(piece));
  return ids;
}

std::vector<int64_t> T5Tokenizer::encode_with_special_tokens(std::string_view text) const {
  std::vector<int64_t> ids = encode(text);
  // transformers does not append a second </s> to text that already ends with one.
  if (eos_id_ >= 0 && (ids.empty() || ids.back() != eos_id_)) ids.push_back(eos_id_);
  return ids;
}

std::string T5Tokenizer::id_to_piece(int64_t id) const {
  TCAT_CHECK(id >= 0 && id < vocab_size(), "T5 tokenizer: id {} is outside the vocabulary [0, {})", id,
             vocab_size());
  if (id < sp_.vocab_size()) return sp_.id_to_piece(id);
  return fmt::format("<extra_id_{}>", vocab_size() - 1 - id);
}

int64_t T5Tokenizer::piece_to_id(std::string_view piece) const {
  if (const AddedToken* token = added_.find(piece)) return token->id;
  return sp_.piece_to_id(piece);
}

std::string T5Tokenizer::decode_ids(std::span<const int64_t> ids, bool skip_special_tokens) const {
  std::vector<std::string> tokens;
  for (const int64_t id : ids) {
    std::string piece = id_to_piece(id);
    if (!(skip_special_tokens && special_ids_.contains(id))) tokens.push_back(std::move(piece));
  }
  if (tokens.empty()) return "";
  // transformers drops the first piece's word-boundary marks (its prefix space), decodes the runs
  // between special tokens with sentencepiece and writes special tokens verbatim, a space before each run of them.
  while (tokens[0].starts_with(kWordBoundary)) tokens[0].erase(0, kWordBoundary.size());
  std::string text;
  std::vector<std::string> run;
  bool previous_special = false;
  for (std::string& token : tokens) {
    if (!added_.find(token)) {
      run.push_back(std::move(token));
      previous_special = false;
      continue;
    }
    if (!previous_special) text += ' ';
    text += sp_.decode_pieces(run) + token;
    run.clear();
    previous_special = true;
  }
  text += sp_.decode_pieces(run);
  return unicode::strip_python_space(text);
}

// --- Marian -----------------------------------------------------------------------------------

SpecialTokenNames MarianTokenizer::default_special_tokens() { return T5Tokenizer::default_special_tokens(); }

MarianTokenizer MarianTokenizer::load(const std::string& source_spm, const std::string& target_spm,
                                      const std::string& vocab_json, const SpecialTokenNames& names) {
  const std::string origin = fmt::format("Marian vocabulary '{}'", vocab_json);
  return MarianTokenizer(SentencePieceTokenizer::load(source_spm), SentencePieceTokenizer::load(target_spm),
                         vocab_from_json(read_json(vocab_json, "Marian vocabulary"), origin), names, origin);
}

MarianTokenizer::MarianTokenizer(SentencePieceTokenizer source, SentencePieceTokenizer target,
                                 std::unordered_map<std::string, int64_t> vocab, const SpecialTokenNames& names,
                                 const std::string& origin)
    : source_(std::move(source)), target_(std::move(target)), vocab_(std::move(vocab), origin) {
  unk_id_ = vocab_.find(names.unk);
  TCAT_CHECK(unk_id_ >= 0, "{} has no unknown-piece token '{}'", origin, names.unk);
  pad_id_ = vocab_.find(names.pad), eos_id_ = vocab_.find(names.eos);
  std::vector<AddedToken> added;
  for (const std::string& name : names.all()) {
    const int64_t id = vocab_.find(name);
    if (id < 0) continue;
    added.push_back({name, id});
    special_ids_.insert(id);
  }
  added_ = AddedTokens(std::move(added));
}

std::vector<std::string> MarianTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> pieces;
  for (const AddedTokens::Segment& segment : added_.split(text)) {
    if (segment.token) {
      pieces.emplace_back(segment.text);
      continue;
    }
    auto [rest, code] = remove_language_codes(segment.text);
    if (!code.empty()) pieces.push_back(std::move(code));
    for (std::string& piece : source_.tokenize(rest)) pieces.push_back(std::move(piece));
  }
  return pieces;
}

std::vector<int64_t> MarianTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids;
  for (const std::string& piece : tokenize(text)) ids.push_back(piece_to_id(piece));
  return ids;
}

std::vector<int64_t> MarianTokenizer::encode_with_special_tokens(std::string_view text) const {
  std::vector<int64_t> ids = encode(text);
  if (eos_id_ >= 0) ids.push_back(eos_id_);
  return ids;
}

std::string MarianTokenizer::id_to_piece(int64_t id) const { return vocab_.piece(id, "Marian tokenizer"); }

int64_t MarianTokenizer::piece_to_id(std::string_view piece) const {
  const int64_t id = vocab_.find(piece);
  return id < 0 ? unk_id_ : id;
}

std::string MarianTokenizer::decode_ids(std::span<const int64_t> ids, bool skip_special_tokens) const {
  // transformers: runs between special tokens are decoded with target.spm, each special token is
  // written verbatim followed by a space, then word-boundary marks become spaces and the ends are stripped.
  std::string text;
  std::vector<std::string> run;
  for (const int64_t id : ids) {
    std::string piece = id_to_piece(id);
    if (!special_ids_.contains(id)) {
      run.push_back(std::move(piece));
      continue;
    }
    if (skip_special_tokens) continue;
    text += target_.decode_pieces(run) + piece + " ";
    run.clear();
  }
  text += target_.decode_pieces(run);
  std::string spaced;
  for (size_t at = 0; at < text.size();) {
    if (text.compare(at, kWordBoundary.size(), kWordBoundary) == 0) {
      spaced += ' ';
      at += kWordBoundary.size();
    } else {
      spaced += text[at++];
    }
  }
  return unicode::strip_python_space(spaced);
}

}  // namespace tcat::tokenizer

#include "tokenizer/wordpiece.h"

#include "core/error.h"
#include "tokenizer/files.h"
#include "tokenizer/unicode.h"

namespace tcat::tokenizer {

namespace {

constexpr size_t kMaxCharsPerWord = 100;  // longer words become [UNK]

// transformers' _is_punctuation: the ASCII symbol ranges count as punctuation besides Unicode P*.
bool is_punctuation(char32_t c) {
  if ((c >= 33 && c <= 47) || (c >= 58 && c <= 64) || (c >= 91 && c <= 96) || (c >= 123 && c <= 126)) return true;
  return unicode::is_punctuation_category(c);
}

// transformers' _is_chinese_char: the CJK Unified Ideographs blocks (not Japanese kana or Hangul).
bool is_cjk_ideograph(char32_t c) {
  return (c >= 0x4E00 && c <= 0x9FFF) || (c >= 0x3400 && c <= 0x4DBF) || (c >= 0x20000 && c <= 0x2A6DF) ||
         (c >= 0x2A700 && c <= 0x2B73F) || (c >= 0x2B740 && c <= 0x2B81F) || (c >= 0x2B820 && c <= 0x2CEAF) ||
         (c >= 0xF900 && c <= 0xFAFF) || (c >= 0x2F800 && c <= 0x2FA1F);
}

bool is_bert_whitespace(char32_t c) {
  return c == U' ' || c == U'\t' || c == U'\n' || c == U'\r' || unicode::is_space_separator(c);
}

bool is_bert_control(char32_t c) {
  return c != U'\t' && c != U'\n' && c != U'\r' && unicode::is_other_category(c);
}

// Python's str.split(): runs of whitespace separate words.
std::vector<std::u32string> split_on_space(std::u32string_view text) {
  std::vector<std::u32string> words;
  std::u32string word;
  for (const char32_t c : text) {
    if (unicode::is_python_space(c)) {
      if (!word.empty()) words.push_back(std::move(word));
      word.clear();
    } else {
      word.push_back(c);
    }
  }
  if (!word.empty()) words.push_back(std::move(word));
  return words;
}

// vocab.txt read like Python's readlines() in text mode: \n, \r\n and \r all end a line.
std::vector<std::string> read_lines(const std::string& path) {
  const std::string text = read_file(path, "WordPiece vocabulary");
  std::vector<std::string> lines;
  std::string line;
  bool open_line = false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    if (c == '\n' || c == '\r') {
      if (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ++i;
      lines.push_back(std::move(line));
      line.clear();
      open_line = false;
    } else {
      line += c;
      open_line = true;
    }
  }
  if (open_line) lines.push_back(std::move(line));
  return lines;
}

}  // namespace

SpecialTokenNames WordPieceOptions::default_special_tokens() {
  SpecialTokenNames names;
  names.unk = "[UNK]", names.sep = "[SEP]", names.pad = "[PAD]", names.cls = "[CLS]", names.mask = "[MASK]";
  return names;
}

WordPieceTokenizer WordPieceTokenizer::load(const std::string& vocab_txt, const WordPieceOptions& options) {
  std::vector<std::string> lines = read_lines(vocab_txt);
  TCAT_CHECK(!lines.empty(), "WordPiece vocabulary '{}' is empty", vocab_txt);
  for (size_t i = 0; i < lines.size(); ++i)
    unicode::decode_utf8(lines[i], fmt::format("WordPiece vocabulary '{}' line {}", vocab_txt, i + 1));
  const std::string& unk = options.special_tokens.unk;
  TCAT_CHECK(std::find(lines.begin(), lines.end(), unk) != lines.end(),
             "WordPiece vocabulary '{}' has no unknown-word token '{}'", vocab_txt, unk);
  return WordPieceTokenizer(std::move(lines), options);
}

WordPieceTokenizer::WordPieceTokenizer(std::vector<std::string> id_to_token, const WordPieceOptions& options)
    : vocab_(std::move(id_to_token)), options_(options) {
  std::vector<AddedToken> added;
  for (const std::string& name : options_.special_tokens.all()) {
    const int64_t id = vocab_.find(name);
    if (id < 0) continue;
    added.push_back({name, id});
    special_ids_.insert(id);
  }
  added_ = AddedTokens(std::move(added));
  const SpecialTokenNames& names = options_.special_tokens;
  pad_id_ = vocab_.find(names.pad), unk_id_ = vocab_.find(names.unk), cls_id_ = vocab_.find(names.cls);
  sep_id_ = vocab_.find(names.sep), mask_id_ = vocab_.find(names.mask);
}

std::vector<std::u32string> WordPieceTokenizer::basic_tokenize(std::string_view text) const {
  const std::u32string input = unicode::decode_utf8(text, "WordPiece encode");
  // transformers lower-cases the text one character at a time before BasicTokenizer runs.
  std::u32string cleaned;
  for (const char32_t c : input) {
    if (c == 0 || c == 0xFFFD || is_bert_control(c)) continue;
    if (is_bert_whitespace(c)) {
      cleaned.push_back(U' ');
    } else if (options_.tokenize_chinese_chars && is_cjk_ideograph(c)) {
      cleaned += U' ';
      cleaned.push_back(c);
      cleaned += U' ';
    } else if (options_.do_lower_case) {
      unicode::append_python_lower(cleaned, c);
    } else {
      cleaned.push_back(c);
    }
  }
  std::vector<std::u32string> tokens;
  for (std::u32string word : split_on_space(unicode::nfc(cleaned))) {
    if (options_.strip_accents.value_or(options_.do_lower_case)) {  // NFD, then drop the marks
      const std::u32string decomposed = unicode::nfd(word);
      word.clear();
      for (const char32_t c : decomposed)
        if (!unicode::is_nonspacing_mark(c)) word.push_back(c);
    }
    std::u32string run;
    for (const char32_t c : word) {
      if (!is_punctuation(c)) {
        run.push_back(c);
        continue;
      }
      if (!run.empty()) tokens.push_back(std::move(run));
      run.clear();
      tokens.emplace_back(1, c);
    }
    if (!run.empty()) tokens.push_back(std::move(run));
  }
  return tokens;
}

void WordPieceTokenizer::append_word_pieces(const std::u32string& word, std::vector<std::string>& out) const {
  if (word.size() > kMaxCharsPerWord) {
    out.push_back(options_.special_tokens.unk);
    return;
  }
  std::vector<std::string> pieces;
  for (size_t start = 0; start < word.size();) {
    size_t end = word.size();
    std::string match;
    for (; end > start; --end) {
      std::string candidate = start > 0 ? "##" : "";
      candidate += unicode::encode_utf8(std::u32string_view(word).substr(start, end - start));
      if (vocab_.contains(candidate)) {
        match = std::move(candidate);
        break;
      }
    }
    if (end == start) {
      out.push_back(options_.special_tokens.unk);
      return;
    }
    pieces.push_back(std::move(match));
    start = end;
  }
  for (std::string& piece : pieces) out.push_back(std::move(piece));
}

std::vector<std::string> WordPieceTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> pieces;
  for (const AddedTokens::Segment& segment : added_.split(text)) {
    if (segment.token) {
      pieces.emplace_back(segment.text);
      continue;
    }
    for (const std::u32string& word : basic_tokenize(segment.text)) append_word_pieces(word, pieces);
  }
  return pieces;
}

std::vector<int64_t> WordPieceTokenizer::encode(std::string_view text) const {
  std::vector<int64_t> ids;
  for (const std::string& piece : tokenize(text)) ids.push_back(piece_to_id(piece));
  return ids;
}

std::vector<int64_t> WordPieceTokenizer::encode_with_special_tokens(std::string_view text) const {
  std::vector<int64_t> ids = encode(text);
  TCAT_CHECK(cls_id_ >= 0 && sep_id_ >= 0, "WordPiece: the vocabulary has no '{}' or '{}' to frame the text with",
             options_.special_tokens.cls, options_.special_tokens.sep);
  ids.insert(ids.begin(), cls_id_);
  ids.push_back(sep_id_);
  return ids;
}

std::string WordPieceTokenizer::id_to_piece(int64_t id) const { return vocab_.piece(id, "WordPiece"); }

int64_t WordPieceTokenizer::piece_to_id(std::string_view piece) const {
  const int64_t id = vocab_.find(piece);
  return id < 0 ? unk_id_ : id;
}

std::string WordPieceTokenizer::decode_ids(std::span<const int64_t> ids, bool skip_special_tokens) const {
  // transformers: " ".join(tokens).replace(" ##", "").strip()
  std::string text;
  for (const int64_t id : ids) {
    const std::string piece = id_to_piece(id);
    if (skip_special_tokens && special_ids_.contains(id)) continue;
    if (!text.empty()) text += ' ';
    text += piece;
  }
  std::string joined;
  for (size_t at = 0; at < text.size();) {
    if (text.compare(at, 3, " ##") == 0) {
      at += 3;
    } else {
      joined += text[at++];
    }
  }
  return unicode::strip_python_space(joined);
}

}  // namespace tcat::tokenizer

#include "tokenizer/added_tokens.h"

#include "tokenizer/unicode.h"

namespace tcat::tokenizer {

namespace {

// Bytes of Python-whitespace (str.lstrip/rstrip) at the start or end of UTF-8 `text`.
size_t leading_space_bytes(std::string_view text) {
  const std::u32string cps = unicode::decode_utf8(text, "added-token splitting");
  size_t n = 0;
  while (n < cps.size() && unicode::is_python_space(cps[n])) ++n;
  return unicode::encode_utf8(std::u32string_view(cps).substr(0, n)).size();
}

size_t trailing_space_bytes(std::string_view text) {
  const std::u32string cps = unicode::decode_utf8(text, "added-token splitting");
  size_t n = cps.size();
  while (n > 0 && unicode::is_python_space(cps[n - 1])) --n;
  return unicode::encode_utf8(std::u32string_view(cps).substr(n)).size();
}

}  // namespace

AddedTokens::AddedTokens(std::vector<AddedToken> tokens) : tokens_(std::move(tokens)) {
  std::erase_if(tokens_, [](const AddedToken& t) { return t.content.empty(); });
}

const AddedToken* AddedTokens::find(std::string_view content) const {
  for (const AddedToken& t : tokens_)
    if (t.content == content) return &t;
  return nullptr;
}

std::vector<AddedTokens::Segment> AddedTokens::split(std::string_view text) const {
  std::vector<Segment> pieces;
  size_t text_start = 0;
  for (size_t at = 0; at < text.size();) {
    const AddedToken* best = nullptr;
    for (const AddedToken& t : tokens_)
      if (text.substr(at).starts_with(t.content) && (!best || t.content.size() > best->content.size())) best = &t;
    if (!best) {
      ++at;
      continue;
    }
    if (at > text_start) pieces.push_back({text.substr(text_start, at - text_start), nullptr});
    pieces.push_back({text.substr(at, best->content.size()), best});
    at += best->content.size();
    text_start = at;
  }
  if (text_start < text.size()) pieces.push_back({text.substr(text_start), nullptr});

  for (size_t i = 0; i < pieces.size(); ++i) {
    if (!pieces[i].token) continue;
    if (pieces[i].token->lstrip && i > 0 && !pieces[i - 1].token) {
      std::string_view& left = pieces[i - 1].text;
      left.remove_suffix(trailing_space_bytes(left));
    }
    if (pieces[i].token->rstrip && i + 1 < pieces.size() && !pieces[i + 1].token) {
      std::string_view& right = pieces[i + 1].text;
      right.remove_prefix(leading_space_bytes(right));
    }
  }
  std::erase_if(pieces, [](const Segment& s) { return !s.token && s.text.empty(); });
  return pieces;
}

}  // namespace tcat::tokenizer

#include "tokenizer/unicode.h"

#include <utf8proc.h>

#include <cstdlib>
#include <memory>

#include "core/error.h"

namespace tcat::tokenizer::unicode {

namespace {

struct Decoded {
  char32_t cp;    // valid only when `valid`
  size_t length;  // bytes consumed: the whole sequence, or its maximal invalid prefix (at least 1)
  bool valid;
};

// One UTF-8 sequence at `at`, following the Unicode "maximal subpart" rule for invalid input.
Decoded next_code_point(std::string_view s, size_t at) {
  const auto byte = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned lead = byte(at);
  if (lead < 0x80) return {lead, 1, true};
  size_t need;
  unsigned second_lo = 0x80, second_hi = 0xBF;
  char32_t cp;
  if (lead >= 0xC2 && lead <= 0xDF) {
    need = 1, cp = lead & 0x1F;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    need = 2, cp = lead & 0x0F;
    if (lead == 0xE0) second_lo = 0xA0;
    if (lead == 0xED) second_hi = 0x9F;
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    need = 3, cp = lead & 0x07;
    if (lead == 0xF0) second_lo = 0x90;
    if (lead == 0xF4) second_hi = 0x8F;
  } else {
    return {0, 1, false};
  }
  for (size_t k = 1; k <= need; ++k) {
    const unsigned lo = k == 1 ? second_lo : 0x80, hi = k == 1 ? second_hi : 0xBF;
    if (at + k >= s.size() || byte(at + k) < lo || byte(at + k) > hi) return {0, k, false};
    cp = (cp << 6) | (byte(at + k) & 0x3F);
  }
  return {cp, need + 1, true};
}

int category(char32_t cp) { return utf8proc_category(static_cast<utf8proc_int32_t>(cp)); }

std::u32string normalize(std::u32string_view text, utf8proc_option_t form) {
  const std::string utf8 = encode_utf8(text);
  utf8proc_uint8_t* raw = nullptr;
  const auto size = utf8proc_map(reinterpret_cast<const utf8proc_uint8_t*>(utf8.data()),
                                 static_cast<utf8proc_ssize_t>(utf8.size()), &raw,
                                 static_cast<utf8proc_option_t>(UTF8PROC_STABLE | form));
  TCAT_CHECK(size >= 0, "Unicode normalization failed: {}", utf8proc_errmsg(size));
  const std::unique_ptr<utf8proc_uint8_t, decltype(&std::free)> owned(raw, &std::free);
  return decode_utf8({reinterpret_cast<const char*>(raw), static_cast<size_t>(size)}, "normalized text");
}

}  // namespace

std::u32string decode_utf8(std::string_view text, std::string_view who) {
  std::u32string out;
  out.reserve(text.size());
  for (size_t at = 0; at < text.size();) {
    const Decoded d = next_code_point(text, at);
    TCAT_CHECK(d.valid, "{}: the text is not valid UTF-8 (byte {} of {}, 0x{:02X})", who, at, text.size(),
               static_cast<unsigned char>(text[at]));
    out.push_back(d.cp);
    at += d.length;
  }
  return out;
}

std::string repair_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t at = 0; at < bytes.size();) {
    const Decoded d = next_code_point(bytes, at);
    if (d.valid)
      out.append(bytes.substr(at, d.length));
    else
      append_utf8(out, 0xFFFD);
    at += d.length;
  }
  return out;
}

std::string strip_python_space(std::string_view text) {
  const std::u32string cps = decode_utf8(text, "strip");
  size_t begin = 0, end = cps.size();
  while (begin < end && is_python_space(cps[begin])) ++begin;
  while (end > begin && is_python_space(cps[end - 1])) --end;
  return encode_utf8(std::u32string_view(cps).substr(begin, end - begin));
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string encode_utf8(std::u32string_view text) {
  std::string out;
  out.reserve(text.size());
  for (const char32_t cp : text) append_utf8(out, cp);
  return out;
}

bool is_letter(char32_t cp) {
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_LU:
    case UTF8PROC_CATEGORY_LL:
    case UTF8PROC_CATEGORY_LT:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_LO:
      return true;
    default:
      return false;
  }
}

bool is_number(char32_t cp) {
  const int c = category(cp);
  return c == UTF8PROC_CATEGORY_ND || c == UTF8PROC_CATEGORY_NL || c == UTF8PROC_CATEGORY_NO;
}

bool is_white_space(char32_t cp) {
  return (cp >= 0x09 && cp <= 0x0D) || cp == 0x20 || cp == 0x85 || cp == 0xA0 || cp == 0x1680 ||
         (cp >= 0x2000 && cp <= 0x200A) || cp == 0x2028 || cp == 0x2029 || cp == 0x202F || cp == 0x205F ||
         cp == 0x3000;
}

bool is_python_space(char32_t cp) { return is_white_space(cp) || (cp >= 0x1C && cp <= 0x1F); }

bool is_other_category(char32_t cp) {
  switch (category(cp)) {
    case UTF8PROC_CATEGORY_CC:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_CS:
    case UTF8PROC_CATEGORY_CO:
    case UTF8PROC_CATEGORY_CN:
      return true;
    default:
      return false;
  }
}

bool is_space_separator(char32_t cp) { return category(cp) == UTF8PROC_CATEGORY_ZS; }
bool is_nonspacing_mark(char32_t cp) { return category(cp) == UTF8PROC_CATEGORY_MN; }

bool is_punctuation_category(char32_t cp) {
  const int c = category(cp);
  return c >= UTF8PROC_CATEGORY_PC && c <= UTF8PROC_CATEGORY_PO;
}

std::u32string nfc(std::u32string_view text) {
  return normalize(text, static_cast<utf8proc_option_t>(UTF8PROC_COMPOSE));
}
std::u32string nfd(std::u32string_view text) {
  return normalize(text, static_cast<utf8proc_option_t>(UTF8PROC_DECOMPOSE));
}

void append_python_lower(std::u32string& out, char32_t cp) {
  if (cp == 0x130) {  // the one unconditional multi-character lowercase mapping (SpecialCasing.txt)
    out += U"i\u0307";
    return;
  }
  out.push_back(static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(cp))));
}

}  // namespace tcat::tokenizer::unicode

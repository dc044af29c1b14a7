// Unicode helpers the tokenizers share: UTF-8 <-> code points, character classes as Python and
// transformers define them, normalization and case mapping (through utf8proc).
#pragma once
#include <string>
#include <string_view>

namespace tcat::tokenizer::unicode {

// Code points of UTF-8 `text`; invalid UTF-8 is an error naming `who` and the byte offset.
std::u32string decode_utf8(std::string_view text, std::string_view who);
// Like Python's bytes.decode("utf-8", errors="replace"): each maximal invalid subsequence becomes U+FFFD.
std::string repair_utf8(std::string_view bytes);

// Python's str.strip() of UTF-8 text.
std::string strip_python_space(std::string_view text);

void append_utf8(std::string& out, char32_t cp);
std::string encode_utf8(std::u32string_view text);

bool is_letter(char32_t cp);              // \p{L}
bool is_number(char32_t cp);              // \p{N}
bool is_white_space(char32_t cp);         // the White_Space property (regex \s)
bool is_python_space(char32_t cp);        // Python's str.isspace
bool is_other_category(char32_t cp);      // \p{C}: control, format, surrogate, private use, unassigned
bool is_space_separator(char32_t cp);     // Zs
bool is_nonspacing_mark(char32_t cp);     // Mn
bool is_punctuation_category(char32_t cp);  // \p{P}

std::u32string nfc(std::u32string_view text);
std::u32string nfd(std::u32string_view text);
// Python's str.lower() of one character (full mapping: U+0130 becomes "i" + U+0307).
void append_python_lower(std::u32string& out, char32_t cp);

}  // namespace tcat::tokenizer::unicode

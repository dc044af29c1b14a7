#include "eval/bleu.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <utf8proc.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <unordered_map>

#include "core/build_info.h"
#include "core/error.h"

namespace tcat::eval {
namespace {

// ---- UTF-8 -------------------------------------------------------------------------------------

// Decodes the code point starting at s[i] into cp and returns its length in bytes, or returns 0
// when the bytes there are not valid UTF-8 (overlong forms, surrogates and values above U+10FFFF
// are invalid, as for Python's strict decoder).
size_t decode_utf8(std::string_view s, size_t i, char32_t& cp) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char b0 = byte(i);
  if (b0 < 0x80) {
    cp = b0;
    return 1;
  }
  size_t len;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    len = 2;
    cp = b0 & 0x1F;
  } else if (b0 >= 0xE0 && b0 <= 0xEF) {
    len = 3;
    cp = b0 & 0x0F;
    if (b0 == 0xE0) lo = 0xA0;  // no overlong forms
    if (b0 == 0xED) hi = 0x9F;  // no surrogates
  } else if (b0 >= 0xF0 && b0 <= 0xF4) {
    len = 4;
    cp = b0 & 0x07;
    if (b0 == 0xF0) lo = 0x90;  // no overlong forms
    if (b0 == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (i + len > s.size()) return 0;
  for (size_t k = 1; k < len; ++k) {
    const unsigned char b = byte(i + k);
    if (b < (k == 1 ? lo : 0x80) || b > (k == 1 ? hi : 0xBF)) return 0;
    cp = (cp << 6) | (b & 0x3F);
  }
  return len;
}

void append_utf8(std::string& out, char32_t cp) {
  utf8proc_uint8_t buf[4];
  const auto n = utf8proc_encode_char(static_cast<utf8proc_int32_t>(cp), buf);
  out.append(reinterpret_cast<const char*>(buf), static_cast<size_t>(n));
}

// ---- Python's whitespace -----------------------------------------------------------------------

// Length in bytes of the whitespace character (Python's str.isspace()) that starts at s[i], or 0.
size_t space_length_at(std::string_view s, size_t i) {
  const auto at = [&](size_t k) { return i + k < s.size() ? static_cast<unsigned char>(s[i + k]) : 0u; };
  const unsigned b0 = at(0);
  if ((b0 >= 0x09 && b0 <= 0x0D) || (b0 >= 0x1C && b0 <= 0x20)) return 1;
  if (b0 == 0xC2) return at(1) == 0x85 || at(1) == 0xA0 ? 2 : 0;  // U+0085, U+00A0
  const unsigned b1 = at(1), b2 = at(2);
  if (b0 == 0xE1) return b1 == 0x9A && b2 == 0x80 ? 3 : 0;  // U+1680
  if (b0 == 0xE2 && b1 == 0x80)                              // U+2000..U+200A, U+2028, U+2029, U+202F
    return (b2 >= 0x80 && b2 <= 0x8A) || b2 == 0xA8 || b2 == 0xA9 || b2 == 0xAF ? 3 : 0;
  if (b0 == 0xE2 && b1 == 0x81) return b2 == 0x9F ? 3 : 0;  // U+205F
  if (b0 == 0xE3) return b1 == 0x80 && b2 == 0x80 ? 3 : 0;  // U+3000
  return 0;
}

// Python's str.rstrip().
std::string_view rstrip(std::string_view s) {
  for (bool stripped = true; stripped && !s.empty();) {
    stripped = false;
    for (size_t len = 1; len <= 3 && len <= s.size(); ++len) {
      if (space_length_at(s, s.size() - len) == len) {
        s.remove_suffix(len);
        stripped = true;
        break;
      }
    }
  }
  return s;
}

// Python's ' '.join(s.split()): the tokens, separated by single spaces.
std::string join_tokens(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  bool in_space = true;
  for (size_t i = 0; i < s.size();) {
    if (const size_t n = space_length_at(s, i)) {
      in_space = true;
      i += n;
      continue;
    }
    if (in_space && !out.empty()) out += ' ';
    in_space = false;
    out += s[i++];
  }
  return out;
}

// ---- Lowercasing -------------------------------------------------------------------------------

// Code points at or above this stand for a byte that is not valid UTF-8.
constexpr char32_t kRawByte = 0x110000;

bool is_cased(char32_t c) {
  if (c >= kRawByte) return false;
  const auto cp = static_cast<utf8proc_int32_t>(c);
  const auto cat = utf8proc_category(cp);
  // Unicode's Cased is Lu + Ll + Lt + Other_Lowercase + Other_Uppercase. utf8proc has no table for
  // the last two: having a case mapping covers most of them, and the rest (checked against Python
  // for every code point) are the ordinal indicators and the squared / negative squared Latin capitals.
  return cat == UTF8PROC_CATEGORY_LU || cat == UTF8PROC_CATEGORY_LL || cat == UTF8PROC_CATEGORY_LT ||
         utf8proc_tolower(cp) != cp || utf8proc_toupper(cp) != cp || c == 0xAA || c == 0xBA ||
         (c >= 0x1F130 && c <= 0x1F149) || (c >= 0x1F150 && c <= 0x1F169) || (c >= 0x1F170 && c <= 0x1F189);
}

bool is_case_ignorable(char32_t c) {
  if (c >= kRawByte) return false;
  switch (utf8proc_category(static_cast<utf8proc_int32_t>(c))) {
    case UTF8PROC_CATEGORY_MN:
    case UTF8PROC_CATEGORY_ME:
    case UTF8PROC_CATEGORY_CF:
    case UTF8PROC_CATEGORY_LM:
    case UTF8PROC_CATEGORY_SK:
      return true;
    default:
      break;
  }
  // Word_Break MidLetter, MidNumLet and Single_Quote.
  static constexpr char32_t kWordInternal[] = {0x27,   0x2E,   0x3A,   0xB7,   0x387,  0x55F,  0x5F4,  0x2018, 0x2019,
                                               0x2024, 0x2027, 0xFE13, 0xFE52, 0xFE55, 0xFF07, 0xFF0E, 0xFF1A};
  return std::find(std::begin(kWordInternal), std::end(kWordInternal), c) != std::end(kWordInternal);
}

// Unicode's Final_Sigma condition for the capital sigma at cps[i]: a cased letter before it and none
// after it, skipping case-ignorable characters in both directions.
bool is_final_sigma(const std::vector<char32_t>& cps, size_t i) {
  size_t j = i;
  while (j > 0 && is_case_ignorable(cps[j - 1])) --j;
  if (j == 0 || !is_cased(cps[j - 1])) return false;
  size_t k = i + 1;
  while (k < cps.size() && is_case_ignorable(cps[k])) ++k;
  return k == cps.size() || !is_cased(cps[k]);
}

// ---- 13a ---------------------------------------------------------------------------------------

// Python's str.replace: non-overlapping occurrences, left to right, replacements not rescanned.
void replace_all(std::string& s, std::string_view from, std::string_view to) {
  std::string out;
  size_t start = 0;
  for (size_t pos; (pos = s.find(from, start)) != std::string::npos; start = pos + from.size()) {
    out.append(s, start, pos - start);
    out += to;
  }
  if (start == 0) return;
  out.append(s, start, std::string::npos);
  s = std::move(out);
}

// The class of 13a's first regex, [\{-\~\[-\` -\&\(-\+\:-\@\/]: ASCII symbols other than ' , - .
bool is_13a_symbol(char c) {
  return (c >= '{' && c <= '~') || (c >= '[' && c <= '`') || (c >= ' ' && c <= '&') || (c >= '(' && c <= '+') ||
         (c >= ':' && c <= '@') || c == '/';
}
bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_period_or_comma(char c) { return c == '.' || c == ','; }

// One re.sub pass of a two-character pattern (first, second) -> emit(out, first, second): matches
// are taken left to right without overlapping. Working on bytes gives the same result as on code
// points, since every character class involved is ASCII or the complement of an ASCII class and
// the replacements only insert spaces next to the ASCII character.
template <typename First, typename Second, typename Emit>
std::string substitute_pairs(std::string_view s, First first, Second second, Emit emit) {
  std::string out;
  out.reserve(s.size() + s.size() / 4);
  for (size_t i = 0; i < s.size();) {
    if (i + 1 < s.size() && first(s[i]) && second(s[i + 1])) {
      emit(out, s[i], s[i + 1]);
      i += 2;
    } else {
      out += s[i++];
    }
  }
  return out;
}

// ---- n-grams -----------------------------------------------------------------------------------

// N-gram counts of orders 1..kBleuMaxOrder. Keys view into the preprocessed segment (tokens separated
// by single spaces), so an n-gram is one contiguous substring and tokens never contain a space.
struct NgramCounts {
  std::array<std::unordered_map<std::string_view, int64_t>, kBleuMaxOrder> by_order;
  int64_t length = 0;
};

NgramCounts count_ngrams(std::string_view tokens) {
  std::vector<size_t> starts, ends;
  for (size_t i = 0; i < tokens.size();) {
    const size_t space = std::min(tokens.find(' ', i), tokens.size());
    starts.push_back(i);
    ends.push_back(space);
    i = space + 1;
  }
  NgramCounts counts;
  counts.length = static_cast<int64_t>(starts.size());
  for (size_t n = 1; n <= kBleuMaxOrder && n <= starts.size(); ++n)
    for (size_t i = 0; i + n <= starts.size(); ++i)
      ++counts.by_order[n - 1][tokens.substr(starts[i], ends[i + n - 1] - starts[i])];
  return counts;
}

// ---- files -------------------------------------------------------------------------------------

// How messages name a file: "-" is standard input.
std::string describe_path(const std::string& path) { return path == "-" ? "standard input" : fmt::format("'{}'", path); }

std::string read_stream(FILE* file, const std::string& path) {
  std::string data;
  char buf[1 << 16];
  while (const size_t n = std::fread(buf, 1, sizeof buf, file)) data.append(buf, n);
  if (std::ferror(file)) fail("cannot read {}: {}", describe_path(path), std::strerror(errno));
  return data;
}

std::string read_all(const std::string& path) {
  if (path == "-") return read_stream(stdin, path);
  FILE* file = std::fopen(path.c_str(), "rb");
  if (!file) fail("cannot open {}: {}", describe_path(path), std::strerror(errno));
  struct Closer {
    FILE* file;
    ~Closer() { std::fclose(file); }
  } closer{file};
  return read_stream(file, path);
}

}  // namespace

BleuTokenize bleu_tokenize_from_name(std::string_view name) {
  if (name == "13a") return BleuTokenize::k13a;
  if (name == "none") return BleuTokenize::kNone;
  throw UsageError(fmt::format("unknown BLEU tokenizer '{}' (choose 13a or none)", name));
}

std::string_view bleu_tokenize_name(BleuTokenize tokenize) { return tokenize == BleuTokenize::k13a ? "13a" : "none"; }

BleuStats& BleuStats::operator+=(const BleuStats& other) {
  for (int n = 0; n < kBleuMaxOrder; ++n) {
    matches[n] += other.matches[n];
    totals[n] += other.totals[n];
  }
  hyp_len += other.hyp_len;
  ref_len += other.ref_len;
  return *this;
}

std::string unicode_lowercase(std::string_view text) {
  std::vector<char32_t> cps;
  cps.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    char32_t cp;
    const size_t n = decode_utf8(text, i, cp);
    cps.push_back(n ? cp : kRawByte + static_cast<unsigned char>(text[i]));
    i += n ? n : 1;
  }
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < cps.size(); ++i) {
    const char32_t c = cps[i];
    if (c >= kRawByte) {
      out += static_cast<char>(c - kRawByte);
    } else if (c == 0x130) {  // LATIN CAPITAL LETTER I WITH DOT ABOVE: the one unconditional multi-character mapping
      out += 'i';
      append_utf8(out, 0x307);
    } else if (c == 0x3A3) {  // GREEK CAPITAL LETTER SIGMA
      append_utf8(out, is_final_sigma(cps, i) ? 0x3C2 : 0x3C3);
    } else {
      append_utf8(out, static_cast<char32_t>(utf8proc_tolower(static_cast<utf8proc_int32_t>(c))));
    }
  }
  return out;
}

std::string tokenize_13a(std::string_view line) {
  // The steps and their order are mteval-v13a's, as sacreBLEU's Tokenizer13a runs them.
  std::string s(line);
  replace_all(s, "<skipped>", "");
  replace_all(s, "-\n", "");
  replace_all(s, "\n", " ");
  replace_all(s, "&quot;", "\"");
  replace_all(s, "&amp;", "&");
  replace_all(s, "&lt;", "<");
  replace_all(s, "&gt;", ">");
  // The padding matters: a final period is followed by a space and so gets split off (rule 3).
  std::string padded;
  padded.reserve(s.size() * 2 + 2);
  padded += ' ';
  for (const char c : s) {
    if (is_13a_symbol(c)) {
      padded += ' ';
      padded += c;
      padded += ' ';
    } else {
      padded += c;
    }
  }
  padded += ' ';
  const auto not_digit = [](char c) { return !is_digit(c); };
  const auto is_dash = [](char c) { return c == '-'; };
  const auto a_space_b_space = [](std::string& out, char a, char b) {
    out += a;
    out += ' ';
    out += b;
    out += ' ';
  };
  const auto space_a_space_b = [](std::string& out, char a, char b) {
    out += ' ';
    out += a;
    out += ' ';
    out += b;
  };
  // Periods and commas are split off unless preceded by a digit, or unless followed by one; a dash
  // is split off after a digit.
  std::string t = substitute_pairs(padded, not_digit, is_period_or_comma, a_space_b_space);
  t = substitute_pairs(t, is_period_or_comma, not_digit, space_a_space_b);
  t = substitute_pairs(t, is_digit, is_dash, a_space_b_space);
  return join_tokens(t);
}

std::string bleu_preprocess(std::string_view segment, const BleuOptions& options) {
  std::string lowered;
  if (options.lowercase) {
    lowered = unicode_lowercase(segment);
    segment = lowered;
  }
  segment = rstrip(segment);
  return options.tokenize == BleuTokenize::k13a ? tokenize_13a(segment) : join_tokens(segment);
}

BleuStats sentence_stats(std::string_view hyp, const std::vector<std::string>& refs, const BleuOptions& options) {
  TCAT_CHECK(!refs.empty(), "BLEU: a hypothesis needs at least one reference, got none");
  const std::string hyp_tokens = bleu_preprocess(hyp, options);
  std::vector<std::string> ref_tokens;
  ref_tokens.reserve(refs.size());
  for (const std::string& ref : refs) ref_tokens.push_back(bleu_preprocess(ref, options));

  const NgramCounts hyp_counts = count_ngrams(hyp_tokens);
  NgramCounts max_ref_counts;  // per n-gram, its largest count in any one reference
  int64_t closest_len = -1;
  for (const std::string& tokens : ref_tokens) {
    const NgramCounts counts = count_ngrams(tokens);
    const int64_t diff = std::abs(counts.length - hyp_counts.length);
    const int64_t best_diff = std::abs(closest_len - hyp_counts.length);
    if (closest_len < 0 || diff < best_diff || (diff == best_diff && counts.length < closest_len))
      closest_len = counts.length;
    for (int n = 0; n < kBleuMaxOrder; ++n)
      for (const auto& [ngram, count] : counts.by_order[n]) {
        int64_t& best = max_ref_counts.by_order[n][ngram];
        best = std::max(best, count);
      }
  }

  BleuStats stats;
  stats.hyp_len = hyp_counts.length;
  stats.ref_len = closest_len;
  for (int n = 0; n < kBleuMaxOrder; ++n)
    for (const auto& [ngram, count] : hyp_counts.by_order[n]) {
      stats.totals[n] += count;
      const auto it = max_ref_counts.by_order[n].find(ngram);
      if (it != max_ref_counts.by_order[n].end()) stats.matches[n] += std::min(count, it->second);
    }
  return stats;
}

BleuResult bleu_from_stats(const BleuStats& stats, const BleuOptions& options) {
  // Same operations in the same order as sacreBLEU's BLEU.compute_bleu, so the doubles agree.
  BleuResult r;
  r.stats = stats;
  const auto hyp_len = static_cast<double>(stats.hyp_len), ref_len = static_cast<double>(stats.ref_len);
  r.bp = stats.hyp_len >= stats.ref_len ? 1.0 : stats.hyp_len > 0 ? std::exp(1.0 - ref_len / hyp_len) : 0.0;
  r.ratio = stats.ref_len > 0 ? hyp_len / ref_len : 0.0;
  if (std::all_of(stats.matches.begin(), stats.matches.end(), [](int64_t m) { return m == 0; })) return r;

  double smooth = 1.0;  // mteval's smoothing: each order without matches halves the credit again
  int orders = kBleuMaxOrder;
  for (int n = 0; n < kBleuMaxOrder && stats.totals[n] > 0; ++n) {
    if (options.effective_order) orders = n + 1;
    const auto total = static_cast<double>(stats.totals[n]);
    if (stats.matches[n] == 0) {
      smooth *= 2;
      r.precisions[n] = 100.0 / (smooth * total);
    } else {
      r.precisions[n] = 100.0 * static_cast<double>(stats.matches[n]) / total;
    }
  }
  // sacreBLEU takes log(0) as -9999999999, which makes the score exactly 0.
  double log_sum = 0;
  for (int n = 0; n < orders; ++n) {
    if (r.precisions[n] == 0.0) return r;
    log_sum += std::log(r.precisions[n]);
  }
  r.score = r.bp * std::exp(log_sum / orders);
  return r;
}

BleuResult corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& ref_sets,
                       const BleuOptions& options) {
  TCAT_CHECK(!ref_sets.empty(), "BLEU: no references given");
  for (size_t k = 0; k < ref_sets.size(); ++k)
    TCAT_CHECK(ref_sets[k].size() == hyps.size(), "BLEU: reference set {} has {} segments but there are {} hypotheses",
               k + 1, ref_sets[k].size(), hyps.size());
  BleuStats total;
  std::vector<std::string> refs(ref_sets.size());
  for (size_t i = 0; i < hyps.size(); ++i) {
    for (size_t k = 0; k < ref_sets.size(); ++k) refs[k] = ref_sets[k][i];
    total += sentence_stats(hyps[i], refs, options);
  }
  return bleu_from_stats(total, options);
}

std::string bleu_signature(int64_t nrefs, const BleuOptions& options) {
  return fmt::format("nrefs:{}|case:{}|eff:{}|tok:{}|smooth:exp|version:tcat-{}", nrefs,
                     options.lowercase ? "lc" : "mixed", options.effective_order ? "yes" : "no",
                     bleu_tokenize_name(options.tokenize), build_info().version);
}

std::string format_bleu(const BleuResult& r) {
  return fmt::format("BLEU = {:.2f} {:.1f} (BP = {:.3f} ratio = {:.3f} hyp_len = {} ref_len = {})", r.score,
                     fmt::join(r.precisions, "/"), r.bp, r.ratio, r.stats.hyp_len, r.stats.ref_len);
}

std::vector<std::string> read_segments(const std::string& path) {
  const std::string data = read_all(path);
  std::vector<std::string> lines;
  for (size_t start = 0; start < data.size();) {
    const size_t end = std::min(data.find('\n', start), data.size());
    const std::string_view line(data.data() + start, end - start);
    for (size_t i = 0; i < line.size();) {
      char32_t cp;
      const size_t n = decode_utf8(line, i, cp);
      if (n == 0)
        fail("{} line {}: invalid UTF-8 at byte {} of the line (byte 0x{:02X}); BLEU needs UTF-8 text",
             describe_path(path),
             lines.size() + 1, i + 1, static_cast<unsigned char>(line[i]));
      i += n;
    }
    lines.emplace_back(line);
    start = end + 1;
  }
  return lines;
}

BleuResult corpus_bleu_files(const std::vector<std::string>& ref_paths, const std::string& hyp_path,
                             const BleuOptions& options) {
  TCAT_CHECK(!ref_paths.empty(), "BLEU: no reference file given");
  const std::vector<std::string> hyps = read_segments(hyp_path);
  std::vector<std::vector<std::string>> ref_sets;
  for (const std::string& ref_path : ref_paths) {
    ref_sets.push_back(read_segments(ref_path));
    TCAT_CHECK(ref_sets.back().size() == hyps.size(),
               "BLEU: the hypothesis file {} and the reference file {} differ in length ({} vs {} lines); "
               "they need one line per segment",
               describe_path(hyp_path), describe_path(ref_path), hyps.size(), ref_sets.back().size());
  }
  return corpus_bleu(hyps, ref_sets, options);
}

}  // namespace tcat::eval

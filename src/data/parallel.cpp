#include "data/parallel.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "core/error.h"

namespace tcat::data {

namespace {

std::vector<std::string> read_lines(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  TCAT_CHECK(in, "cannot open corpus file '{}': {}", path, std::strerror(errno));
  std::vector<std::string> lines;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    lines.push_back(std::move(line));
  }
  TCAT_CHECK(!in.bad(), "cannot read corpus file '{}': {}", path, std::strerror(errno));
  return lines;
}

bool is_blank(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](unsigned char c) { return c == ' ' || (c >= '\t' && c <= '\r'); });
}

}  // namespace

bool is_valid_utf8(std::string_view text) {
  const auto* p = reinterpret_cast<const unsigned char*>(text.data());
  const auto* end = p + text.size();
  while (p < end) {
    const unsigned char lead = *p;
    if (lead < 0x80) {
      ++p;
      continue;
    }
    // Allowed range of the second byte, which is what rules out overlong forms, surrogates and
    // code points above U+10FFFF (RFC 3629, section 4); later continuation bytes are 0x80..0xBF.
    int continuation;
    unsigned char lo = 0x80, hi = 0xBF;
    if (lead >= 0xC2 && lead <= 0xDF) {
      continuation = 1;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
      continuation = 2;
      if (lead == 0xE0) lo = 0xA0;
      if (lead == 0xED) hi = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
      continuation = 3;
      if (lead == 0xF0) lo = 0x90;
      if (lead == 0xF4) hi = 0x8F;
    } else {
      return false;
    }
    if (end - p <= continuation || p[1] < lo || p[1] > hi) return false;
    for (int i = 2; i <= continuation; ++i)
      if (p[i] < 0x80 || p[i] > 0xBF) return false;
    p += continuation + 1;
  }
  return true;
}

ParallelCorpus read_parallel_corpus(const std::string& src_path, const std::string& tgt_path) {
  std::vector<std::string> src = read_lines(src_path), tgt = read_lines(tgt_path);
  TCAT_CHECK(src.size() == tgt.size(),
             "parallel corpus files differ in length: '{}' has {} lines, '{}' has {} lines", src_path, src.size(),
             tgt_path, tgt.size());
  ParallelCorpus corpus;
  corpus.stats.read = int64_t(src.size());
  for (size_t i = 0; i < src.size(); ++i) {
    if (!is_valid_utf8(src[i]) || !is_valid_utf8(tgt[i])) {
      ++corpus.stats.skipped_invalid_utf8;
    } else if (is_blank(src[i]) || is_blank(tgt[i])) {
      ++corpus.stats.skipped_empty;
    } else {
      corpus.src.push_back(std::move(src[i]));
      corpus.tgt.push_back(std::move(tgt[i]));
    }
  }
  corpus.stats.kept = int64_t(corpus.src.size());
  return corpus;
}

}  // namespace tcat::data

// Parallel corpora: two plain-text files (source and target language) whose line i is a
// translation pair. The reader validates rather than trusts: both files must have the same number of
// lines; pairs with an empty side or invalid UTF-8 are dropped and counted.
#pragma once
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tcat::data {

struct CorpusStats {
  int64_t read = 0;                  // line pairs in the files
  int64_t kept = 0;
  int64_t skipped_empty = 0;         // either side empty or only whitespace
  int64_t skipped_invalid_utf8 = 0;  // either side not well-formed UTF-8 (checked before emptiness)
};

struct ParallelCorpus {
  std::vector<std::string> src, tgt;  // kept pairs, in file order, without line terminators
  CorpusStats stats;
};

// Lines end at \n; a trailing \r is removed (CRLF files); a last line without \n counts.
// Errors (tcat::Error): a file that cannot be read; different line counts (naming both files and counts).
ParallelCorpus read_parallel_corpus(const std::string& src_path, const std::string& tgt_path);

// Well-formed UTF-8 (RFC 3629): no overlong forms, surrogates, or code points above U+10FFFF.
bool is_valid_utf8(std::string_view text);

}  // namespace tcat::data

// Corpus BLEU that gives the numbers sacreBLEU 2.x gives with its defaults (checked against
// sacreBLEU 2.6.0): the mteval-v13a tokenizer, case-sensitive, n-gram orders 1..4, clipping against
// the largest count in any reference, the closest reference length for the brevity penalty, and
// exponential ("exp", mteval's) smoothing. Text is UTF-8; whitespace is what Python's str.split()
// splits on, since that is what sacreBLEU uses.
//
// Robustness: the library never rejects bytes. Invalid UTF-8 is tokenized byte by byte (it can come
// out of a byte-level detokenizer during training); read_segments() rejects it with the file and
// line, as sacreBLEU would fail to decode such a file.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tcat::eval {

inline constexpr int kBleuMaxOrder = 4;

enum class BleuTokenize { k13a, kNone };
// "13a" or "none" (sacreBLEU's names); anything else is a UsageError listing the choices.
BleuTokenize bleu_tokenize_from_name(std::string_view name);
std::string_view bleu_tokenize_name(BleuTokenize tokenize);

struct BleuOptions {
  BleuTokenize tokenize = BleuTokenize::k13a;
  bool lowercase = false;
  // sacreBLEU's effective_order: average only over the orders for which the hypotheses have
  // n-grams at all. Meant for sentence-level scores; off for corpus BLEU, as in sacreBLEU.
  bool effective_order = false;
};

// BLEU's sufficient statistics. Per-segment statistics add up to the corpus's, so a caller can
// accumulate them batch by batch and score once at the end.
struct BleuStats {
  std::array<int64_t, kBleuMaxOrder> matches{};  // clipped n-gram matches, index 0 = unigrams
  std::array<int64_t, kBleuMaxOrder> totals{};   // n-grams in the hypotheses
  int64_t hyp_len = 0;                           // hypothesis tokens
  int64_t ref_len = 0;                           // per segment the closest reference length (ties: the shorter)

  BleuStats& operator+=(const BleuStats& other);
  friend BleuStats operator+(BleuStats a, const BleuStats& b) { return a += b; }
  friend bool operator==(const BleuStats&, const BleuStats&) = default;
};

struct BleuResult {
  double score = 0;                                // 0..100
  std::array<double, kBleuMaxOrder> precisions{};  // percent, after smoothing
  double bp = 0;                                   // brevity penalty
  double ratio = 0;                                // hyp_len / ref_len (0 when ref_len is 0)
  BleuStats stats;
};

// Python's str.lower() (full Unicode case mapping: U+0130 becomes "i" + U+0307 and a word-final
// capital sigma becomes final sigma). Invalid UTF-8 bytes are copied unchanged.
std::string unicode_lowercase(std::string_view text);

// The mteval-v13a tokenization: tokens separated by single spaces.
std::string tokenize_13a(std::string_view line);

// What BLEU counts for one segment: optionally lowercased, trailing whitespace removed, tokenized,
// and returned as tokens separated by single spaces.
std::string bleu_preprocess(std::string_view segment, const BleuOptions& options = {});

// Statistics of one hypothesis against its references (at least one; an empty reference is a
// reference of length 0, as in sacreBLEU since 2.2).
BleuStats sentence_stats(std::string_view hyp, const std::vector<std::string>& refs, const BleuOptions& options = {});

// The score from (corpus) statistics. No n-gram match at all gives 0, as does an order with no
// hypothesis n-grams unless options.effective_order.
BleuResult bleu_from_stats(const BleuStats& stats, const BleuOptions& options = {});

// ref_sets[k][i] is the k-th reference of hyps[i] (sacreBLEU's layout: one list per reference set).
// An empty corpus scores 0.
BleuResult corpus_bleu(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& ref_sets,
                       const BleuOptions& options = {});

// sacreBLEU 2.x's signature layout, e.g. "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:tcat-0.1.0".
// The version field names tcat's version: the signature says which program computed the score.
std::string bleu_signature(int64_t nrefs, const BleuOptions& options = {});

// "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)", as sacreBLEU prints it.
std::string format_bleu(const BleuResult& result);

// One segment per line of a UTF-8 text file ("-" reads standard input), split at '\n' as sacreBLEU
// splits files: a final newline ends the last line rather than starting an empty one, and a '\r'
// stays in the line (bleu_preprocess removes it with the other trailing whitespace). Invalid UTF-8
// is an error naming file:line.
std::vector<std::string> read_segments(const std::string& path);

// corpus_bleu over files; every reference file must have as many lines as the hypothesis file.
BleuResult corpus_bleu_files(const std::vector<std::string>& ref_paths, const std::string& hyp_path,
                             const BleuOptions& options = {});

}  // namespace tcat::eval

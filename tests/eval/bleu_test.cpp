// BLEU against sacreBLEU's published numbers and against cases worked out by hand below.
//
// Sources of the reference numbers:
//  [T]  sacreBLEU's own test suite, test/test_bleu.py and test/test_sentence_bleu.py.
//  [R]  sacreBLEU's README (the corpus_score examples with two reference sets).
//  [H]  worked out by hand in the comment next to the test; the same values come out of
//       sacreBLEU 2.6.0's BLEU().corpus_score (printed to full precision where quoted).
#include "common/temp_dir.h"
#include "eval/bleu.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "core/build_info.h"
#include "core/error.h"

namespace tcat::eval {
namespace {

namespace fs = std::filesystem;
using Stats = std::array<int64_t, kBleuMaxOrder>;

BleuResult score(const std::vector<std::string>& hyps, const std::vector<std::vector<std::string>>& refs,
                 const BleuOptions& options = {}) {
  return corpus_bleu(hyps, refs, options);
}

// The README example [R]: three segments, two reference sets.
const std::vector<std::string> kReadmeHyps = {"The dog bit the man.", "It wasn't surprising.",
                                              "The man had just bitten him."};
const std::vector<std::vector<std::string>> kReadmeRefs = {
    {"The dog bit the man.", "It was not unexpected.", "The man bit him first."},
    {"The dog had bit the man.", "No one was surprised.", "The man had bitten the dog."}};

// ---- tokenizer ----------------------------------------------------------------------------------

TEST(Tokenize13a, SplitsPunctuationButKeepsNumbersTogether) {
  struct Case {
    const char* in;
    const char* out;
  };
  for (const Case& c : {
           // ',' and '.' after a letter are split off (rule 2); the final '.' too, thanks to the padding space.
           Case{"Hello, world.", "Hello , world ."},
           // A '.' or ',' between digits stays: rule 2 needs a non-digit before, rule 3 a non-digit after.
           Case{"3.5 and 1,000 items.", "3.5 and 1,000 items ."},
           // '$' '/' '(' ')' are in rule 1's symbol class; "5.00" keeps its period.
           Case{"$5.00/hr (approx.)", "$ 5.00 / hr ( approx . )"},
           // A dash is split only after a digit (rule 4), so "a-b" stays one token and "3-b" does not.
           Case{"a-b 3-b", "a-b 3 - b"},
           Case{"pp. 10-20 and 1990-2000", "pp . 10 - 20 and 1990 - 2000"},
           // "3." : rule 2 does not apply (digit before) but rule 3 does ('.' then a non-digit 'é').
           Case{"3.é", "3 . é"},
           // The apostrophe is not in the symbol class.
           Case{"It's 5.", "It's 5 ."},
           // Matches do not overlap: in "a.," rule 2 takes "a." and leaves ",b" to rule 3.
           Case{"a.,b", "a . , b"},
           Case{"1.,2", "1 . , 2"},
           Case{"end...", "end . . ."},
           Case{"e.g. U.S.A.", "e . g . U . S . A ."},
           // Entities are unescaped in order; "&amp;lt;" becomes "&lt;" and then "<".
           Case{"Tom &amp; Jerry &quot;x&quot; &lt;b&gt; &amp;lt;", "Tom & Jerry \" x \" < b > <"},
           Case{"x<skipped>y", "xy"},
           Case{"hyphen-\nated\nlines", "hyphenated lines"},
           // Non-ASCII letters are not punctuation, and a non-ASCII letter counts as a non-digit.
           Case{"Ünïcödé straße, Ärger.", "Ünïcödé straße , Ärger ."},
           Case{"é-é 5-é", "é-é 5 - é"},
           Case{"é.é", "é . é"},
           // Python's str.split() whitespace: tab, no-break space, ideographic space, em space.
           Case{"tab\there", "tab here"},
           Case{"A\u00a0B\u3000C\u2003D", "A B C D"},
           Case{"", ""},
           Case{"   ", ""},
       }) {
    EXPECT_EQ(tokenize_13a(c.in), c.out) << "input: " << c.in;
  }
}

TEST(Tokenize13a, PassesInvalidUtf8ThroughByteByByte) {
  EXPECT_EQ(tokenize_13a("caf\xE9."), "caf\xE9 .");
  EXPECT_EQ(tokenize_13a("\xFF\xFE,x"), "\xFF\xFE , x");
}

TEST(BleuPreprocess, LowercasesStripsAndTokenizes) {
  BleuOptions lower;
  lower.lowercase = true;
  EXPECT_EQ(bleu_preprocess("  Hello, WORLD.\r", lower), "hello , world .");
  BleuOptions none;
  none.tokenize = BleuTokenize::kNone;
  EXPECT_EQ(bleu_preprocess("Hello,  world.\u00a0\n", none), "Hello, world.");
}

TEST(UnicodeLowercase, MatchesPythonStrLower) {
  // Expected values are Python 3's str.lower() of the input.
  EXPECT_EQ(unicode_lowercase("ÄÖÜ ÉCOLE"), "äöü école");
  EXPECT_EQ(unicode_lowercase("İstanbul"), "i\u0307stanbul");  // full mapping: i + COMBINING DOT ABOVE
  EXPECT_EQ(unicode_lowercase("ΟΔΟΣ"), "οδος");                // word-final sigma
  EXPECT_EQ(unicode_lowercase("ΣΑΣ Σ"), "σας σ");              // initial sigma and a lone sigma stay σ
  EXPECT_EQ(unicode_lowercase("ΑΣ.Β"), "ασ.β");                // '.' is case-ignorable: a letter follows
  EXPECT_EQ(unicode_lowercase("ΑΣ'"), "ας'");
  EXPECT_EQ(unicode_lowercase("ΑΣ\u0301 x"), "ας\u0301 x");  // a combining accent is skipped
  EXPECT_EQ(unicode_lowercase("AB\xFF"), "ab\xFF");          // invalid bytes are copied
}

// ---- statistics ---------------------------------------------------------------------------------

TEST(BleuStats, ClipsCountsAgainstReference) {
  // [T] test_case_statistics. Hand check: hypothesis unigrams am x2, I, a, character, sequence;
  // the reference has I, am, a x3, symbol, string, sequence: clipped matches am 1 + I 1 + a 1 +
  // sequence 1 = 4 of 6. Bigrams "I am", "am a" match: 2 of 5. Trigram "I am a": 1 of 4. 4-grams 0 of 3.
  const BleuStats s = sentence_stats("am I am a character sequence", {"I am a symbol string sequence a a"});
  EXPECT_EQ(s.matches, (Stats{4, 2, 1, 0}));
  EXPECT_EQ(s.totals, (Stats{6, 5, 4, 3}));
  EXPECT_EQ(s.hyp_len, 6);
  EXPECT_EQ(s.ref_len, 8);
}

TEST(BleuStats, ClipsAgainstTheLargestCountInAnyReference) {
  // [H] "the" occurs 3 times; reference 1 has it once, reference 2 twice: 2 matches of 3.
  // "the the" occurs twice; only reference 2 has it, once: 1 of 2. "the the the": 0 of 1.
  const BleuStats s = sentence_stats("the the the", {"the cat", "the the dog"});
  EXPECT_EQ(s.matches, (Stats{2, 1, 0, 0}));
  EXPECT_EQ(s.totals, (Stats{3, 2, 1, 0}));
  EXPECT_EQ(s.ref_len, 3);  // closest: |3-2| = 1, |3-3| = 0
}

TEST(BleuStats, ClosestReferenceLengthPrefersTheShorterOnATie) {
  // Hypothesis of 3 tokens, references of 2 and 4: both 1 away; the shorter one counts.
  EXPECT_EQ(sentence_stats("a b c", {"x y", "x y z w"}).ref_len, 2);
  EXPECT_EQ(sentence_stats("a b c", {"x y z w", "x y"}).ref_len, 2);
}

TEST(BleuStats, AddUpOverSegments) {
  BleuStats sum;
  for (size_t i = 0; i < kReadmeHyps.size(); ++i)
    sum += sentence_stats(kReadmeHyps[i], {kReadmeRefs[0][i], kReadmeRefs[1][i]});
  EXPECT_EQ(sum, score(kReadmeHyps, kReadmeRefs).stats);
  EXPECT_EQ(sum + BleuStats{}, sum);
}

TEST(BleuStats, NeedAReference) { EXPECT_THROW(sentence_stats("a", {}), Error); }

// ---- scores -------------------------------------------------------------------------------------

TEST(CorpusBleu, IdenticalIs100) {
  // [H] 6 tokens: 6/6, 5/5, 4/4, 3/3 n-grams match; every precision is 100 and BP is 1.
  const BleuResult r = score({"the cat sat on the mat"}, {{"the cat sat on the mat"}});
  EXPECT_NEAR(r.score, 100.0, 1e-9);
  EXPECT_EQ(r.stats.matches, (Stats{6, 5, 4, 3}));
  EXPECT_EQ(r.bp, 1.0);
  EXPECT_EQ(r.ratio, 1.0);
}

TEST(CorpusBleu, NothingInCommonIsZero) {
  // [T] test_sentence_bleu.py, #141: no n-gram matches at all gives exactly 0 with every smoothing
  // (sacreBLEU stops early instead of smoothing). 4 hypothesis tokens, 2 reference tokens.
  const BleuResult r = score({"this is a cat"}, {{"okay thanks"}});
  EXPECT_EQ(r.score, 0.0);
  EXPECT_EQ(r.precisions, (std::array<double, 4>{0, 0, 0, 0}));
  EXPECT_EQ(r.ratio, 2.0);
}

TEST(CorpusBleu, ExpSmoothingHalvesTheCreditForEachOrderWithoutMatches) {
  // [H] "d c b a" against "a b c d": unigrams 4/4 -> 100. No bigram, trigram or 4-gram matches:
  // the smoothing factor doubles at each: 100/(2*3) = 16.667, 100/(4*2) = 12.5, 100/(8*1) = 12.5.
  // BLEU = (100 * 16.667 * 12.5 * 12.5)^(1/4) = 260416.67^(1/4) = 22.5901. sacreBLEU: 22.59005009024613.
  const BleuResult r = score({"d c b a"}, {{"a b c d"}});
  EXPECT_NEAR(r.precisions[0], 100.0, 1e-12);
  EXPECT_NEAR(r.precisions[1], 100.0 / 6, 1e-12);
  EXPECT_NEAR(r.precisions[2], 12.5, 1e-12);
  EXPECT_NEAR(r.precisions[3], 12.5, 1e-12);
  EXPECT_NEAR(r.score, 22.59005009024613, 1e-9);
}

TEST(CorpusBleu, ShortHypothesisPaysTheBrevityPenalty) {
  // [H] "the cat sat on" (4 tokens) against a 6-token reference: every precision is 100
  // (4/4, 3/3, 2/2, 1/1), BP = exp(1 - 6/4) = exp(-0.5) = 0.606531, BLEU = 60.6531.
  const BleuResult r = score({"the cat sat on"}, {{"the cat sat on the mat"}});
  EXPECT_NEAR(r.bp, std::exp(-0.5), 1e-15);
  EXPECT_NEAR(r.score, 60.653065971263366, 1e-9);
  EXPECT_EQ(format_bleu(r),
            "BLEU = 60.65 100.0/100.0/100.0/100.0 (BP = 0.607 ratio = 0.667 hyp_len = 4 ref_len = 6)");
}

TEST(CorpusBleu, LongerHypothesisHasNoBrevityPenalty) {
  // [H] Against "a b c d", "a b c d e": 4/5, 3/4, 2/3, 1/2 -> (80 * 75 * 66.667 * 50)^(1/4)
  // = 20000000^(1/4) = 66.874; BP = 1 since 5 >= 4.
  const BleuResult r = score({"a b c d e"}, {{"a b c d"}});
  EXPECT_EQ(r.bp, 1.0);
  EXPECT_NEAR(r.score, std::pow(2e7, 0.25), 1e-9);
}

TEST(CorpusBleu, FewerThanFourTokensEverywhereIsZeroUnlessEffectiveOrder) {
  // [H] "a b c": no 4-grams, so the 4-gram precision is 0 and sacreBLEU's log floor makes BLEU 0.
  // With effective_order only orders 1..3 count: all 100.
  const BleuResult r = score({"a b c"}, {{"a b c"}});
  EXPECT_EQ(r.score, 0.0);
  EXPECT_EQ(r.precisions, (std::array<double, 4>{100, 100, 100, 0}));
  BleuOptions eff;
  eff.effective_order = true;
  EXPECT_NEAR(score({"a b c"}, {{"a b c"}}, eff).score, 100.0, 1e-9);
}

TEST(CorpusBleu, PublishedScoringFromStatistics) {
  // [T] test_case_scoring: matches 9,7,5,3 of 10,8,6,4; lengths 11 and 11 -> 0.8375922397.
  // Hand: (0.9 * 0.875 * 0.8333 * 0.75)^(1/4) = 0.4921875^(1/4) = 0.837592.
  BleuStats s;
  s.matches = {9, 7, 5, 3};
  s.totals = {10, 8, 6, 4};
  s.hyp_len = s.ref_len = 11;
  EXPECT_NEAR(bleu_from_stats(s).score, 83.75922397, 1e-7);
}

TEST(CorpusBleu, PublishedStatisticsExampleWithExpSmoothing) {
  // [H] The [T] statistics example scored with the defaults: precisions 66.667, 40, 25 and the
  // smoothed 100/(2*3) = 16.667; (66.667*40*25*16.667)^(1/4) = 1111111^(1/4) = 32.466;
  // BP = exp(1 - 8/6) = 0.716531; BLEU = 23.263. sacreBLEU: 23.263472697663296.
  const BleuResult r = score({"am I am a character sequence"}, {{"I am a symbol string sequence a a"}});
  EXPECT_NEAR(r.score, 23.263472697663296, 1e-9);
}

TEST(CorpusBleu, PublishedReadmeExampleWithTwoReferenceSets) {
  // [R] and [T] test_corpus_bleu: 48.530827 with the defaults, 49.1919566 with tokenize none.
  const BleuResult r = score(kReadmeHyps, kReadmeRefs);
  EXPECT_NEAR(r.score, 48.530827, 1e-6);
  EXPECT_EQ(format_bleu(r),
            "BLEU = 48.53 82.4/50.0/45.5/37.5 (BP = 0.943 ratio = 0.944 hyp_len = 17 ref_len = 18)");
  BleuOptions none;
  none.tokenize = BleuTokenize::kNone;
  EXPECT_NEAR(score(kReadmeHyps, kReadmeRefs, none).score, 49.1919566, 1e-6);
  // Lowercasing changes nothing here: hypotheses and references capitalise the same words.
  BleuOptions lower;
  lower.lowercase = true;
  EXPECT_NEAR(score(kReadmeHyps, kReadmeRefs, lower).score, 48.530827, 1e-6);
}

TEST(CorpusBleu, EmptyReferenceIsAReferenceOfLengthZero) {
  // [R] The README's variable-reference example: the first segment's first reference is ''.
  // Since sacreBLEU 2.2 an empty reference is kept (length 0, no n-grams); for "The dog bit the man ."
  // (6 tokens) the other reference (7 tokens) is still the closest, so the numbers are the README's.
  std::vector<std::vector<std::string>> refs = kReadmeRefs;
  refs[0][0] = "";
  const BleuResult r = score(kReadmeHyps, refs);
  EXPECT_EQ(format_bleu(r),
            "BLEU = 29.44 82.4/42.9/27.3/12.5 (BP = 0.889 ratio = 0.895 hyp_len = 17 ref_len = 19)");
  EXPECT_NEAR(r.score, 29.443657650964873, 1e-9);
}

TEST(CorpusBleu, EmptyHypothesesCountZeroTokens) {
  // [T] test_corpus_bleu: three empty hypotheses score 0 (they are not dropped). ref_len sums the
  // closest (shorter on ties) reference lengths to 0: 6 + 5 + 6 = 17.
  const BleuResult r = score({"", "", ""}, kReadmeRefs);
  EXPECT_EQ(r.score, 0.0);
  EXPECT_EQ(r.stats.hyp_len, 0);
  EXPECT_EQ(r.stats.ref_len, 17);
  EXPECT_EQ(r.bp, 0.0);

  // [H] One empty hypothesis next to a perfect one: precisions stay 100 (6/6, 5/5, 4/4, 3/3) but the
  // empty line adds 2 reference tokens: BP = exp(1 - 8/6) = 0.716531, BLEU = 71.6531.
  const BleuResult mixed = score({"the cat sat on the mat", ""}, {{"the cat sat on the mat", "a b"}});
  EXPECT_NEAR(mixed.score, 71.65313105737896, 1e-9);
}

TEST(CorpusBleu, EmptyCorpusIsZero) {
  const BleuResult r = score({}, {{}});
  EXPECT_EQ(r.score, 0.0);
  EXPECT_EQ(r.stats.hyp_len, 0);
  EXPECT_EQ(r.ratio, 0.0);
}

TEST(CorpusBleu, SentenceLevelWithNonAsciiText) {
  // [T] test_sentence_bleu.py (#98), effective_order on: 8.493 with 13a, 7.347 with tokenize none.
  const std::string ref = "producţia de zahăr brut se exprimă în zahăr alb;";
  const std::string hyp = "Producția de zahăr primă va fi exprimată în ceea ce privește zahărul alb;";
  BleuOptions eff;
  eff.effective_order = true;
  EXPECT_NEAR(score({hyp}, {{ref}}, eff).score, 8.493, 1e-3);
  eff.tokenize = BleuTokenize::kNone;
  EXPECT_NEAR(score({hyp}, {{ref}}, eff).score, 7.347, 1e-3);
}

TEST(CorpusBleu, RejectsReferenceSetsOfTheWrongLength) {
  EXPECT_THROW(score({"a", "b"}, {{"a"}}), Error);
  EXPECT_THROW(score({"a"}, {}), Error);
}

TEST(BleuSignature, UsesSacreBleuLayout) {
  const std::string version = "tcat-" + build_info().version;
  EXPECT_EQ(bleu_signature(1), "nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp|version:" + version);
  BleuOptions o;
  o.lowercase = true;
  o.effective_order = true;
  o.tokenize = BleuTokenize::kNone;
  EXPECT_EQ(bleu_signature(2, o), "nrefs:2|case:lc|eff:yes|tok:none|smooth:exp|version:" + version);
}

TEST(BleuTokenizeName, UnknownNameIsAUsageError) {
  EXPECT_EQ(bleu_tokenize_from_name("13a"), BleuTokenize::k13a);
  EXPECT_EQ(bleu_tokenize_from_name("none"), BleuTokenize::kNone);
  EXPECT_THROW(bleu_tokenize_from_name("intl"), UsageError);
}

// ---- files --------------------------------------------------------------------------------------

class BleuFiles : public tcat::testing::TempDirTest {
 protected:

  std::string write(const std::string& name, const std::string& bytes) const {
    const std::string p = (dir_ / name).string();
    std::ofstream(p, std::ios::binary) << bytes;
    return p;
  }

  // The message of the Error that f throws.
  template <typename F>
  static std::string error_of(F f) {
    try {
      f();
    } catch (const Error& e) {
      return e.what();
    }
    ADD_FAILURE() << "no error";
    return "";
  }

};

TEST_F(BleuFiles, SplitsLinesLikeSacreBleu) {
  using Lines = std::vector<std::string>;
  EXPECT_EQ(read_segments(write("a", "x\ny")), (Lines{"x", "y"}));
  EXPECT_EQ(read_segments(write("b", "x\ny\n")), (Lines{"x", "y"}));  // the final newline adds no line
  EXPECT_EQ(read_segments(write("c", "x\n\n")), (Lines{"x", ""}));
  EXPECT_EQ(read_segments(write("d", "x\r\n")), (Lines{"x\r"}));
  EXPECT_EQ(read_segments(write("e", "")), Lines{});
  EXPECT_EQ(read_segments(write("f", "\n")), (Lines{""}));
}

TEST_F(BleuFiles, InvalidUtf8NamesFileAndLine) {
  const std::string p = write("bad", "fine\nalso fine\ncaf\xE9\n");
  const std::string msg = error_of([&] { read_segments(p); });
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
  EXPECT_NE(msg.find("line 3"), std::string::npos) << msg;
  EXPECT_NE(msg.find("UTF-8"), std::string::npos) << msg;
  // Overlong encodings and surrogates are invalid too, as for Python's decoder.
  EXPECT_THROW(read_segments(write("overlong", "\xC0\xAF")), Error);
  EXPECT_THROW(read_segments(write("surrogate", "\xED\xA0\x80")), Error);
  EXPECT_THROW(read_segments(write("truncated", "\xE2\x82")), Error);
  EXPECT_EQ(read_segments(write("good", "\xF0\x9F\x98\x80 \xE2\x82\xAC")).size(), 1u);
}

TEST_F(BleuFiles, MissingFileIsAnError) {
  const std::string p = (dir_ / "missing.txt").string();
  const std::string msg = error_of([&] { read_segments(p); });
  EXPECT_NE(msg.find(p), std::string::npos) << msg;
}

TEST_F(BleuFiles, MismatchedLineCountsNameBothFilesAndCounts) {
  const std::string ref = write("ref.txt", "a\nb\nc\nd\n");
  const std::string hyp = write("hyp.txt", "a\nb\nc\n");
  const std::string msg = error_of([&] { corpus_bleu_files({ref}, hyp); });
  for (const std::string& part : {ref, hyp, std::string("(3 vs 4 lines)")})
    EXPECT_NE(msg.find(part), std::string::npos) << msg;
}

TEST_F(BleuFiles, ScoresFilesAndTolerantOfTheFinalNewline) {
  std::string ref0, ref1, hyp;
  for (size_t i = 0; i < kReadmeHyps.size(); ++i) {
    ref0 += kReadmeRefs[0][i] + "\n";
    ref1 += kReadmeRefs[1][i] + "\n";
    hyp += kReadmeHyps[i] + (i + 1 < kReadmeHyps.size() ? "\n" : "");  // no final newline
  }
  const BleuResult r = corpus_bleu_files({write("r0", ref0), write("r1", ref1)}, write("h", hyp));
  EXPECT_NEAR(r.score, 48.530827, 1e-6);
}

TEST_F(BleuFiles, EmptyFilesScoreZero) {
  const BleuResult r = corpus_bleu_files({write("r", "")}, write("h", ""));
  EXPECT_EQ(r.score, 0.0);
  EXPECT_EQ(r.stats.hyp_len, 0);
}

}  // namespace
}  // namespace tcat::eval

// Parallel corpus reader: line alignment, the pairs it drops and counts, and its errors.
#include "common/temp_dir.h"
#include "data/parallel.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "core/error.h"

namespace tcat::data {
namespace {

namespace fs = std::filesystem;

class ParallelCorpusTest : public tcat::testing::TempDirTest {
 protected:

  // Writes both sides and reads them back.
  ParallelCorpus read(const std::string& src, const std::string& tgt) {
    std::ofstream(dir_ / "c.en", std::ios::binary) << src;
    std::ofstream(dir_ / "c.de", std::ios::binary) << tgt;
    return read_parallel_corpus(path("c.en"), path("c.de"));
  }
  std::string path(const std::string& name) const { return (dir_ / name).string(); }

};

TEST_F(ParallelCorpusTest, ReadsAlignedPairs) {
  const auto c = read("A dog runs.\nTwo cats.\n", "Ein Hund rennt.\nZwei Katzen.\n");
  EXPECT_EQ(c.src, (std::vector<std::string>{"A dog runs.", "Two cats."}));
  EXPECT_EQ(c.tgt, (std::vector<std::string>{"Ein Hund rennt.", "Zwei Katzen."}));
  EXPECT_EQ(c.stats.read, 2);
  EXPECT_EQ(c.stats.kept, 2);
  EXPECT_EQ(c.stats.skipped_empty + c.stats.skipped_invalid_utf8, 0);
}

TEST_F(ParallelCorpusTest, StripsCarriageReturnsAndCountsALastLineWithoutNewline) {
  const auto c = read("one\r\ntwo\r\nthree", "eins\ntwo\r\ndrei\r\n");
  EXPECT_EQ(c.src, (std::vector<std::string>{"one", "two", "three"}));
  EXPECT_EQ(c.tgt, (std::vector<std::string>{"eins", "two", "drei"}));
  EXPECT_EQ(c.stats.read, 3);
}

TEST_F(ParallelCorpusTest, SkipsPairsWithAnEmptySide) {
  const auto c = read("keep\n\nsrc only\n   \t\nkeep too\n", "behalten\nnur tgt\n\nx\nauch\n");
  EXPECT_EQ(c.src, (std::vector<std::string>{"keep", "keep too"}));
  EXPECT_EQ(c.tgt, (std::vector<std::string>{"behalten", "auch"}));
  EXPECT_EQ(c.stats.read, 5);
  EXPECT_EQ(c.stats.kept, 2);
  EXPECT_EQ(c.stats.skipped_empty, 3);
}

TEST_F(ParallelCorpusTest, SkipsPairsWithInvalidUtf8) {
  const auto c = read("gr\xC3\xBC\xC3\x9F" "e\nbad \xFF byte\nfine\n", "Gr\xC3\xBC\xC3\x9F" "e\nok\ntrunc \xE2\x82\n");
  EXPECT_EQ(c.src, (std::vector<std::string>{"gr\xC3\xBC\xC3\x9F" "e"}));
  EXPECT_EQ(c.stats.skipped_invalid_utf8, 2);
  EXPECT_EQ(c.stats.kept, 1);
}

TEST_F(ParallelCorpusTest, MismatchedLineCountsNameBothFilesAndCounts) {
  try {
    read("a\nb\nc\n", "x\ny\n");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    const std::string msg = e.what();
    for (const std::string& part : {path("c.en") + "' has 3 lines", path("c.de") + "' has 2 lines"})
      EXPECT_NE(msg.find(part), std::string::npos) << msg;
  }
}

TEST_F(ParallelCorpusTest, MissingFileIsNamed) {
  std::ofstream(dir_ / "c.en") << "a\n";
  try {
    read_parallel_corpus(path("c.en"), path("missing.de"));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("missing.de"), std::string::npos) << e.what();
  }
}

TEST(Utf8, AcceptsWellFormedAndRejectsMalformedSequences) {
  for (const char* ok : {"", "plain ascii", "\xC3\xA4", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xED\x9F\xBF",
                         "\xF4\x8F\xBF\xBF", "\xEF\xBF\xBF"})
    EXPECT_TRUE(is_valid_utf8(ok)) << ok;
  for (const char* bad : {"\x80", "\xC0\x80", "\xC1\xBF", "\xE0\x80\x80", "\xED\xA0\x80", "\xF0\x80\x80\x80",
                          "\xF4\x90\x80\x80", "\xF5\x80\x80\x80", "\xC3", "\xE2\x82", "\xC3\x28", "\xE2\x28\xA1"})
    EXPECT_FALSE(is_valid_utf8(bad)) << ::testing::PrintToString(std::string(bad));
}

TEST(Multi30k, ValidationSplitReadsCleanly) {
  const std::string dir = std::string(TCAT_SOURCE_DIR) + "/data/multi30k/";
  const auto c = read_parallel_corpus(dir + "val.en", dir + "val.de");
  EXPECT_EQ(c.stats.read, 1014);
  EXPECT_EQ(c.stats.kept, 1014);
  EXPECT_EQ(c.src.front(), "A group of men are loading cotton onto a truck");
}

}  // namespace
}  // namespace tcat::data

// SentencePiece through libsentencepiece: training with tcat's special ids, round trips, model bytes
// (what a checkpoint embeds), and the errors a user can run into.
#include "tokenizer/sentencepiece.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/batch.h"

namespace tcat::tokenizer {
namespace {

namespace fs = std::filesystem;

const fs::path kMulti30k = fs::path(TCAT_SOURCE_DIR) / "data" / "multi30k";

std::vector<std::string> read_lines(const fs::path& path, size_t count) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; lines.size() < count && std::getline(in, line);) lines.push_back(line);
  return lines;
}

// SentencePiece's default normalization (nmt_nfkc) collapses runs of spaces and trims the ends.
std::string squeeze_spaces(const std::string& text) {
  std::string out;
  for (const char c : text) {
    if (c == ' ' && (out.empty() || out.back() == ' ')) continue;
    out += c;
  }
  if (!out.empty() && out.back() == ' ') out.pop_back();
  return out;
}

void write_text(const fs::path& path, const std::string& text) { std::ofstream(path, std::ios::binary) << text; }

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

// One model shared by the suite: trained on the first 2000 pairs of Multi30k, both languages.
class SentencePieceTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = fs::temp_directory_path() / fmt::format("tcat_sentencepiece_{}", ::getpid());
    fs::create_directories(dir_);
    std::string corpus;
    for (const char* lang : {"en", "de"})
      for (const auto& line : read_lines(kMulti30k / fmt::format("train.{}", lang), kTrainLines)) corpus += line + "\n";
    write_text(dir_ / "corpus.txt", corpus);
    model_ = new SentencePieceTokenizer(train_sentencepiece(options()));
  }
  static void TearDownTestSuite() {
    delete model_;
    fs::remove_all(dir_);
  }

  static SentencePieceTrainOptions options() {
    SentencePieceTrainOptions opt;
    opt.inputs = {(dir_ / "corpus.txt").string()};
    opt.model_type = SentencePieceModelType::Bpe;
    opt.vocab_size = 500;
    return opt;
  }

  static constexpr size_t kTrainLines = 2000;
  static inline fs::path dir_;
  static inline SentencePieceTokenizer* model_ = nullptr;
};

TEST_F(SentencePieceTest, SpecialIdsAreTcatsBatchIds) {
  const SentencePieceTokenizer& m = *model_;
  EXPECT_EQ(m.vocab_size(), 500);
  EXPECT_EQ(m.pad_id(), data::kPadId);
  EXPECT_EQ(m.bos_id(), data::kBosId);
  EXPECT_EQ(m.eos_id(), data::kEosId);
  EXPECT_EQ(m.unk_id(), 3);
  EXPECT_EQ(m.id_to_piece(0), "<pad>");
  EXPECT_EQ(m.id_to_piece(1), "<s>");
  EXPECT_EQ(m.id_to_piece(2), "</s>");
  EXPECT_EQ(m.id_to_piece(3), "<unk>");
  EXPECT_EQ(m.piece_to_id("</s>"), 2);
  EXPECT_EQ(m.piece_to_id("no such piece"), m.unk_id());
}

TEST_F(SentencePieceTest, EncodeDecodeRoundTripsTrainingText) {
  for (const char* lang : {"en", "de"}) {
    for (const auto& line : read_lines(kMulti30k / fmt::format("train.{}", lang), 200)) {
      const auto ids = model_->encode(line);
      ASSERT_FALSE(ids.empty()) << line;
      for (const int64_t id : ids) {
        EXPECT_GT(id, 2) << "encode adds no pad/bos/eos: " << line;
        EXPECT_LT(id, model_->vocab_size());
      }
      EXPECT_EQ(model_->decode(ids), squeeze_spaces(line));
    }
  }
}

TEST_F(SentencePieceTest, PiecesMatchIdsAndDecodeSkipsControlIds) {
  const std::string text = "Ein Mann fährt Fahrrad.";
  const auto ids = model_->encode(text);
  const auto pieces = model_->tokenize(text);
  ASSERT_EQ(ids.size(), pieces.size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(model_->id_to_piece(ids[i]), pieces[i]);
  std::vector<int64_t> framed{data::kBosId};
  framed.insert(framed.end(), ids.begin(), ids.end());
  framed.insert(framed.end(), {data::kEosId, data::kPadId, data::kPadId});
  EXPECT_EQ(model_->decode(framed), text);
}

TEST_F(SentencePieceTest, ModelBytesReloadToTheSameTokenizer) {
  const std::string text = "Two young men are playing soccer in a park. Zwei junge Männer spielen Fußball.";
  const auto reloaded = SentencePieceTokenizer::from_serialized(model_->serialized());
  EXPECT_EQ(reloaded.encode(text), model_->encode(text));
  EXPECT_EQ(reloaded.serialized(), model_->serialized());

  const std::string path = (dir_ / "saved.model").string();
  model_->save(path);
  const auto loaded = SentencePieceTokenizer::load(path);
  EXPECT_EQ(loaded.serialized(), model_->serialized());
  EXPECT_EQ(loaded.encode(text), model_->encode(text));
  EXPECT_EQ(loaded.vocab_size(), model_->vocab_size());
}

TEST_F(SentencePieceTest, TrainingIsReproducibleAndQuiet) {
  auto opt = options();
  opt.model_type = SentencePieceModelType::Unigram;
  opt.input_sentence_size = 800;  // a seeded sample of the 4000 lines
  ::testing::internal::CaptureStderr();
  const auto first = train_sentencepiece(opt);
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_EQ(log, "") << "training must not log unless verbose";
  const auto second = train_sentencepiece(opt);
  EXPECT_EQ(first.serialized(), second.serialized());
  EXPECT_EQ(first.vocab_size(), 500);
  EXPECT_EQ(first.pad_id(), 0);
  EXPECT_EQ(first.unk_id(), 3);
}

TEST_F(SentencePieceTest, TrainingReadsEveryInputFile) {
  write_text(dir_ / "a.txt", "hello world\r\nhello there\r\n");
  write_text(dir_ / "b.txt", "world peace\nthere and back");  // the only p and c, and no final newline
  SentencePieceTrainOptions opt;
  opt.inputs = {(dir_ / "a.txt").string(), (dir_ / "b.txt").string()};
  opt.model_type = SentencePieceModelType::Bpe;
  opt.vocab_size = 24;
  const auto m = train_sentencepiece(opt);
  const auto ids = m.encode("hello peace");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), m.unk_id()), 0);
  EXPECT_EQ(m.decode(ids), "hello peace");
}

TEST_F(SentencePieceTest, ErrorsNameTheFile) {
  auto opt = options();
  opt.inputs.push_back((dir_ / "missing.txt").string());
  EXPECT_NE(error_of([&] { train_sentencepiece(opt); }).find("missing.txt"), std::string::npos);

  write_text(dir_ / "tiny.txt", "a few words\nare not enough\n");
  opt.inputs = {(dir_ / "tiny.txt").string()};
  opt.vocab_size = 5000;
  const std::string too_big = error_of([&] { train_sentencepiece(opt); });
  EXPECT_NE(too_big.find("tiny.txt"), std::string::npos) << too_big;
  EXPECT_NE(too_big.find("Vocabulary size too high (5000)"), std::string::npos) << too_big;

  const std::string missing_model = error_of([&] { SentencePieceTokenizer::load((dir_ / "none.model").string()); });
  EXPECT_NE(missing_model.find("none.model"), std::string::npos) << missing_model;

  write_text(dir_ / "text.model", "this is not a model\n");
  const std::string corrupt = error_of([&] { SentencePieceTokenizer::load((dir_ / "text.model").string()); });
  EXPECT_NE(corrupt.find("text.model' is not a valid SentencePiece model"), std::string::npos) << corrupt;

  const std::string& bytes = model_->serialized();
  for (const size_t keep : {size_t(0), size_t(7), bytes.size() / 2, bytes.size() - 1})
    EXPECT_NE(error_of([&] { SentencePieceTokenizer::from_serialized(bytes.substr(0, keep), "checkpoint x"); })
                  .find("checkpoint x is not a valid SentencePiece model"),
              std::string::npos)
        << "truncated to " << keep << " bytes";

  EXPECT_NE(error_of([&] { model_->decode(std::vector<int64_t>{5, 500}); }).find("id 500"), std::string::npos);
  EXPECT_NE(error_of([&] { model_->id_to_piece(-1); }).find("id -1"), std::string::npos);
  EXPECT_THROW(sentencepiece_model_type_from_name("wordpiece"), UsageError);
}

}  // namespace
}  // namespace tcat::tokenizer

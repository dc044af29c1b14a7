// Translator over a Hugging Face Marian folder: the tiny Marian fixture with a tokenizer made from
// the 512-piece stories260K SentencePiece model (source.spm = target.spm, vocab.json placing
// </s> at the model's eos 0 and <pad> at its decoder start 511).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/temp_dir.h"
#include "generate/causal_lm.h"
#include "generate/translator.h"
#include "tokenizer/load.h"
#include "tokenizer/sentencepiece.h"

namespace {

namespace fs = std::filesystem;
using namespace tcat;

class HfTranslator : public tcat::testing::TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    const fs::path shared = fs::path(TCAT_SOURCE_DIR) / ".." / "shared";
    const fs::path marian = shared / "fixtures" / "hf-tiny" / "marian", spm = shared / "models" / "stories260K" / "tok512.model";
    if (!fs::exists(marian / "model.safetensors") || !fs::exists(spm)) GTEST_SKIP() << "no marian fixture or tok512.model";
    fs::copy_file(marian / "config.json", dir_ / "config.json");
    fs::copy_file(marian / "model.safetensors", dir_ / "model.safetensors");
    fs::copy_file(spm, dir_ / "source.spm");
    fs::copy_file(spm, dir_ / "target.spm");
    const auto sp = tokenizer::SentencePieceTokenizer::load(spm.string());
    nlohmann::json vocab{{"</s>", 0}, {"<unk>", 1}, {"<s>", 2}, {"<pad>", 511}};
    for (int64_t id = 3; id < 511; ++id) vocab[sp.id_to_piece(id)] = id;
    std::ofstream(dir_ / "vocab.json") << vocab.dump();
  }
};

TEST_F(HfTranslator, GreedyAndBeamDecodeAsGenerateDoes) {
  const generate::Translator translator(dir_.string());
  const auto tok = tokenizer::load_tokenizer(dir_.string());
  const io::HfModel hf = io::load_hf_model(dir_.string());
  const std::string line = "Once upon a time there was a little dog.";
  const std::vector<int64_t> source = tok->encode_with_special_tokens(line);
  ASSERT_EQ(source.back(), 0) << "Marian sources end with </s>";
  const int64_t max_new = std::min<int64_t>(int64_t(source.size()) + 50, hf.model->config().max_positions - 1);
  for (const int64_t beams : {1, 4}) {
    generate::TranslateOptions opt;
    opt.beam_size = beams;
    opt.length_penalty = 1.0f;
    const auto out = translator.translate({line, ""}, opt);
    ASSERT_EQ(out.size(), 2u);
    ASSERT_EQ(out[0].size(), 1u);
    EXPECT_EQ(out[1][0].text, "");
    generate::LmBeamOptions bo;
    bo.beams = beams;
    bo.max_new_tokens = max_new;
    bo.eos_ids = {0};
    bo.forced_eos_id = 0;
    std::vector<int64_t> want;
    if (beams == 1) {
      generate::ContinueOptions co;
      co.max_new_tokens = max_new;
      co.eos_ids = {0};
      co.forced_eos_id = 0;
      co.sampling.temperature = 0.0f;
      Rng rng(0);
      want = generate::continue_source(*hf.model, source, 511, co, rng);
    } else {
      want = generate::source_beam_search(*hf.model, source, 511, bo).tokens;
    }
    ASSERT_FALSE(want.empty());
    EXPECT_EQ(want.back(), 0) << "ends with eos (forced at the last step at the latest)";
    EXPECT_EQ(out[0][0].text, tok->decode(want)) << beams << " beams";
    EXPECT_LE(out[0][0].logprob, 0.0f);
  }
}

TEST_F(HfTranslator, NBestListsNeedATcatCheckpoint) {
  const generate::Translator translator(dir_.string());
  generate::TranslateOptions opt;
  opt.n_best = 2;
  EXPECT_THROW(translator.translate({"a"}, opt), UsageError);
}

}  // namespace

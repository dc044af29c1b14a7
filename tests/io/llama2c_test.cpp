// llama2.c's stories260K: greedy generations equal run.c's token for token, and the same model in
// Hugging Face Llama format (half-split rotary, permuted Q/K rows) matches transformers' logits
// and agrees with the llama2.c load (interleaved rotary).
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "generate/causal_lm.h"
#include "io/llama2c.h"

using namespace tcat;
namespace fs = std::filesystem;

namespace {

const fs::path kModels = fs::path(TCAT_SOURCE_DIR) / ".." / "shared" / "models";

nlohmann::json read_json(const fs::path& path) {
  std::ifstream in(path);
  return nlohmann::json::parse(in);
}

std::vector<int64_t> greedy(const models::Transformer& model, const std::vector<int64_t>& prompt, int64_t n,
                            const std::vector<int64_t>& eos_ids) {
  generate::ContinueOptions opt;
  opt.max_new_tokens = n;
  opt.eos_ids = eos_ids;
  opt.sampling.temperature = 0.0f;
  Rng rng(0);
  return generate::continue_prompt(model, prompt, opt, rng);
}

Tensor logits_of(const models::Transformer& model, const std::vector<int64_t>& ids) {
  ag::NoGradGuard no_grad;
  const Tensor t = Tensor::from_ids(ids, {1, int64_t(ids.size())});
  return model.project(model.decode(t, nullptr, {}, nullptr, {})).value();
}

TEST(Llama2c, GreedyGenerationsEqualRunC) {
  const fs::path bin = kModels / "stories260K" / "stories260K.bin";
  if (!fs::exists(bin)) GTEST_SKIP() << "no " << bin;
  const io::HfModel loaded = io::load_llama2c(bin.string());
  EXPECT_EQ(loaded.config.arch.d_model, 64);
  EXPECT_EQ(loaded.config.arch.kv_heads, 4);
  int files = 0;
  for (const auto& entry : fs::directory_iterator(bin.parent_path())) {
    const std::string name = entry.path().filename();
    if (name.rfind("expected_greedy_", 0) != 0 || entry.path().extension() != ".json") continue;
    SCOPED_TRACE(name);
    const nlohmann::json ref = read_json(entry.path());
    const auto prompt = ref.at("prompt_ids").get<std::vector<int64_t>>();
    const auto want = ref.at("generated_ids").get<std::vector<int64_t>>();
    EXPECT_EQ(greedy(*loaded.model, prompt, int64_t(want.size()), loaded.config.eos_ids), want);
    ++files;
  }
  EXPECT_GE(files, 3);
}

TEST(Llama2c, HfConversionMatchesTransformersAndTheBinLoad) {
  const fs::path hf = kModels / "stories260K-hf", bin = kModels / "stories260K" / "stories260K.bin";
  if (!fs::exists(hf / "reference.json") || !fs::exists(bin)) GTEST_SKIP() << "no stories260K models";
  const nlohmann::json ref = read_json(hf / "reference.json");
  const io::HfModel from_hf = io::load_hf_model(hf.string());
  const io::HfModel from_bin = io::load_llama2c(bin.string());
  const auto prompt = ref.at("prompt_ids").get<std::vector<int64_t>>();
  const std::vector<float> got = logits_of(*from_hf.model, prompt).to_vector();
  const std::vector<float> runc_layout = logits_of(*from_bin.model, prompt).to_vector();
  std::vector<double> want;
  for (const auto& row : ref.at("logits"))
    for (const auto& x : row) want.push_back(x.get<double>());
  ASSERT_EQ(got.size(), want.size());
  double worst = 0, worst_bin = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    worst = std::max(worst, std::abs(got[i] - want[i]));
    worst_bin = std::max(worst_bin, std::abs(runc_layout[i] - want[i]));
  }
  EXPECT_LE(worst, 1e-4);
  EXPECT_LE(worst_bin, 1e-4);
  std::cout << "[ stories  ] max |logit diff| vs transformers: HF load " << worst << ", llama2.c load " << worst_bin
            << "\n";
  const auto want_ids = ref.at("greedy_new_ids").get<std::vector<int64_t>>();
  EXPECT_EQ(greedy(*from_hf.model, prompt, int64_t(want_ids.size()), {}), want_ids);
}

TEST(Llama2c, TruncatedOrPaddedFilesAreOneClearError) {
  const fs::path bin = kModels / "stories260K" / "stories260K.bin";
  if (!fs::exists(bin)) GTEST_SKIP() << "no " << bin;
  const fs::path dir = fs::temp_directory_path() / fmt::format("tcat_llama2c_{}", ::getpid());
  fs::create_directories(dir);
  std::ifstream in(bin, std::ios::binary);
  const std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  auto write = [&](const std::string& name, const std::string& content) {
    std::ofstream(dir / name, std::ios::binary) << content;
    return (dir / name).string();
  };
  auto message = [](const std::string& path) {
    try {
      io::load_llama2c(path);
    } catch (const Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message(write("short.bin", bytes.substr(0, bytes.size() / 2))).find("ends inside"), std::string::npos);
  EXPECT_NE(message(write("long.bin", bytes + "xxxx")).find("4 bytes after the weights"), std::string::npos);
  std::string bad_heads = bytes;
  const int32_t three = 3;
  std::memcpy(bad_heads.data() + 12, &three, 4);  // n_heads 3 does not divide dim 64
  EXPECT_NE(message(write("heads.bin", bad_heads)).find("n_heads 3"), std::string::npos);
  EXPECT_NE(message(write("tiny.bin", "abc")).find("too short"), std::string::npos);
  fs::remove_all(dir);
}

}  // namespace

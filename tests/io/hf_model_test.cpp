// Hugging Face loading beyond the fixtures' happy path: config errors name the field, checkpoint
// errors name the tensor and shapes, F16/BF16 and sharded checkpoints, base-model names, and
// ArchConfigs a family cannot express are refused on save.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "io/hf_model.h"
#include "io/safetensors.h"

using namespace tcat;
namespace fs = std::filesystem;

namespace {

const fs::path kFixtures = fs::path(TCAT_SOURCE_DIR) / ".." / "shared" / "fixtures" / "hf-tiny";

std::string config_error(const nlohmann::json& j) {
  try {
    io::parse_hf_config(j, "config.json");
  } catch (const UsageError& e) {
    return e.what();
  }
  return "no error";
}

nlohmann::json gpt2_config() {
  return {{"model_type", "gpt2"}, {"vocab_size", 64}, {"n_embd", 32}, {"n_head", 4}, {"n_layer", 2}, {"n_positions", 16}};
}

TEST(HfConfig, ErrorsNameTheField) {
  const std::string unknown = config_error({{"model_type", "mamba"}});
  EXPECT_NE(unknown.find("'mamba' is not supported"), std::string::npos) << unknown;
  EXPECT_NE(unknown.find("gpt2, llama, gpt_neox, opt, bloom"), std::string::npos) << unknown;
  EXPECT_NE(config_error({{"n_embd", 32}}).find("model_type"), std::string::npos);

  nlohmann::json j = gpt2_config();
  j["n_head"] = 5;
  EXPECT_NE(config_error(j).find("n_head = 5: must divide n_embd (32)"), std::string::npos) << config_error(j);
  j = gpt2_config();
  j["n_layer"] = -2;
  EXPECT_NE(config_error(j).find("n_layer = -2: must be positive"), std::string::npos) << config_error(j);
  j = gpt2_config();
  j["n_positions"] = "many";
  EXPECT_NE(config_error(j).find("n_positions = \"many\": must be an integer"), std::string::npos);
  j = gpt2_config();
  j["activation_function"] = "mish";
  EXPECT_NE(config_error(j).find("activation_function"), std::string::npos);
  j = gpt2_config();
  j["eos_token_id"] = 64;
  EXPECT_NE(config_error(j).find("eos_token_id = 64: outside the vocabulary of 64"), std::string::npos);

  const nlohmann::json llama = {{"model_type", "llama"},       {"vocab_size", 64},       {"hidden_size", 32},
                                {"num_attention_heads", 4},    {"num_key_value_heads", 3}, {"num_hidden_layers", 1},
                                {"intermediate_size", 48}};
  EXPECT_NE(config_error(llama).find("num_key_value_heads = 3: must divide num_attention_heads (4)"),
            std::string::npos)
      << config_error(llama);
  nlohmann::json neox = {{"model_type", "gpt_neox"}, {"vocab_size", 64},      {"hidden_size", 32},
                         {"num_attention_heads", 4}, {"num_hidden_layers", 1}, {"intermediate_size", 48},
                         {"rotary_pct", 0.1}};
  EXPECT_NE(config_error(neox).find("rotary_pct"), std::string::npos) << config_error(neox);
}

// A scratch copy of a fixture folder whose tensors can be rewritten.
class HfCheckpoint : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!fs::exists(kFixtures / "gpt2")) GTEST_SKIP() << "no fixtures at " << kFixtures;
    dir_ = fs::temp_directory_path() / fmt::format("tcat_hf_model_{}_{}", ::getpid(),
                                                   ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
  }
  void TearDown() override { fs::remove_all(dir_); }

  // The fixture's tensors, edited by `edit`, written with its config.json into dir_.
  void write_edited(const std::string& fixture,
                    const std::function<void(std::vector<std::pair<std::string, Tensor>>&)>& edit) {
    fs::copy_file(kFixtures / fixture / "config.json", dir_ / "config.json");
    const auto file = io::SafetensorsFile::open((kFixtures / fixture / "model.safetensors").string());
    std::vector<std::pair<std::string, Tensor>> tensors;
    for (const std::string& name : file.names()) tensors.emplace_back(name, file.get(name));
    edit(tensors);
    io::save_safetensors((dir_ / "model.safetensors").string(), tensors);
  }
  std::string load_error() {
    try {
      io::load_hf_model(dir_.string());
    } catch (const Error& e) {
      return e.what();
    }
    return "no error";
  }
  static std::vector<float> logits(const io::HfModel& m) {
    ag::NoGradGuard no_grad;
    const Tensor ids = Tensor::from_ids({5, 9, 2, 7, 1}, {1, 5});
    return m.model->project(m.model->decode(ids, nullptr, {}, nullptr, {})).value().to_vector();
  }

  fs::path dir_;
};

TEST_F(HfCheckpoint, MissingTensorIsNamedWithItsShape) {
  write_edited("gpt2", [](auto& tensors) {
    std::erase_if(tensors, [](const auto& t) { return t.first == "transformer.ln_f.weight"; });
  });
  EXPECT_NE(load_error().find("missing tensor 'transformer.ln_f.weight' (expected shape [32])"), std::string::npos)
      << load_error();
}

TEST_F(HfCheckpoint, WrongShapeNamesBothShapes) {
  write_edited("gpt2", [](auto& tensors) {
    for (auto& [name, t] : tensors)
      if (name == "transformer.wpe.weight") t = t.slice(0, 0, 10);
  });
  EXPECT_NE(load_error().find("'transformer.wpe.weight' has shape [10, 32], but config.json implies [64, 32]"),
            std::string::npos)
      << load_error();
}

TEST_F(HfCheckpoint, HalfPrecisionWeightsLoadAsTheirFloat32Values) {
  for (DType dtype : {DType::F16, DType::BF16}) {
    SCOPED_TRACE(dtype_name(dtype));
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "rounded");
    write_edited("llama", [&](auto& tensors) {
      for (auto& [name, t] : tensors) t = t.to(dtype);
    });
    const std::vector<float> half = logits(io::load_hf_model(dir_.string()));
    fs::copy_file(dir_ / "config.json", dir_ / "rounded" / "config.json");
    const auto file = io::SafetensorsFile::open((dir_ / "model.safetensors").string());
    std::vector<std::pair<std::string, Tensor>> rounded;
    for (const std::string& name : file.names()) rounded.emplace_back(name, file.get_as(name, DType::F32));
    io::save_safetensors((dir_ / "rounded" / "model.safetensors").string(), rounded);
    EXPECT_EQ(half, logits(io::load_hf_model((dir_ / "rounded").string())));
  }
}

TEST_F(HfCheckpoint, ShardedAndBaseModelCheckpointsLoad) {
  const std::vector<float> want = logits(io::load_hf_model((kFixtures / "gpt2").string()));
  fs::copy_file(kFixtures / "gpt2" / "config.json", dir_ / "config.json");
  const auto file = io::SafetensorsFile::open((kFixtures / "gpt2" / "model.safetensors").string());
  std::vector<std::pair<std::string, Tensor>> shards[2];
  nlohmann::json index = {{"metadata", nlohmann::json::object()}, {"weight_map", nlohmann::json::object()}};
  size_t i = 0;
  for (const std::string& name : file.names()) {
    // GPT2Model checkpoints (no LM head) store names without "transformer.".
    const std::string stored = name.substr(std::string("transformer.").size());
    shards[i % 2].emplace_back(stored, file.get(name));
    index["weight_map"][stored] = fmt::format("model-{:05d}-of-00002.safetensors", i % 2 + 1);
    ++i;
  }
  for (int s = 0; s < 2; ++s)
    io::save_safetensors((dir_ / fmt::format("model-{:05d}-of-00002.safetensors", s + 1)).string(), shards[s]);
  std::ofstream(dir_ / "model.safetensors.index.json") << index.dump();
  EXPECT_EQ(logits(io::load_hf_model(dir_.string())), want);
}

TEST_F(HfCheckpoint, SaveRefusesWhatTheFamilyCannotExpress) {
  io::HfModel m = io::load_hf_model((kFixtures / "gpt2").string());
  io::HfModelConfig as_llama = m.config;
  as_llama.family = &models::llama_family();  // a LayerNorm model is not a Llama
  EXPECT_THROW(io::save_hf_model(*m.model, as_llama, dir_.string()), UsageError);
}

}  // namespace

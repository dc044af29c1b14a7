// Loading a Hugging Face checkpoint keeps the process's resident memory near the size of the weight
// file: tensors in tcat's layout stay views of the mapping, converted ones are copies whose file
// pages are released, and no random initialisation is allocated first. GPT-2 is the hard case:
// every Conv1D matrix is stored transposed, so everything but the embeddings is a copy.
//
// The memory is measured in a fresh process (this binary re-run on this one test), because this
// process's caching allocator and earlier tests' pages would hide or inflate the growth.
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/process_memory.h"
#include "io/hf_model.h"

using namespace tcat;
namespace fs = std::filesystem;

namespace {

constexpr const char* kChildDirVariable = "TCAT_TEST_LOAD_MEMORY_DIR";

// GPT-2 with 6 layers of width 256 and 8192 tokens: 6.8 M parameters, 27 MB of float32 of which
// the transposed Conv1D matrices are 19 MB.
io::HfModelConfig gpt2_config() {
  return io::parse_hf_config({{"model_type", "gpt2"},
                              {"vocab_size", 8192},
                              {"n_embd", 256},
                              {"n_head", 4},
                              {"n_layer", 6},
                              {"n_positions", 128}},
                             "the test's GPT-2 config");
}

std::vector<float> logits(const models::Transformer& model) {
  ag::NoGradGuard no_grad;
  const Tensor ids = Tensor::from_ids({5, 900, 2, 7000, 1, 64}, {1, 6});
  return model.project(model.decode(ids, nullptr, {}, nullptr, {})).value().to_vector();
}

// The child: loads `dir` and writes what its resident memory did to dir/memory.json. A small model's
// forward pass runs first, so that one-time runtime setup (kernel libraries, thread pool) is not
// counted as loading.
void measure_load(const fs::path& dir) {
  {
    models::ArchConfig tiny = gpt2_config().arch;
    tiny.d_model = 64;
    tiny.d_ff = 256;
    tiny.dec_layers = 1;
    Rng rng(1);
    logits(models::Transformer(tiny, rng));
  }
  std::ofstream("/proc/self/clear_refs") << "5";  // resets VmHWM to the current VmRSS (Linux >= 4.0)
  const int64_t before = process_status_bytes("VmRSS");
  const io::HfModel loaded = io::load_hf_model(dir.string());
  const int64_t after_load = process_status_bytes("VmRSS");
  logits(*loaded.model);  // touches every weight, mapped ones included
  const nlohmann::json figures = {{"before", before},
                                  {"after_load", after_load},
                                  {"after_forward", process_status_bytes("VmRSS")},
                                  {"peak", process_status_bytes("VmHWM")}};
  std::ofstream(dir / "memory.json") << figures.dump();
}

TEST(HfLoadMemory, ResidentGrowthStaysNearTheFileSize) {
  if (const char* child_dir = std::getenv(kChildDirVariable)) return measure_load(child_dir);

  const fs::path dir = fs::temp_directory_path() / fmt::format("tcat_hf_load_memory_{}", ::getpid());
  fs::remove_all(dir);
  const io::HfModelConfig config = gpt2_config();
  std::vector<float> want;
  {
    Rng rng(7);
    const models::Transformer saved(config.arch, rng);
    io::save_hf_model(saved, config, dir.string());
    want = logits(saved);
  }
  EXPECT_EQ(logits(*io::load_hf_model(dir.string()).model), want);

  const std::string self = fs::read_symlink("/proc/self/exe").string();
  const std::string command =
      fmt::format("{}='{}' '{}' --gtest_filter=HfLoadMemory.ResidentGrowthStaysNearTheFileSize > '{}' 2>&1",
                  kChildDirVariable, dir.string(), self, (dir / "child.log").string());
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  std::ifstream figures_file(dir / "memory.json");
  ASSERT_TRUE(figures_file) << "the child wrote no figures; see " << (dir / "child.log");
  const nlohmann::json figures = nlohmann::json::parse(figures_file);
  const auto file_bytes = int64_t(fs::file_size(dir / "model.safetensors"));
  const int64_t before = figures.at("before");
  // Bound: 1.2x the file, plus 4 MB (15% of the file) for one 6-token forward's activations and the
  // allocator's and heap's bookkeeping, which stay well under that. Measured here: 1.08x after the
  // forward pass; loading into a randomly initialised model first, as tcat used to, gave 2.10x.
  const int64_t allowance = 4 << 20;
  const int64_t bound = file_bytes * 6 / 5 + allowance;
  for (const char* when : {"after_load", "after_forward", "peak"})
    EXPECT_LE(figures.at(when).get<int64_t>() - before, bound)
        << when << ": " << figures.dump() << ", file " << file_bytes << " bytes";
  fs::remove_all(dir);
}

}  // namespace

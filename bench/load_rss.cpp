// Memory and time of loading a Hugging Face checkpoint (io::load_hf_model): writes a random
// GPT-2-small-shaped checkpoint (12 layers, d 768, 12 heads, vocab 50257, 1024 positions; every
// Conv1D matrix stored transposed, so all but the embeddings are copied on load) or, with
// --family llama, a LLaMA-shaped one of the same width (separate q/k/v fused on load; d_ff 2048,
// vocab 32000) with save_hf_model into a temporary folder, then loads it in a fresh process (this
// program run again with --measure) so that nothing of the writing stays resident.
// The measuring process first runs a tiny model's forward pass (one-time runtime setup), then loads
// the checkpoint and runs one 8-token forward pass that touches every weight, mapped ones included.
// Prints one JSON line: file bytes, load seconds, resident growth over the process's VmRSS before
// loading (steady: VmRSS after the load and after the forward pass; peak: VmHWM) and their ratios
// to the file size.
#include <fmt/core.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <string>

#include "core/process_memory.h"
#include "io/hf_model.h"

using namespace tcat;
namespace fs = std::filesystem;

namespace {

nlohmann::json hf_config(const std::string& family) {
  if (family == "gpt2")
    return {{"model_type", "gpt2"}, {"n_layer", 12},       {"n_embd", 768},
            {"n_head", 12},         {"vocab_size", 50257}, {"n_positions", 1024}};
  return {{"model_type", "llama"},       {"num_hidden_layers", 12}, {"hidden_size", 768},
          {"num_attention_heads", 12},   {"intermediate_size", 2048}, {"vocab_size", 32000},
          {"max_position_embeddings", 1024}};
}

void forward(const models::Transformer& model, int64_t tokens) {
  ag::NoGradGuard no_grad;
  std::vector<int64_t> ids(static_cast<size_t>(tokens));
  for (int64_t i = 0; i < tokens; ++i) ids[size_t(i)] = (i * 7919 + 3) % model.config().vocab;
  model.project(model.decode(Tensor::from_ids(ids, {1, tokens}), nullptr, ag::Var(), nullptr, {}));
}

int measure(const std::string& dir) {
  {
    models::ArchConfig tiny = io::read_hf_config(dir).arch;
    tiny.vocab = 64;
    tiny.d_model = 64;
    tiny.heads = tiny.kv_heads = 4;
    tiny.d_ff = 128;
    tiny.dec_layers = 1;
    Rng rng(1);
    forward(models::Transformer(tiny, rng), 8);
  }
  std::ofstream("/proc/self/clear_refs") << "5";  // resets VmHWM to the current VmRSS (Linux >= 4.0)
  const int64_t before = process_status_bytes("VmRSS");
  const auto t0 = std::chrono::steady_clock::now();
  const io::HfModel loaded = io::load_hf_model(dir);
  const double load_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  const int64_t after_load = process_status_bytes("VmRSS") - before;
  forward(*loaded.model, 8);
  const int64_t after_forward = process_status_bytes("VmRSS") - before, peak = process_status_bytes("VmHWM") - before;
  const auto file = double(fs::file_size(fs::path(dir) / "model.safetensors"));
  const nlohmann::json out{{"engine", "tcat"},
                           {"family", loaded.config.family->model_type},
                           {"params", loaded.model->parameter_count()},
                           {"file_bytes", int64_t(file)},
                           {"load_s", load_seconds},
                           {"rss_before_bytes", before},
                           {"steady_after_load_bytes", after_load},
                           {"steady_after_forward_bytes", after_forward},
                           {"peak_bytes", peak},
                           {"steady_after_load_ratio", double(after_load) / file},
                           {"steady_after_forward_ratio", double(after_forward) / file},
                           {"peak_ratio", double(peak) / file}};
  fmt::print("{}\n", out.dump());
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc == 3 && !std::strcmp(argv[1], "--measure")) return measure(argv[2]);
  std::string family = "gpt2";
  if (argc == 3 && !std::strcmp(argv[1], "--family")) family = argv[2];
  if ((argc != 1 && argc != 3) || (family != "gpt2" && family != "llama")) {
    fmt::print(stderr, "usage: {} [--family gpt2|llama]\n", argv[0]);
    return 2;
  }
  const fs::path dir = fs::temp_directory_path() / fmt::format("tcat_load_rss_{}", ::getpid());
  {
    const io::HfModelConfig config = io::parse_hf_config(hf_config(family), "load_rss");
    Rng rng(0);
    io::save_hf_model(models::Transformer(config.arch, rng), config, dir.string());
  }
  const std::string self = fs::read_symlink("/proc/self/exe").string();
  const pid_t child = ::fork();
  if (child == 0) {
    ::execl(self.c_str(), self.c_str(), "--measure", dir.c_str(), static_cast<char*>(nullptr));
    std::_Exit(127);
  }
  int status = 0;
  ::waitpid(child, &status, 0);
  fs::remove_all(dir);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 1;
}

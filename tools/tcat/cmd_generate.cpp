#include <fmt/core.h>

#include <cstdio>
#include <filesystem>
#include <memory>

#include "commands.h"
#include "generate/causal_lm.h"
#include "io/hf_model.h"
#include "nn/layers.h"
#include "tokenizer/load.h"
#include "tokenizer/sentencepiece.h"

namespace tcat::cli {
namespace {

// The tokenizer beside the weights: the folder's tokenizer files (tokenizer::load_tokenizer:
// GPT-2 BPE, SentencePiece, ...), else its only *.model file (llama2.c's tok512.model).
std::unique_ptr<tokenizer::Tokenizer> find_tokenizer(const std::string& model_path) {
  namespace fs = std::filesystem;
  const fs::path dir = fs::is_directory(model_path) ? fs::path(model_path) : fs::path(model_path).parent_path();
  const fs::path folder = dir.empty() ? fs::path(".") : dir;
  for (const std::string& name : tokenizer::known_tokenizer_files())
    if (name != "tokenizer_config.json" && fs::exists(folder / name)) return tokenizer::load_tokenizer(folder.string());
  std::vector<fs::path> models;
  for (const auto& entry : fs::directory_iterator(folder))
    if (entry.path().extension() == ".model") models.push_back(entry.path());
  if (models.size() != 1) return nullptr;
  return std::make_unique<tokenizer::SentencePieceTokenizer>(
      tokenizer::SentencePieceTokenizer::load(models.front().string()));
}

}  // namespace

void register_generate(CLI::App& app) {
  auto* cmd = app.add_subcommand("generate", "continue a prompt with a decoder model (Hugging Face folder or llama2.c)");
  struct Args {
    std::string model, prompt, weights = "f32";
    std::vector<int64_t> ids, stop_ids;
    std::vector<std::string> stops;
    int64_t steps = 256, max_new_tokens = 0;
    uint64_t seed = 0;
    generate::SamplingOptions sampling;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("-m,--model", a->model, "model folder (config.json + safetensors) or llama2.c .bin")->required();
  cmd->add_option("-p,--prompt", a->prompt, "prompt text (needs tokenizer files or a *.model beside the weights)");
  cmd->add_option("--ids", a->ids, "prompt as token ids instead of text; prints ids");
  cmd->add_option("-n,--steps", a->steps, "tokens in all, prompt included (llama2.c's -n)")
      ->check(number_in(1, 1 << 20));
  cmd->add_option("--max-new-tokens", a->max_new_tokens, "new tokens to generate (overrides -n)")
      ->check(number_in(1, 1 << 20));
  cmd->add_option("--temp", a->sampling.temperature, "sampling temperature (0 = greedy)")->check(number_in(0.0, 100.0));
  cmd->add_option("--top-k", a->sampling.top_k, "sample among the k most likely tokens (0 = all)")
      ->check(number_in(0, 1 << 30));
  cmd->add_option("--top-p", a->sampling.top_p, "nucleus sampling threshold (1 = off)");
  cmd->add_option("--repeat-penalty", a->sampling.repetition_penalty, "penalty for tokens already present (1 = off)");
  cmd->add_option("--seed", a->seed, "random seed for sampling");
  add_weights_option(cmd, a->weights);
  cmd->add_option("--stop", a->stops, "stop when the text contains this string (repeatable)");
  cmd->add_option("--stop-id", a->stop_ids, "stop after this token id (repeatable; the model's EOS always stops)");
  cmd->callback([a] {
    generate::validate(a->sampling);
    const bool text_mode = a->ids.empty();
    const io::HfModel loaded = io::load_pretrained(a->model);
    nn::store_weights(*loaded.model, nn::parse_weight_storage(a->weights));
    const models::Transformer& model = *loaded.model;
    std::unique_ptr<tokenizer::Tokenizer> tok;
    std::vector<int64_t> prompt = a->ids;
    if (text_mode) {
      tok = find_tokenizer(a->model);
      if (!tok) throw UsageError(fmt::format("no tokenizer found beside {}: pass the prompt as --ids", a->model));
      tokenizer::require_tokenizer_fits(*tok, loaded.config.arch.vocab, a->model);
      prompt = tok->encode(a->prompt);
      // Llama-style models (llama2.c included) start every sequence with BOS.
      if (loaded.config.family->model_type == "llama" && loaded.config.bos_id >= 0)
        prompt.insert(prompt.begin(), loaded.config.bos_id);
      if (prompt.empty()) throw UsageError("the prompt is empty and the model has no BOS token to start from");
    }
    generate::ContinueOptions opt;
    opt.sampling = a->sampling;
    opt.eos_ids = loaded.config.eos_ids;
    opt.eos_ids.insert(opt.eos_ids.end(), a->stop_ids.begin(), a->stop_ids.end());
    opt.max_new_tokens = a->max_new_tokens > 0 ? a->max_new_tokens : a->steps - int64_t(prompt.size()) + 1;
    if (opt.max_new_tokens < 1)
      throw UsageError(fmt::format("-n {} leaves no room after a prompt of {} tokens", a->steps, prompt.size()));
    generate::check_prompt_fits(model, int64_t(prompt.size()), opt.max_new_tokens);  // before the prompt is echoed
    Rng rng(a->seed);
    // The text shown is the decoding of the prompt (without BOS) and everything generated.
    std::vector<int64_t> shown(prompt.begin(), prompt.end());
    if (!shown.empty() && shown.front() == loaded.config.bos_id) shown.erase(shown.begin());
    generate::TextStreamer streamer(a->stops);
    if (text_mode) fmt::print("{}", streamer.update(tok->decode(shown)));
    generate::continue_prompt(model, prompt, opt, rng, [&](int64_t token, const float*) {
      if (!text_mode) {
        fmt::print("{} ", token);
      } else {
        shown.push_back(token);
        fmt::print("{}", streamer.update(tok->decode(shown)));
      }
      std::fflush(stdout);
      return !streamer.stopped();
    });
    if (text_mode) fmt::print("{}", streamer.finish());
    fmt::print("\n");
  });
}

}  // namespace tcat::cli

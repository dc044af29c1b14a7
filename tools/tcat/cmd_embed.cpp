#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "io/hf_model.h"
#include "models/encoder_tasks.h"
#include "tokenizer/load.h"

namespace tcat::cli {

void register_embed(CLI::App& app) {
  auto* cmd = app.add_subcommand("embed", "pooled sentence vectors from an encoder model (JSON on stdout)");
  struct Args {
    std::string model, pooling = "mean";
    std::vector<std::string> text;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("text", a->text, "texts to embed")->required();
  cmd->add_option("-m,--model", a->model, "Hugging Face model folder with its tokenizer files")->required();
  cmd->add_option("--pooling", a->pooling, "mean of the last hidden states, or the first one (cls)")
      ->check(CLI::IsMember({"mean", "cls"}));
  cmd->callback([a] {
    const io::HfModel loaded = io::load_hf_model(a->model);
    const auto tok = tokenizer::load_tokenizer(a->model);
    tokenizer::require_tokenizer_fits(*tok, loaded.config.arch.vocab, a->model);
    std::vector<std::vector<int64_t>> sequences;
    for (const std::string& t : a->text) sequences.push_back(tok->encode_with_special_tokens(t));
    const auto vectors = models::embed_sequences(
        *loaded.model, sequences, a->pooling == "cls" ? models::Pooling::Cls : models::Pooling::Mean);
    nlohmann::json out = {{"model", a->model},
                          {"pooling", a->pooling},
                          {"dim", loaded.model->config().d_model},
                          {"embeddings", nlohmann::json::array()}};
    for (size_t i = 0; i < vectors.size(); ++i) out["embeddings"].push_back({{"text", a->text[i]}, {"vector", vectors[i]}});
    fmt::print("{}\n", out.dump());
  });
}

}  // namespace tcat::cli

#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "io/hf_model.h"
#include "models/encoder_tasks.h"
#include "tokenizer/load.h"

namespace tcat::cli {

void register_fill_mask(CLI::App& app) {
  auto* cmd = app.add_subcommand("fill-mask", "the most likely tokens for each mask token of a text (encoder models)");
  struct Args {
    std::string model, text;
    int64_t top_k = 5;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("text", a->text, "text holding the tokenizer's mask token, e.g. \"Paris is the [MASK] of France.\"")
      ->required();
  cmd->add_option("-m,--model", a->model, "Hugging Face model folder with its tokenizer files")->required();
  cmd->add_option("-k,--top-k", a->top_k, "tokens listed per mask")->check(number_in(1, 1000));
  cmd->add_flag("--json", a->json, "one JSON object with every mask's candidates");
  cmd->callback([a] {
    const io::HfModel loaded = io::load_hf_model(a->model);
    const auto tok = tokenizer::load_tokenizer(a->model);
    tokenizer::require_tokenizer_fits(*tok, loaded.config.arch.vocab, a->model);
    if (tok->mask_id() < 0) throw UsageError(fmt::format("the tokenizer in {} has no mask token", a->model));
    const std::vector<int64_t> ids = tok->encode_with_special_tokens(a->text);
    const auto predictions = models::fill_mask(*loaded.model, ids, tok->mask_id(), a->top_k);
    nlohmann::json masks = nlohmann::json::array();
    for (const auto& p : predictions) {
      nlohmann::json top = nlohmann::json::array();
      for (const auto& t : p.top) {
        const std::string piece = tok->id_to_piece(t.id);
        if (a->json)
          top.push_back({{"token", piece}, {"id", t.id}, {"probability", t.probability}});
        else
          fmt::print("{}\t{:.4f}\n", piece, t.probability);
      }
      if (a->json) masks.push_back({{"position", p.position}, {"candidates", top}});
      if (!a->json && predictions.size() > 1) fmt::print("\n");
    }
    if (a->json) fmt::print("{}\n", nlohmann::json{{"text", a->text}, {"masks", masks}}.dump());
  });
}

}  // namespace tcat::cli

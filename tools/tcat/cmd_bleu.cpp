#include <fmt/core.h>

#include <nlohmann/json.hpp>

#include "commands.h"
#include "core/error.h"
#include "eval/bleu.h"

namespace tcat::cli {

void register_bleu(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "bleu",
      "corpus BLEU of a hypothesis file against one or more reference files, as sacreBLEU 2.x computes it "
      "with its defaults (13a tokenizer, exp smoothing); e.g. tcat bleu ref.de hyp.de");
  struct Args {
    std::vector<std::string> files;
    std::string tokenize = "13a";
    bool lowercase = false, json = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("files", args->files,
                  "REF... HYP: UTF-8 text, one segment per line; the last file is the hypothesis ('-' reads it "
                  "from standard input), the others are references")
      ->required();
  cmd->add_option("--tokenize", args->tokenize, "13a (mteval-v13a, the default) or none (split at whitespace only)")
      ->check(CLI::IsMember({"13a", "none"}));
  cmd->add_flag("--lowercase", args->lowercase, "lowercase hypotheses and references first (signature case:lc)");
  cmd->add_flag("--json", args->json, "print one JSON object instead of the text lines");
  cmd->callback([args] {
    if (args->files.size() < 2)
      throw UsageError("bleu needs at least one reference file and the hypothesis file: tcat bleu REF... HYP");
    const std::vector<std::string> refs(args->files.begin(), args->files.end() - 1);
    const std::string& hyp = args->files.back();
    eval::BleuOptions options;
    options.tokenize = eval::bleu_tokenize_from_name(args->tokenize);
    options.lowercase = args->lowercase;
    const eval::BleuResult result = eval::corpus_bleu_files(refs, hyp, options);
    const std::string signature = eval::bleu_signature(static_cast<int64_t>(refs.size()), options);
    if (args->json) {
      const nlohmann::ordered_json j = {
          {"name", "BLEU"},           {"score", result.score},
          {"precisions", result.precisions},
          {"counts", result.stats.matches},
          {"totals", result.stats.totals},
          {"bp", result.bp},          {"ratio", result.ratio},
          {"hyp_len", result.stats.hyp_len},
          {"ref_len", result.stats.ref_len},
          {"signature", signature}};
      fmt::print("{}\n", j.dump());
    } else {
      fmt::print("{}\nsignature: {}\n", eval::format_bleu(result), signature);
    }
  });
}

}  // namespace tcat::cli

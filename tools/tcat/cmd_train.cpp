#include <fmt/core.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "commands.h"
#include "core/error.h"
#include "resources.h"
#include "train/progress.h"
#include "train/translation.h"

namespace tcat::cli {

void register_train(CLI::App& app) {
  auto* cmd = app.add_subcommand("train", "train an encoder-decoder translation model (the paper's task)");
  struct Args {
    std::string preset, output, resume, config_file, data_dir;
    std::string src, tgt, valid_src, valid_tgt, tokenizer, tokenizer_type;
    std::optional<int64_t> vocab_size, max_tokens, accumulate, max_len, warmup, max_steps, max_epochs, log_every,
        valid_every, keep, average_last, patience, valid_max_sentences, seed;
    std::optional<float> lr_factor, label_smoothing, clip_norm, dropout;
    bool bf16 = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("--preset", a->preset, "multi30k-tiny | multi30k-base");
  cmd->add_option("-o,--output", a->output, "run directory (checkpoints, metrics, plot, final model)");
  cmd->add_option("--resume", a->resume,
                  "continue the run in this directory from its latest checkpoint (with --max-steps, --max-epochs, "
                  "--patience, --keep or --average-last: changed for the rest of the run)");
  cmd->add_option("--config", a->config_file, "training configuration as JSON (see a run's config.json)");
  cmd->add_option("--data-dir", a->data_dir, "folder with the Multi30k files for presets (default: bundled data)");
  cmd->add_option("--src", a->src, "training source text, one sentence a line");
  cmd->add_option("--tgt", a->tgt, "training target text, line-aligned with --src");
  cmd->add_option("--valid-src", a->valid_src, "validation source text");
  cmd->add_option("--valid-tgt", a->valid_tgt, "validation target text");
  cmd->add_option("--tokenizer", a->tokenizer, "use this SentencePiece model instead of training one");
  cmd->add_option("--tokenizer-type", a->tokenizer_type, "bpe | unigram")->check(CLI::IsMember({"bpe", "unigram"}));
  cmd->add_option("--vocab-size", a->vocab_size, "joint SentencePiece vocabulary size")->check(positive_number());
  cmd->add_option("--max-tokens", a->max_tokens, "padded tokens per batch")->check(positive_number());
  cmd->add_option("--accumulate", a->accumulate, "batches per optimizer step")->check(positive_number());
  cmd->add_option("--max-len", a->max_len, "skip sentences longer than this (tokens)")->check(positive_number());
  cmd->add_option("--warmup", a->warmup, "Noam warmup steps")->check(positive_number());
  cmd->add_option("--lr-factor", a->lr_factor, "Noam learning-rate factor")->check(positive_number());
  cmd->add_option("--label-smoothing", a->label_smoothing, "label smoothing")->check(number_in(0.0, 0.99));
  cmd->add_option("--dropout", a->dropout, "dropout")->check(number_in(0.0, 0.99));
  cmd->add_option("--clip-norm", a->clip_norm, "clip gradients to this global norm (0 = off)")
      ->check(non_negative_number());
  cmd->add_flag("--bf16", a->bf16, "bf16 mixed precision (bf16 GEMMs, fp32 master weights)");
  cmd->add_option("--max-steps", a->max_steps, "stop after this many optimizer steps")->check(non_negative_number());
  cmd->add_option("--max-epochs", a->max_epochs, "stop after this many epochs")->check(non_negative_number());
  cmd->add_option("--log-every", a->log_every, "steps between metrics log lines")->check(positive_number());
  cmd->add_option("--valid-every", a->valid_every, "steps between validations and checkpoints")
      ->check(positive_number());
  cmd->add_option("--keep", a->keep, "checkpoints kept")->check(positive_number());
  cmd->add_option("--average-last", a->average_last, "checkpoints averaged into the final model")
      ->check(positive_number());
  cmd->add_option("--patience", a->patience, "stop after this many validations without a better BLEU (0 = off)")
      ->check(non_negative_number());
  cmd->add_option("--valid-max-sentences", a->valid_max_sentences, "validate on the first N sentences (0 = all)")
      ->check(non_negative_number());
  cmd->add_option("--seed", a->seed, "random seed (data order, initialisation, dropout)");

  const auto report = [](const train::TranslationRunResult& result) {
    const std::string bleu = result.best_bleu >= 0 ? fmt::format("best validation BLEU {:.2f}", result.best_bleu)
                                                   : std::string("no validation data");
    fmt::print("trained to step {}{}; {}; model: {}\n", result.steps, result.early_stopped ? " (early stop)" : "",
               bleu, result.model_dir);
  };
  cmd->callback([a, cmd, report] {
    train::TranslationRunOptions run;
    run.progress = !global_options().quiet;
    run.interactive = train::ProgressReporter::stderr_is_terminal();
    if (!a->resume.empty()) {
      // A resumed run keeps its data, model and optimisation; only when it stops and what it keeps may change.
      // The options behind run.changes below.
      const std::vector<std::string> changeable = {"--max-steps", "--max-epochs", "--patience", "--keep",
                                                   "--average-last"};
      std::vector<std::string> fixed;
      for (const CLI::Option* option : cmd->get_options()) {
        const std::string name = option->get_name();
        if (option->count() > 0 && name != "--resume" &&
            std::find(changeable.begin(), changeable.end(), name) == changeable.end())
          fixed.push_back(name);
      }
      if (!fixed.empty())
        throw UsageError(fmt::format("--resume continues a run with its stored configuration: {} cannot change "
                                     "(only {} and {} can)",
                                     fmt::join(fixed, ", "), fmt::join(changeable.begin(), changeable.end() - 1, ", "),
                                     changeable.back()));
      run.resume = true;
      run.changes = {a->max_steps, a->max_epochs, a->patience, a->keep, a->average_last};
      report(train::train_translation(a->resume, train::TranslationTrainConfig{}, run));
      return;
    }
    if (a->output.empty()) throw UsageError("train: --output DIR is required (or --resume DIR)");
    train::TranslationTrainConfig c;
    if (!a->config_file.empty()) {
      std::ifstream in(a->config_file);
      if (!in) throw UsageError(fmt::format("cannot read --config '{}'", a->config_file));
      std::stringstream ss;
      ss << in.rdbuf();
      const auto j = nlohmann::json::parse(ss.str(), nullptr, false);
      if (j.is_discarded()) throw UsageError(fmt::format("--config '{}' is not valid JSON", a->config_file));
      c = train::TranslationTrainConfig::from_json(j);
    } else if (!a->preset.empty()) {
      c = train::translation_preset(a->preset, a->data_dir.empty() ? bundled_data_dir("multi30k") : a->data_dir);
    } else if (a->src.empty()) {
      throw UsageError("train: give --preset NAME, --config FILE, or --src/--tgt data");
    }
    auto set = [](auto& field, const auto& value) {
      if (value) field = *value;
    };
    if (!a->src.empty()) c.train_src = a->src;
    if (!a->tgt.empty()) c.train_tgt = a->tgt;
    if (!a->valid_src.empty()) c.valid_src = a->valid_src;
    if (!a->valid_tgt.empty()) c.valid_tgt = a->valid_tgt;
    if (!a->tokenizer.empty()) c.tokenizer = a->tokenizer;
    if (!a->tokenizer_type.empty()) c.tokenizer_type = a->tokenizer_type;
    set(c.vocab_size, a->vocab_size);
    set(c.max_tokens, a->max_tokens);
    set(c.accumulate, a->accumulate);
    set(c.max_len, a->max_len);
    set(c.warmup, a->warmup);
    set(c.lr_factor, a->lr_factor);
    set(c.label_smoothing, a->label_smoothing);
    set(c.arch.dropout, a->dropout);
    set(c.clip_norm, a->clip_norm);
    c.bf16 = c.bf16 || a->bf16;
    set(c.max_steps, a->max_steps);
    set(c.max_epochs, a->max_epochs);
    set(c.log_every, a->log_every);
    set(c.valid_every, a->valid_every);
    set(c.keep_checkpoints, a->keep);
    set(c.average_last, a->average_last);
    set(c.patience, a->patience);
    set(c.valid_max_sentences, a->valid_max_sentences);
    if (a->seed) c.seed = uint64_t(*a->seed);
    report(train::train_translation(a->output, c, run));
  });
}

}  // namespace tcat::cli

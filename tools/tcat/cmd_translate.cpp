#include <fmt/core.h>

#include <iostream>
#include <nlohmann/json.hpp>

#include "commands.h"
#include "data/parallel.h"
#include "generate/translator.h"
#include "resources.h"

namespace tcat::cli {

void register_translate(CLI::App& app) {
  auto* cmd = app.add_subcommand(
      "translate", "translate sentences (arguments, or stdin one a line) with an encoder-decoder model");
  struct Args {
    std::string model, weights = "f32";
    std::vector<std::string> text;
    generate::TranslateOptions opt;
    bool json = false;
  };
  auto a = std::make_shared<Args>();
  cmd->add_option("text", a->text, "sentences to translate (default: read stdin, one sentence a line)");
  cmd->add_option("-m,--model", a->model, "model or run directory (default: the bundled English->German model)");
  cmd->add_option("-b,--beam", a->opt.beam_size, "beam size (1 = greedy)")->check(number_in(1, 64));
  cmd->add_option("--alpha", a->opt.length_penalty, "length penalty alpha")->check(number_in(0.0, 5.0));
  cmd->add_option("--n-best", a->opt.n_best, "print the N best translations of each sentence")
      ->check(number_in(1, 64));
  cmd->add_option("--batch", a->opt.batch_size, "sentences decoded together")->check(number_in(1, 4096));
  cmd->add_flag("--json", a->json, "one JSON object per input line, with scores");
  add_weights_option(cmd, a->weights);
  cmd->callback([a] {
    if (a->opt.n_best > a->opt.beam_size)
      throw UsageError(fmt::format("--n-best {} exceeds the beam size {}", a->opt.n_best, a->opt.beam_size));
    const generate::Translator translator(a->model.empty() ? bundled_path("models/multi30k-ende") : a->model,
                                          nn::parse_weight_storage(a->weights));
    auto run = [&](const std::vector<std::string>& lines) {
      const auto results = translator.translate(lines, a->opt);
      for (size_t i = 0; i < lines.size(); ++i) {
        if (a->json) {
          nlohmann::json list = nlohmann::json::array();
          for (const auto& t : results[i]) list.push_back({{"text", t.text}, {"score", t.score}, {"logprob", t.logprob}});
          fmt::print("{}\n", nlohmann::json{{"input", lines[i]}, {"translations", list}}.dump());
        } else if (a->opt.n_best > 1) {
          for (const auto& t : results[i]) fmt::print("{} ||| {} ||| {:.4f}\n", i, t.text, t.score);
        } else {
          fmt::print("{}\n", results[i].empty() ? "" : results[i][0].text);
        }
      }
      std::fflush(stdout);
    };
    auto report_truncated = [&] {
      if (translator.truncated_lines() > 0)
        fmt::print(stderr, "tcat: {} line(s) longer than {} tokens were truncated before translating\n",
                   translator.truncated_lines(), translator.config().max_positions - 2);
    };
    // Text that is not UTF-8 would be tokenized into unknown pieces without a word; it is refused,
    // naming the line (from stdin after the lines before it are translated).
    if (!a->text.empty()) {
      for (size_t i = 0; i < a->text.size(); ++i)
        if (!data::is_valid_utf8(a->text[i]))
          throw UsageError(fmt::format("text argument {} is not valid UTF-8", i + 1));
      run(a->text);
      report_truncated();
      return;
    }
    // Stdin is read in blocks so output streams while a long file is being translated.
    std::vector<std::string> block;
    int64_t line_number = 0;
    for (std::string line; std::getline(std::cin, line);) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!data::is_valid_utf8(line)) {
        run(block);
        throw UsageError(fmt::format("stdin line {} is not valid UTF-8", line_number + 1));
      }
      ++line_number;
      block.push_back(std::move(line));
      if (int64_t(block.size()) == 8 * a->opt.batch_size) {
        run(block);
        block.clear();
      }
    }
    run(block);
    report_truncated();
  });
}

}  // namespace tcat::cli

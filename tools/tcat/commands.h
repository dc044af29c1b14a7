// Every subcommand registers itself through one function listed in main.cpp's table. The
// command's run callback parses nothing itself and calls the library.
#pragma once
#include <CLI/CLI.hpp>

namespace tcat::cli {

// Options every subcommand shares (parsed on the top-level app).
struct GlobalOptions {
  int threads = 0;
  bool check_numerics = false;
  bool quiet = false;
};
const GlobalOptions& global_options();

// --weights f32|bf16 (generate, translate): how matrices are stored while decoding.
void add_weights_option(CLI::App* cmd, std::string& weights);

// Checks of numeric options whose errors say what is wrong. CLI11's own call "abc" out of range
// and print NonNegativeNumber's upper limit as a 309-digit number. An integer option given a
// fraction passes these and then fails CLI11's conversion ("Could not convert: --beam = 2.5").
CLI::Validator number_in(double lo, double hi);
CLI::Validator positive_number();
CLI::Validator non_negative_number();

void register_version(CLI::App& app);
void register_demo(CLI::App& app);
void register_bleu(CLI::App& app);
void register_tokenizer(CLI::App& app);
void register_train(CLI::App& app);
void register_translate(CLI::App& app);
void register_export(CLI::App& app);
void register_generate(CLI::App& app);
void register_embed(CLI::App& app);
void register_fill_mask(CLI::App& app);

}  // namespace tcat::cli

#include <fmt/core.h>
#include <fmt/ranges.h>

#include <filesystem>
#include <iostream>

#include "commands.h"
#include "tokenizer/load.h"
#include "tokenizer/sentencepiece.h"

namespace tcat::cli {

namespace {

void register_tokenizer_train(CLI::App& parent) {
  auto* cmd = parent.add_subcommand("train", "train a SentencePiece model on text files (one sentence a line)");
  struct Args {
    tokenizer::SentencePieceTrainOptions opt;
    std::string model_type = "unigram";
    std::string output;
  };
  auto args = std::make_shared<Args>();
  auto& opt = args->opt;
  cmd->add_option("-i,--input", opt.inputs, "training text; repeat for several files (e.g. both languages)")
      ->required();
  cmd->add_option("-o,--output", args->output, "where to write the .model file")->required();
  cmd->add_option("--vocab-size", opt.vocab_size, "pieces in the vocabulary, special ids included")
      ->capture_default_str()
      ->check(positive_number());
  cmd->add_option("--model-type", args->model_type, "bpe | unigram")
      ->capture_default_str()
      ->check(CLI::IsMember({"bpe", "unigram"}));
  cmd->add_option("--character-coverage", opt.character_coverage,
                  "fraction of characters the vocabulary covers (1.0 for European languages)")
      ->capture_default_str()
      ->check(number_in(0.0, 1.0));
  cmd->add_option("--input-sentence-size", opt.input_sentence_size,
                  "train on a random sample of this many sentences (0 = all)")
      ->capture_default_str()
      ->check(non_negative_number());
  cmd->add_option("--seed", opt.seed, "seed for that sample")->capture_default_str();
  cmd->add_flag("--verbose", opt.verbose, "show sentencepiece's training log");
  cmd->footer(
      "Special ids: pad 0, bos 1, eos 2, unk 3. Training uses one thread unless -t is given, so the same\n"
      "inputs and options give the same model on every machine.\n");
  cmd->callback([args] {
    auto opt = args->opt;
    opt.model_type = tokenizer::sentencepiece_model_type_from_name(args->model_type);
    if (global_options().threads > 0) opt.num_threads = global_options().threads;
    const auto model = tokenizer::train_sentencepiece(opt);
    model.save(args->output);
    fmt::print("trained a {} SentencePiece model with {} pieces on {} -> {}\n", args->model_type, model.vocab_size(),
               fmt::join(opt.inputs, ", "), args->output);
  });
}

// A folder is searched for its tokenizer files; a file that is no other known kind is read as a
// SentencePiece model (so its errors say what is wrong with it as one).
std::unique_ptr<tokenizer::Tokenizer> load_any_tokenizer(const std::string& path) {
  namespace fs = std::filesystem;
  if (fs::is_directory(path)) return tokenizer::load_tokenizer(path);
  const fs::path file(path);
  if (file.filename() == "tokenizer.json" || file.filename() == "vocab.txt" || file.extension() == ".bin")
    return tokenizer::load_tokenizer_files({path});
  return std::make_unique<tokenizer::SentencePieceTokenizer>(tokenizer::SentencePieceTokenizer::load(path));
}

void register_tokenizer_encode(CLI::App& parent) {
  auto* cmd = parent.add_subcommand("encode", "tokenize stdin line by line: pieces (or ids) separated by spaces");
  struct Args {
    std::string model;
    bool ids = false;
  };
  auto args = std::make_shared<Args>();
  cmd->add_option("-m,--model", args->model,
                  "a SentencePiece .model file, another tokenizer file (tokenizer.json, vocab.txt, llama2.c .bin), "
                  "or a Hugging Face model folder")
      ->required();
  cmd->add_flag("--ids", args->ids, "print ids instead of pieces (no special tokens added)");
  cmd->callback([args] {
    const auto model = load_any_tokenizer(args->model);
    std::string line;
    while (std::getline(std::cin, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (args->ids)
        fmt::print("{}\n", fmt::join(model->encode(line), " "));
      else
        fmt::print("{}\n", fmt::join(model->tokenize(line), " "));
    }
  });
}

}  // namespace

void register_tokenizer(CLI::App& app) {
  auto* cmd = app.add_subcommand("tokenizer", "train a SentencePiece tokenizer, or encode text with one");
  cmd->require_subcommand(1);
  register_tokenizer_train(*cmd);
  register_tokenizer_encode(*cmd);
}

}  // namespace tcat::cli

// Finding and loading the tokenizer of a model folder (Hugging Face layout, or llama2.c's files).
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.h"

namespace tcat::tokenizer {

// The tokenizer files load_tokenizer looks for in a folder, in the order it prefers them.
const std::vector<std::string>& known_tokenizer_files();

// Loads the tokenizer in `folder`: source.spm + target.spm + vocab.json (Marian), spiece.model (T5),
// tokenizer.model (LLaMA, SentencePiece with BOS), vocab.txt (BERT WordPiece), vocab.json + merges.txt
// (GPT-2 BPE), tokenizer.json (byte-level BPE), tokenizer.bin (llama2.c); tokenizer_config.json, when
// present, sets do_lower_case, strip_accents, tokenize_chinese_chars, extra_ids and the special tokens.
std::unique_ptr<Tokenizer> load_tokenizer(const std::string& folder);

// Throws UsageError when `tok` can produce ids beyond a model vocabulary of `model_vocab` rows:
// the tokenizer files in `folder` do not belong to that model. (A model may have more rows than
// the tokenizer has entries: vocabularies are often padded.)
void require_tokenizer_fits(const Tokenizer& tok, int64_t model_vocab, const std::string& folder);

// The same choice made from a list of files, dispatching on each file's name: "*.model" other than
// spiece.model is a LLaMA-style SentencePiece model and "*.bin" a llama2.c tokenizer.
std::unique_ptr<Tokenizer> load_tokenizer_files(const std::vector<std::string>& files);

}  // namespace tcat::tokenizer

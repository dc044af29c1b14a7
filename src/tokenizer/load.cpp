#include "tokenizer/load.h"

#include <filesystem>
#include <map>
#include <optional>
#include <type_traits>

#include "core/error.h"
#include "tokenizer/byte_level_bpe.h"
#include "tokenizer/files.h"
#include "tokenizer/llama2c.h"
#include "tokenizer/sentencepiece.h"
#include "tokenizer/sentencepiece_hf.h"
#include "tokenizer/wordpiece.h"

namespace tcat::tokenizer {

namespace fs = std::filesystem;

namespace {

// tokenizer_config.json's settings, applied over a tokenizer class's defaults.
class TokenizerConfig {
 public:
  TokenizerConfig() = default;
  explicit TokenizerConfig(const std::string& path) : path_(path), json_(read_json(path, "tokenizer config")) {
    TCAT_CHECK(json_.is_object(), "tokenizer config '{}' must be a JSON object, not {}", path, json_.type_name());
  }

  SpecialTokenNames special_tokens(SpecialTokenNames names) const {
    const std::pair<const char*, std::string*> fields[] = {
        {"unk_token", &names.unk}, {"bos_token", &names.bos}, {"eos_token", &names.eos}, {"pad_token", &names.pad},
        {"cls_token", &names.cls}, {"sep_token", &names.sep}, {"mask_token", &names.mask}};
    for (const auto& [key, name] : fields)
      if (json_.contains(key)) *name = token_content(json_.at(key), key);
    if (json_.contains("additional_special_tokens"))
      for (const auto& token : json_.at("additional_special_tokens"))
        names.additional.push_back(token_content(token, "additional_special_tokens"));
    return names;
  }

  template <typename T>
  std::optional<T> get(const char* key) const {
    if (!json_.contains(key) || json_.at(key).is_null()) return std::nullopt;
    try {
      return json_.at(key).get<T>();
    } catch (const nlohmann::json::exception&) {
      fail("tokenizer config '{}': '{}' is {}, not a {}", path_, key, json_.at(key).dump(),
           std::is_same_v<T, bool> ? "boolean" : "number");
    }
  }

 private:
  // A special token is written as "text", {"content": "text", ...} or null (none).
  std::string token_content(const nlohmann::json& value, const char* key) const {
    if (value.is_null()) return "";
    if (value.is_string()) return value.get<std::string>();
    TCAT_CHECK(value.is_object() && value.contains("content") && value.at("content").is_string(),
               "tokenizer config '{}': '{}' is {}, not a token", path_, key, value.dump());
    return value.at("content").get<std::string>();
  }

  std::string path_;
  nlohmann::json json_ = nlohmann::json::object();
};

}  // namespace

const std::vector<std::string>& known_tokenizer_files() {
  static const std::vector<std::string> names = {"source.spm",     "target.spm",  "spiece.model",
                                                 "tokenizer.model", "vocab.txt",  "vocab.json",
                                                 "merges.txt",     "tokenizer.json", "tokenizer.bin",
                                                 "tokenizer_config.json"};
  return names;
}

void require_tokenizer_fits(const Tokenizer& tok, int64_t model_vocab, const std::string& folder) {
  if (tok.vocab_size() > model_vocab)
    throw UsageError(fmt::format("{}: the tokenizer has {} entries but the model's vocabulary has {}: the tokenizer "
                                 "files do not belong to this model",
                                 folder, tok.vocab_size(), model_vocab));
}

std::unique_ptr<Tokenizer> load_tokenizer(const std::string& folder) {
  TCAT_CHECK(fs::is_directory(folder), "tokenizer folder '{}' does not exist or is not a folder", folder);
  std::vector<std::string> files;
  for (const std::string& name : known_tokenizer_files())
    if (fs::is_regular_file(fs::path(folder) / name)) files.push_back((fs::path(folder) / name).string());
  const bool only_config = files.size() == 1 && fs::path(files[0]).filename() == "tokenizer_config.json";
  TCAT_CHECK(!files.empty() && !only_config, "no tokenizer in '{}': looked for {}", folder,
             fmt::join(known_tokenizer_files(), ", "));
  return load_tokenizer_files(files);
}

std::unique_ptr<Tokenizer> load_tokenizer_files(const std::vector<std::string>& files) {
  std::map<std::string, std::string> by_name;  // file name -> path
  std::optional<std::string> sentencepiece_model, llama2c_bin;
  for (const std::string& path : files) {
    const fs::path p(path);
    const std::string name = p.filename().string();
    by_name[name] = path;
    if (p.extension() == ".model" && name != "spiece.model" && !sentencepiece_model) sentencepiece_model = path;
    if (p.extension() == ".bin" && !llama2c_bin) llama2c_bin = path;
  }
  const auto has = [&](const char* name) { return by_name.contains(name); };
  const auto path_of = [&](const char* name) { return by_name.at(name); };
  const TokenizerConfig config =
      has("tokenizer_config.json") ? TokenizerConfig(path_of("tokenizer_config.json")) : TokenizerConfig();

  if (has("source.spm")) {
    TCAT_CHECK(has("target.spm") && has("vocab.json"), "Marian tokenizer '{}' needs target.spm and vocab.json beside it",
               path_of("source.spm"));
    return std::make_unique<MarianTokenizer>(MarianTokenizer::load(
        path_of("source.spm"), path_of("target.spm"), path_of("vocab.json"),
        config.special_tokens(MarianTokenizer::default_special_tokens())));
  }
  if (has("spiece.model"))
    return std::make_unique<T5Tokenizer>(T5Tokenizer::load(path_of("spiece.model"),
                                                           config.get<int64_t>("extra_ids").value_or(100),
                                                           config.special_tokens(T5Tokenizer::default_special_tokens())));
  if (sentencepiece_model)
    return std::make_unique<SentencePieceTokenizer>(SentencePieceTokenizer::load(*sentencepiece_model));
  if (has("vocab.txt")) {
    WordPieceOptions options;
    options.do_lower_case = config.get<bool>("do_lower_case").value_or(true);
    options.strip_accents = config.get<bool>("strip_accents");
    options.tokenize_chinese_chars = config.get<bool>("tokenize_chinese_chars").value_or(true);
    options.special_tokens = config.special_tokens(WordPieceOptions::default_special_tokens());
    return std::make_unique<WordPieceTokenizer>(WordPieceTokenizer::load(path_of("vocab.txt"), options));
  }
  const SpecialTokenNames bpe_names = config.special_tokens(ByteLevelBpeTokenizer::default_special_tokens());
  if (has("vocab.json") && has("merges.txt"))
    return std::make_unique<ByteLevelBpeTokenizer>(
        ByteLevelBpeTokenizer::load(path_of("vocab.json"), path_of("merges.txt"), bpe_names));
  if (has("tokenizer.json"))
    return std::make_unique<ByteLevelBpeTokenizer>(
        ByteLevelBpeTokenizer::load_tokenizer_json(path_of("tokenizer.json"), bpe_names));
  if (llama2c_bin) return std::make_unique<Llama2cTokenizer>(Llama2cTokenizer::load(*llama2c_bin));
  TCAT_CHECK(!has("vocab.json") && !has("merges.txt"),
             "vocab.json and merges.txt come together (GPT-2 BPE), or vocab.json with source.spm and target.spm "
             "(Marian); got only {}",
             has("vocab.json") ? path_of("vocab.json") : path_of("merges.txt"));
  fail("no tokenizer among {}: expected one of {}, a *.model SentencePiece model or a *.bin llama2.c tokenizer",
       fmt::join(files, ", "), fmt::join(known_tokenizer_files(), ", "));
}

}  // namespace tcat::tokenizer

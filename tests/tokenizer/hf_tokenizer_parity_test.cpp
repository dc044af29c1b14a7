// Token-id parity with the reference tokenizers (transformers 4.36 slow tokenizers, sentencepiece,
// llama2.c run.c) on every fixture in the fixture root. Each fixture names its tokenizer files and
// says in `conventions` which call produced each field; this test reads those calls, so one code
// path serves every fixture and a new set of such files needs no change here.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>

#include "common/temp_dir.h"
#include "core/error.h"
#include "tokenizer/byte_level_bpe.h"
#include "tokenizer/llama2c.h"
#include "tokenizer/load.h"
#include "tokenizer/sentencepiece.h"
#include "tokenizer/sentencepiece_hf.h"
#include "tokenizer/unicode.h"
#include "tokenizer/wordpiece.h"

namespace tcat::tokenizer {
namespace {

namespace fs = std::filesystem;
using nlohmann::json;

fs::path fixture_root() {
  if (const char* env = std::getenv("TCAT_TOKENIZER_FIXTURES"); env && *env) return env;
  return fs::path(TCAT_SOURCE_DIR).parent_path() / "shared" / "fixtures" / "tokenizers";
}

fs::path shared_models() { return fs::path(TCAT_SOURCE_DIR).parent_path() / "shared" / "models"; }

std::vector<fs::path> fixture_files() {
  std::vector<fs::path> files;
  if (!fs::is_directory(fixture_root())) return files;
  for (const auto& entry : fs::directory_iterator(fixture_root()))
    if (entry.path().extension() == ".json") files.push_back(entry.path());
  std::sort(files.begin(), files.end());
  return files;
}

json read_json_file(const fs::path& path) {
  std::ifstream in(path);
  return json::parse(in);
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

bool contains(std::string_view text, std::string_view part) { return text.find(part) != std::string_view::npos; }

// `source_files` paths are relative to the folder that holds shared/: the nearest ancestor of the
// fixture root under which the path exists, else the one beside the source tree.
std::string resolve_source(const std::string& relative) {
  for (fs::path dir = fs::absolute(fixture_root()); !dir.empty(); dir = dir.parent_path()) {
    if (fs::exists(dir / relative)) return (dir / relative).string();
    if (dir == dir.parent_path()) break;
  }
  const fs::path beside_source = fs::path(TCAT_SOURCE_DIR).parent_path() / relative;
  return fs::exists(beside_source) ? beside_source.string() : "";
}

// One fixture: its tokenizers and the call behind each field.
class Fixture {
 public:
  explicit Fixture(const fs::path& path) : json_(read_json_file(path)) {
    for (const auto& file : json_.at("source_files")) {
      const std::string resolved = resolve_source(file.at("path").get<std::string>());
      if (resolved.empty()) missing_.push_back(file.at("path").get<std::string>());
      files_.push_back(resolved);
    }
    // A key such as "sp_ids/sp_pieces" describes several fields.
    for (const auto& [keys, call] : json_.at("conventions").items()) {
      for (size_t start = 0;;) {
        const size_t slash = keys.find('/', start);
        conventions_[keys.substr(start, slash - start)] = call.get<std::string>();
        if (slash == std::string::npos) break;
        start = slash + 1;
      }
    }
  }

  const std::vector<std::string>& missing_files() const { return missing_; }
  // Whether a list field holds ids (else pieces), judged by its first non-empty value in any case.
  bool holds_ids(const std::string& field) const {
    for (const json& c : cases())
      if (c.contains(field) && c.at(field).is_array() && !c.at(field).empty())
        return c.at(field)[0].is_number_integer();
    return true;
  }
  const json& cases() const { return json_.at("cases"); }
  const std::string* convention(const std::string& field) const {
    const auto it = conventions_.find(field);
    return it == conventions_.end() ? nullptr : &it->second;
  }

  // The tokenizer a call uses: llama2.c's run.c, plain sentencepiece, or the transformers-style one.
  const Tokenizer& tokenizer_for(const std::string& call) {
    if (contains(call, "run.c")) return cached(runc_, [&] { return load_tokenizer_files(named(".bin")); });
    if (contains(call, "plain sentencepiece")) {
      return cached(plain_sp_, [&] {
        std::vector<std::string> models = named(".model");
        if (models.empty()) models = named(".spm");
        return std::make_unique<SentencePieceTokenizer>(SentencePieceTokenizer::load(models.at(0)));
      });
    }
    return cached(main_, [&] { return load_tokenizer_files(files_); });
  }

 private:
  std::vector<std::string> named(const std::string& extension) const {
    std::vector<std::string> out;
    for (const std::string& f : files_)
      if (fs::path(f).extension() == extension) out.push_back(f);
    return out;
  }
  template <typename Make>
  const Tokenizer& cached(std::unique_ptr<Tokenizer>& slot, Make make) {
    if (!slot) slot = make();
    return *slot;
  }

  json json_;
  std::vector<std::string> files_, missing_;
  std::map<std::string, std::string> conventions_;
  std::unique_ptr<Tokenizer> main_, plain_sp_, runc_;
};

// What a decode call asked for: transformers' defaults are skip_special_tokens=False and the
// tokenizer's own clean-up default.
DecodeOptions decode_options_of(const std::string& call) {
  DecodeOptions options;
  options.skip_special_tokens = contains(call, "skip_special_tokens=True");
  if (contains(call, "clean_up_tokenization_spaces=False")) options.clean_up_tokenization_spaces = false;
  if (contains(call, "clean_up_tokenization_spaces=True")) options.clean_up_tokenization_spaces = true;
  return options;
}

struct Tally {
  int checked = 0, matched = 0;
};

// Checks one field of one case; returns whether it matched.
bool check_field(Fixture& fixture, const json& c, const std::string& field, const json& expected) {
  const std::string* call = fixture.convention(field);
  if (!call) {
    ADD_FAILURE() << "field '" << field << "' has no entry in conventions";
    return false;
  }
  const std::string text = c.at("text").get<std::string>();
  if (expected.is_boolean()) {  // "whether a == b"
    const size_t eq = call->find(" == ");
    EXPECT_NE(eq, std::string::npos) << "cannot read boolean convention: " << *call;
    if (eq == std::string::npos) return false;
    const std::string a = call->substr(call->rfind(' ', eq - 1) + 1, eq - call->rfind(' ', eq - 1) - 1);
    const std::string b = call->substr(eq + 4, call->find_first_of(" )", eq + 4) - eq - 4);
    const bool actual = c.at(a) == c.at(b);
    EXPECT_EQ(actual, expected.get<bool>()) << field;
    return actual == expected.get<bool>();
  }
  const Tokenizer& tok = fixture.tokenizer_for(*call);
  const bool add_special = !contains(*call, "add_special_tokens=False") && !contains(*call, "plain sentencepiece") &&
                           !(contains(*call, "run.c") && !contains(*call, "bos=1"));
  if (expected.is_array() && fixture.holds_ids(field)) {
    const auto ids = add_special ? tok.encode_with_special_tokens(text) : tok.encode(text);
    EXPECT_EQ(ids, expected.get<std::vector<int64_t>>()) << field << " of " << json(text).dump();
    return ids == expected.get<std::vector<int64_t>>();
  }
  if (expected.is_array()) {
    const auto pieces = tok.tokenize(text);
    EXPECT_EQ(pieces, expected.get<std::vector<std::string>>()) << field << " of " << json(text).dump();
    return pieces == expected.get<std::vector<std::string>>();
  }
  // A decoded string: from the ids field the call names, else from encoding the text.
  std::vector<int64_t> ids;
  bool named_source = false;
  for (const char* source : {"ids_no_special", "ids"}) {
    if (contains(*call, fmt::format("decode({}", source)) && c.contains(source)) {
      ids = c.at(source).get<std::vector<int64_t>>();
      named_source = true;
      break;
    }
  }
  if (!named_source) ids = tok.encode(text);
  const std::string decoded = tok.decode(ids, decode_options_of(*call));
  EXPECT_EQ(decoded, expected.get<std::string>()) << field << " of " << json(text).dump() << " via " << *call;
  return decoded == expected.get<std::string>();
}

TEST(HfTokenizerParity, EveryFixtureMatchesItsReference) {
  if (!fs::is_directory(fixture_root()))
    GTEST_SKIP() << "tokenizer fixture root " << fixture_root() << " is absent (set TCAT_TOKENIZER_FIXTURES)";
  const auto files = fixture_files();
  ASSERT_FALSE(files.empty()) << "no *.json fixtures in " << fixture_root();
  for (const fs::path& path : files) {
    SCOPED_TRACE(path.filename().string());
    Fixture fixture(path);
    ASSERT_TRUE(fixture.missing_files().empty())
        << "tokenizer files not found: " << fmt::format("{}", fmt::join(fixture.missing_files(), ", "));
    std::map<std::string, Tally> tallies;
    for (const json& c : fixture.cases()) {
      for (const auto& [field, expected] : c.items()) {
        if (field == "text") continue;
        Tally& t = tallies[field];
        ++t.checked;
        t.matched += check_field(fixture, c, field, expected);
      }
    }
    std::string summary;
    for (const auto& [field, t] : tallies) summary += fmt::format(" {} {}/{}", field, t.matched, t.checked);
    std::printf("[ parity   ] %s: %zu cases;%s\n", path.filename().string().c_str(), fixture.cases().size(),
                summary.c_str());
  }
}

// --- Lossless round trips ----------------------------------------------------------------------

std::vector<std::string> sample_texts() {
  std::vector<std::string> texts = {
      "", " ", "  ", "\t\n", "a  b\t\tc \n d ", "trailing   ", "x\r\ny", "Tab\tafter", "'s 'S 'll 'LL ''",
      "naïve café — “quotes” ‘single’", "😀 👍🏽 🇩🇪", "中文 日本語 한국어", "\xE2\x80\xA8line sep", "A\u00A0B\u3000C",
      "<|endoftext|>text<|endoftext|>", "x = [1, 2, 3]; // comment", "ĠĊ already mapped looking"};
  for (const fs::path& path : fixture_files())
    for (const json& c : read_json_file(path).at("cases")) texts.push_back(c.at("text").get<std::string>());
  return texts;
}

void expect_lossless(const Tokenizer& tok) {
  const DecodeOptions verbatim{.skip_special_tokens = false, .clean_up_tokenization_spaces = false};
  for (const std::string& text : sample_texts()) {
    EXPECT_EQ(tok.decode(tok.encode(text), verbatim), text) << json(text).dump();
    EXPECT_EQ(tok.encode(text).size(), tok.tokenize(text).size());
  }
}

const fs::path kGpt2 = shared_models() / "tokenizers" / "gpt2";
const fs::path kStories = shared_models() / "stories260K";

#define REQUIRE_MODELS(path) \
  if (!fs::exists(path)) GTEST_SKIP() << "tokenizer files " << (path) << " are absent"

TEST(ByteLevelBpe, RoundTripIsLossless) {
  REQUIRE_MODELS(kGpt2);
  expect_lossless(ByteLevelBpeTokenizer::load((kGpt2 / "vocab.json").string(), (kGpt2 / "merges.txt").string()));
}

TEST(ByteLevelBpe, TokenizerJsonMatchesVocabAndMerges) {
  REQUIRE_MODELS(kGpt2 / "tokenizer.json");
  const auto files = ByteLevelBpeTokenizer::load((kGpt2 / "vocab.json").string(), (kGpt2 / "merges.txt").string());
  const auto from_json = ByteLevelBpeTokenizer::load_tokenizer_json((kGpt2 / "tokenizer.json").string());
  EXPECT_EQ(from_json.vocab_size(), files.vocab_size());
  EXPECT_EQ(from_json.eos_id(), 50256);
  for (const std::string& text : sample_texts()) EXPECT_EQ(from_json.encode(text), files.encode(text)) << text;
}

TEST(Llama2c, RoundTripIsLossless) {
  REQUIRE_MODELS(kStories / "tok512.bin");
  const auto tok = Llama2cTokenizer::load((kStories / "tok512.bin").string());
  EXPECT_EQ(tok.vocab_size(), 512);
  expect_lossless(tok);
  EXPECT_EQ(tok.encode_with_special_tokens("Hi").front(), 1);
}

TEST(Gpt2PreTokenizer, FollowsTheRegexWhitespaceRules) {
  const auto pieces = [](std::u32string_view text) {
    std::vector<std::string> out;
    for (const auto& piece : gpt2_pre_tokenize(text)) out.push_back(unicode::encode_utf8(piece));
    return out;
  };
  using V = std::vector<std::string>;
  EXPECT_EQ(pieces(U"a   b"), (V{"a", "  ", " b"}));        // \s+(?!\S) leaves one space for the word
  EXPECT_EQ(pieces(U"a \tb"), (V{"a", " ", "\t", "b"}));     // the space before a tab is not " ?" of "b"
  EXPECT_EQ(pieces(U"end  "), (V{"end", "  "}));             // trailing run kept whole
  EXPECT_EQ(pieces(U"I'll 'LL x's"), (V{"I", "'ll", " '", "LL", " x", "'s"}));  // contractions are lower case
  EXPECT_EQ(pieces(U"x1!?  2"), (V{"x", "1", "!?", " ", " 2"}));
  EXPECT_EQ(pieces(U"\u00A0\u00A0x"), (V{"\u00A0", "\u00A0", "x"}));  // NBSP is \s but not " ?"
}

TEST(CleanUpTokenization, FollowsTransformersOrder) {
  EXPECT_EQ(clean_up_tokenization("a . b ? c ! d , e ' f do n't I 'm it 's we 've they 're"),
            "a. b? c! d, e'f don't I'm it's we've they're");
}

// --- Behaviour the fixtures do not reach ---------------------------------------------------------

const fs::path kModels = shared_models() / "tokenizers";

TEST(T5Tokenizer, SentinelsAreSplitOutAndEosIsNotDoubled) {
  REQUIRE_MODELS(kModels / "legal_t5_small_trans_fr_en");
  const auto t5 = T5Tokenizer::load((kModels / "legal_t5_small_trans_fr_en" / "spiece.model").string());
  const auto sp = SentencePieceTokenizer::load((kModels / "legal_t5_small_trans_fr_en" / "spiece.model").string());
  EXPECT_EQ(t5.vocab_size(), 32100);
  EXPECT_EQ(t5.piece_to_id("<extra_id_0>"), 32099);
  EXPECT_EQ(t5.id_to_piece(32000), "<extra_id_99>");
  std::vector<std::string> expected = sp.tokenize("a");
  expected.push_back("<extra_id_0>");
  for (const auto& piece : sp.tokenize("b")) expected.push_back(piece);
  EXPECT_EQ(t5.tokenize("a <extra_id_0> b"), expected);
  const auto ids = t5.encode_with_special_tokens("done</s>");
  ASSERT_GE(ids.size(), 2u);
  EXPECT_EQ(ids.back(), t5.eos_id());
  EXPECT_NE(ids[ids.size() - 2], t5.eos_id());
  EXPECT_EQ(t5.decode(t5.encode("a <extra_id_0> b")), "a b");
}

TEST(MarianTokenizer, LeadingLanguageCodeIsItsOwnPiece) {
  REQUIRE_MODELS(kModels / "opus-mt-en-fr");
  const auto marian = load_tokenizer((kModels / "opus-mt-en-fr").string());
  EXPECT_EQ(marian->tokenize(">>fr<< Hello"), (std::vector<std::string>{">>fr<<", "\u2581Hello"}));
  EXPECT_EQ(marian->tokenize("Hello >>fr<< world"), marian->tokenize("Hello  world"));  // later codes are dropped
  EXPECT_EQ(marian->encode_with_special_tokens("Hello").back(), marian->eos_id());
}

TEST(WordPieceTokenizer, CaseOptions) {
  REQUIRE_MODELS(kModels / "bert-base-uncased");
  const std::string vocab = (kModels / "bert-base-uncased" / "vocab.txt").string();
  const auto uncased = WordPieceTokenizer::load(vocab);
  EXPECT_EQ(uncased.tokenize("\u0130stanbul"), (std::vector<std::string>{"istanbul"}));  // Python's "İ".lower()
  WordPieceOptions cased;
  cased.do_lower_case = false;
  EXPECT_EQ(WordPieceTokenizer::load(vocab, cased).tokenize("Hello"), (std::vector<std::string>{"[UNK]"}));
  EXPECT_EQ(uncased.encode_with_special_tokens("hello").front(), uncased.cls_id());
  EXPECT_EQ(uncased.decode(uncased.encode_with_special_tokens("hello , world")), "hello, world");
}

// --- Folder detection and errors -----------------------------------------------------------------

TEST(LoadTokenizer, DetectsEachFolderKind) {
  REQUIRE_MODELS(shared_models() / "tokenizers");
  const auto kind_of = [](const fs::path& folder) { return load_tokenizer(folder.string()); };
  EXPECT_NE(dynamic_cast<ByteLevelBpeTokenizer*>(kind_of(kGpt2).get()), nullptr);
  EXPECT_NE(dynamic_cast<WordPieceTokenizer*>(kind_of(shared_models() / "tokenizers" / "bert-base-uncased").get()),
            nullptr);
  EXPECT_NE(dynamic_cast<T5Tokenizer*>(kind_of(shared_models() / "tokenizers" / "legal_t5_small_trans_fr_en").get()),
            nullptr);
  EXPECT_NE(dynamic_cast<MarianTokenizer*>(kind_of(shared_models() / "tokenizers" / "opus-mt-en-fr").get()), nullptr);
  if (fs::exists(shared_models() / "stories260K-hf" / "tokenizer.model")) {
    const auto llama = kind_of(shared_models() / "stories260K-hf");
    ASSERT_NE(dynamic_cast<SentencePieceTokenizer*>(llama.get()), nullptr);
    EXPECT_EQ(llama->encode_with_special_tokens("Once upon a time").front(), llama->bos_id());
  }
}

class LoadTokenizerErrors : public testing::TempDirTest {
 protected:
  void write(const std::string& name, const std::string& bytes) {
    std::ofstream(dir_ / name, std::ios::binary) << bytes;
  }
  std::string load_error() {
    return error_of([&] { load_tokenizer(dir_.string()); });
  }
};

TEST_F(LoadTokenizerErrors, EmptyFolderListsWhatItLookedFor) {
  const std::string message = load_error();
  EXPECT_TRUE(contains(message, "no tokenizer in")) << message;
  for (const char* name : {"tokenizer.json", "vocab.txt", "spiece.model", "source.spm", "tokenizer.model"})
    EXPECT_TRUE(contains(message, name)) << message;
  write("tokenizer_config.json", "{}");
  EXPECT_TRUE(contains(load_error(), "no tokenizer in")) << load_error();
  EXPECT_TRUE(contains(error_of([&] { load_tokenizer((dir_ / "nope").string()); }), "does not exist"));
}

TEST_F(LoadTokenizerErrors, BrokenFilesAreNamed) {
  write("vocab.json", "{\"a\": 0, ");
  write("merges.txt", "#version: 0.2\na b\n");
  std::string message = load_error();
  EXPECT_TRUE(contains(message, "vocab.json' is not valid JSON")) << message;

  write("vocab.json", "{\"a\": 0, \"b\": 1, \"ab\": 2}");
  write("merges.txt", "#version: 0.2\na b\nthree pieces here\n");
  message = load_error();
  EXPECT_TRUE(contains(message, "merges.txt' line 3")) << message;

  fs::remove(dir_ / "merges.txt");
  message = load_error();
  EXPECT_TRUE(contains(message, "vocab.json and merges.txt come together")) << message;

  write("tokenizer.json", R"({"model": {"type": "WordPiece", "vocab": {}}, "pre_tokenizer": null})");
  fs::remove(dir_ / "vocab.json");
  message = load_error();
  EXPECT_TRUE(contains(message, "model type 'WordPiece' is not supported")) << message;

  write("vocab.txt", "hello\nworld\n");
  message = load_error();
  EXPECT_TRUE(contains(message, "vocab.txt' has no unknown-word token '[UNK]'")) << message;

  write("spiece.model", "not a model");
  message = load_error();
  EXPECT_TRUE(contains(message, "spiece.model' is not a valid SentencePiece model")) << message;

  write("tokenizer_config.json", "{\"do_lower_case\": \"yes\"}");
  fs::remove(dir_ / "spiece.model");
  write("vocab.txt", "[UNK]\nhello\n");
  message = load_error();
  EXPECT_TRUE(contains(message, "'do_lower_case' is \"yes\", not a boolean")) << message;
}

TEST_F(LoadTokenizerErrors, TruncatedLlama2cFileIsNamed) {
  REQUIRE_MODELS(kStories / "tok512.bin");
  std::ifstream in(kStories / "tok512.bin", std::ios::binary);
  const std::string bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  write("tokenizer.bin", bytes.substr(0, bytes.size() - 3));
  const std::string message = load_error();
  EXPECT_TRUE(contains(message, "tokenizer.bin' is truncated in piece 511")) << message;
}

TEST(TokenizerErrors, BadInputAndIdsAreReported) {
  REQUIRE_MODELS(kGpt2);
  const auto gpt2 = load_tokenizer(kGpt2.string());
  EXPECT_TRUE(contains(error_of([&] { gpt2->encode("ok \xFF bad"); }), "not valid UTF-8 (byte 3")) << "gpt2";
  EXPECT_TRUE(contains(error_of([&] { gpt2->decode(std::vector<int64_t>{50257}); }), "id 50257"));
  EXPECT_TRUE(contains(error_of([&] { gpt2->id_to_piece(-1); }), "id -1"));
  // A piece holding half a character decodes to U+FFFD, as Python's errors="replace".
  const std::vector<int64_t> half{gpt2->piece_to_id("\u00C3")};  // byte 0xC3, the first of "é"
  EXPECT_EQ(gpt2->decode(half), "\uFFFD");
}

}  // namespace
}  // namespace tcat::tokenizer

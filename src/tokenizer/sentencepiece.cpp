#include "tokenizer/sentencepiece.h"

#include <sentencepiece_processor.h>
#include <sentencepiece_trainer.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <unordered_map>

#include "core/error.h"
#include "io/atomic_file.h"
#include "tokenizer/files.h"

namespace tcat::tokenizer {

namespace spm = sentencepiece;

namespace {

// libsentencepiece prefixes internal errors with "file.cc(line) [condition] "; the sentence after
// it is what a user can act on, or the failed condition when there is none.
std::string status_text(const spm::util::Status& status) {
  const std::string_view message = status.message();
  const size_t open = message.find(") [");
  if (open == std::string_view::npos) return std::string(message);
  const size_t close = message.find("] ", open);
  if (close == std::string_view::npos) return std::string(message);
  if (close + 2 < message.size()) return std::string(message.substr(close + 2));
  return fmt::format("check failed: {}", message.substr(open + 3, close - open - 3));
}

// Feeds the lines of several files to the trainer, so file names never pass through its
// comma-separated `input` flag.
class FileSentences final : public spm::SentenceIterator {
 public:
  explicit FileSentences(const std::vector<std::string>& paths) : paths_(paths) { Next(); }

  bool done() const override { return done_; }
  const std::string& value() const override { return line_; }
  spm::util::Status status() const override { return status_; }

  void Next() override {
    while (!done_) {
      if (stream_.is_open() && std::getline(stream_, line_)) {
        if (!line_.empty() && line_.back() == '\r') line_.pop_back();
        return;
      }
      if (stream_.is_open() && stream_.bad()) return stop(spm::util::StatusCode::kDataLoss, "cannot read");
      if (next_path_ == paths_.size()) {
        done_ = true;
        return;
      }
      stream_ = std::ifstream(paths_[next_path_++], std::ios::binary);
      if (!stream_) return stop(spm::util::StatusCode::kNotFound, "cannot open");
    }
  }

 private:
  void stop(spm::util::StatusCode code, const char* what) {
    status_ = spm::util::Status(code, fmt::format("{} '{}': {}", what, paths_[next_path_ - 1], std::strerror(errno)));
    done_ = true;
  }

  const std::vector<std::string>& paths_;
  size_t next_path_ = 0;
  std::ifstream stream_;
  std::string line_;
  bool done_ = false;
  spm::util::Status status_;
};

}  // namespace

SentencePieceTokenizer::SentencePieceTokenizer(std::unique_ptr<spm::SentencePieceProcessor> processor,
                                               std::string bytes)
    : processor_(std::move(processor)), bytes_(std::move(bytes)) {}
SentencePieceTokenizer::SentencePieceTokenizer(SentencePieceTokenizer&&) noexcept = default;
SentencePieceTokenizer& SentencePieceTokenizer::operator=(SentencePieceTokenizer&&) noexcept = default;
SentencePieceTokenizer::~SentencePieceTokenizer() = default;

SentencePieceTokenizer SentencePieceTokenizer::load(const std::string& path) {
  return from_serialized(read_file(path, "SentencePiece model"), fmt::format("'{}'", path));
}

SentencePieceTokenizer SentencePieceTokenizer::from_serialized(std::string bytes, const std::string& origin) {
  auto processor = std::make_unique<spm::SentencePieceProcessor>();
  const auto status = processor->LoadFromSerializedProto(bytes);
  TCAT_CHECK(status.ok(), "{} is not a valid SentencePiece model ({} bytes): {}", origin, bytes.size(),
             status_text(status));
  return SentencePieceTokenizer(std::move(processor), std::move(bytes));
}

void SentencePieceTokenizer::save(const std::string& path) const { io::write_file_atomic(path, bytes_); }

std::vector<int64_t> SentencePieceTokenizer::encode(std::string_view text) const {
  std::vector<int> ids;
  const auto status = processor_->Encode(text, &ids);
  TCAT_CHECK(status.ok(), "SentencePiece encode: {}", status_text(status));
  return {ids.begin(), ids.end()};
}

std::vector<int64_t> SentencePieceTokenizer::encode_with_special_tokens(std::string_view text) const {
  std::vector<int64_t> ids = encode(text);
  if (bos_id() >= 0) ids.insert(ids.begin(), bos_id());
  return ids;
}

std::vector<std::string> SentencePieceTokenizer::tokenize(std::string_view text) const {
  std::vector<std::string> pieces;
  const auto status = processor_->Encode(text, &pieces);
  TCAT_CHECK(status.ok(), "SentencePiece encode: {}", status_text(status));
  return pieces;
}

std::string SentencePieceTokenizer::decode_pieces(const std::vector<std::string>& pieces) const {
  std::string text;
  const auto status = processor_->Decode(pieces, &text);
  TCAT_CHECK(status.ok(), "SentencePiece decode: {}", status_text(status));
  return text;
}

std::string SentencePieceTokenizer::decode_ids(std::span<const int64_t> ids, bool) const {
  std::vector<int> narrow;
  narrow.reserve(ids.size());
  for (const int64_t id : ids) {
    check_id(id);
    narrow.push_back(int(id));
  }
  std::string text;
  const auto status = processor_->Decode(narrow, &text);
  TCAT_CHECK(status.ok(), "SentencePiece decode: {}", status_text(status));
  return text;
}

void SentencePieceTokenizer::check_id(int64_t id) const {
  TCAT_CHECK(id >= 0 && id < vocab_size(), "SentencePiece: id {} is outside the vocabulary [0, {})", id,
             vocab_size());
}

int64_t SentencePieceTokenizer::vocab_size() const { return processor_->GetPieceSize(); }

std::string SentencePieceTokenizer::id_to_piece(int64_t id) const {
  check_id(id);
  return processor_->IdToPiece(int(id));
}

int64_t SentencePieceTokenizer::piece_to_id(std::string_view piece) const { return processor_->PieceToId(piece); }
int64_t SentencePieceTokenizer::pad_id() const { return processor_->pad_id(); }
int64_t SentencePieceTokenizer::bos_id() const { return processor_->bos_id(); }
int64_t SentencePieceTokenizer::eos_id() const { return processor_->eos_id(); }
int64_t SentencePieceTokenizer::unk_id() const { return processor_->unk_id(); }

SentencePieceModelType sentencepiece_model_type_from_name(const std::string& name) {
  if (name == "bpe") return SentencePieceModelType::Bpe;
  if (name == "unigram") return SentencePieceModelType::Unigram;
  throw UsageError(fmt::format("unknown SentencePiece model type '{}' (expected bpe or unigram)", name));
}

SentencePieceTokenizer train_sentencepiece(const SentencePieceTrainOptions& opt) {
  TCAT_CHECK(!opt.inputs.empty(), "train_sentencepiece: no input files");
  const std::string inputs = fmt::format("{}", fmt::join(opt.inputs, ", "));
  TCAT_CHECK(opt.character_coverage > 0 && opt.character_coverage <= 1,
             "train_sentencepiece: character coverage {} is outside (0, 1]", opt.character_coverage);
  TCAT_CHECK(opt.vocab_size > 0 && opt.input_sentence_size >= 0 && opt.num_threads > 0,
             "train_sentencepiece: vocab size {}, input sentence size {}, threads {} must be positive", opt.vocab_size,
             opt.input_sentence_size, opt.num_threads);
  for (const auto& path : opt.inputs) {
    std::ifstream probe(path, std::ios::binary);
    TCAT_CHECK(probe, "cannot open SentencePiece training input '{}': {}", path, std::strerror(errno));
  }
  const std::unordered_map<std::string, std::string> flags{
      {"model_type", opt.model_type == SentencePieceModelType::Bpe ? "bpe" : "unigram"},
      {"vocab_size", std::to_string(opt.vocab_size)},
      {"character_coverage", fmt::format("{}", opt.character_coverage)},
      {"input_sentence_size", std::to_string(opt.input_sentence_size)},
      {"shuffle_input_sentence", "true"},
      {"num_threads", std::to_string(opt.num_threads)},
      // tcat's special ids (data/batch.h: kPadId 0, kBosId 1, kEosId 2), with unk after them.
      {"pad_id", "0"},
      {"bos_id", "1"},
      {"eos_id", "2"},
      {"unk_id", "3"},
      // 2 = errors only; failures still arrive as a returned status.
      {"minloglevel", opt.verbose ? "0" : "2"},
  };
  // 0xFFFFFFFF is reserved by libsentencepiece for "seed from std::random_device".
  spm::SetRandomGeneratorSeed(unsigned(opt.seed % 0xFFFFFFFFull));
  FileSentences sentences(opt.inputs);
  std::string bytes;
  const auto status = spm::SentencePieceTrainer::Train(flags, &sentences, &bytes);
  TCAT_CHECK(status.ok(), "cannot train a SentencePiece {} model of {} pieces on {}: {}",
             flags.at("model_type"), opt.vocab_size, inputs, status_text(status));
  return SentencePieceTokenizer::from_serialized(std::move(bytes), fmt::format("the model trained on {}", inputs));
}

}  // namespace tcat::tokenizer

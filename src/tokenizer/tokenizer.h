// The one interface every tokenizer implements (DESIGN.md §2): text to ids and back, plus the
// vocabulary's special ids. Implementations are immutable after construction, so one instance can
// be shared by threads.
#pragma once
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

namespace tcat::tokenizer {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;

  // Ids of `text`, without BOS/EOS (data::make_batch adds those).
  virtual std::vector<int64_t> encode(std::string_view text) const = 0;
  // Text of `ids`; control ids (pad, bos, eos) produce no text. An id outside [0, vocab_size()) is an error.
  virtual std::string decode(std::span<const int64_t> ids) const = 0;

  virtual int64_t vocab_size() const = 0;
  virtual std::string id_to_piece(int64_t id) const = 0;          // error outside [0, vocab_size())
  virtual int64_t piece_to_id(std::string_view piece) const = 0;  // unk_id() for a piece not in the vocabulary

  // Special ids; -1 when the vocabulary has no such symbol.
  virtual int64_t pad_id() const = 0;
  virtual int64_t bos_id() const = 0;
  virtual int64_t eos_id() const = 0;
  virtual int64_t unk_id() const = 0;
};

}  // namespace tcat::tokenizer

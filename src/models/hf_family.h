// Hugging Face model families: what each config.json means as an ArchConfig, and how each
// checkpoint tensor becomes a tcat parameter. One small file per family (hf_<type>.cpp) holds only
// that mapping; reading files and checking shapes is shared (io/hf_model.h).
#pragma once
#include <initializer_list>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "models/config.h"

namespace tcat::models {

// Typed access to config.json fields; every error is a UsageError naming the file and the field.
class HfConfigReader {
 public:
  HfConfigReader(const nlohmann::json& j, std::string origin);
  const nlohmann::json& json() const { return j_; }
  bool has(const char* key) const;  // present and not null

  int64_t size(const char* key) const;  // required, a positive integer
  int64_t size_or(const char* key, int64_t fallback) const;
  int64_t index_or(const char* key, int64_t fallback) const;  // a non-negative integer (a token id)
  double positive_number_or(const char* key, double fallback) const;
  bool flag_or(const char* key, bool fallback) const;
  std::string text_or(const char* key, const std::string& fallback) const;
  nn::Activation activation(const char* key, const std::string& fallback) const;
  // `heads_key` must divide `width_key` (e.g. num_attention_heads and hidden_size).
  void require_divides(const char* heads_key, int64_t heads, const char* width_key, int64_t width) const;
  // The field must hold `expected` (or be absent/null): settings tcat does not implement.
  void require_value(const char* key, const nlohmann::json& expected) const;
  [[noreturn]] void reject(const char* key, const std::string& why) const;

 private:
  const nlohmann::json& j_;
  std::string origin_;
};

// The Hugging Face name of an activation (gelu_new for the tanh approximation).
std::string hf_activation_name(nn::Activation a);

// How a checkpoint tensor is laid out relative to the tcat parameter it fills.
enum class HfLayout {
  Same,             // identical
  Transposed,       // GPT-2 Conv1D weights: [in, out] for tcat's [out, in]
  HeadInterleaved,  // fused QKV rows grouped per head, [heads, 3, head_dim] (NeoX, BLOOM); tcat: [3, heads, head_dim]
  RowVector,        // stored [1, n] for tcat's [n] (BART's final_logits_bias)
};

struct HfTensor {
  std::string name;
  Shape shape;  // as stored in the checkpoint
};

// One tcat parameter made of checkpoint tensors stacked along dim 0 (several for Q, K, V kept
// apart by the checkpoint; one otherwise).
struct HfMapping {
  std::string param;
  std::vector<HfTensor> parts;
  HfLayout layout = HfLayout::Same;
  int64_t heads = 0;  // HeadInterleaved only
};

// Builds a family's tensor list.
class HfTensorMap {
 public:
  void same(const std::string& param, const std::string& name, const Shape& shape);
  void transposed(const std::string& param, const std::string& name, const Shape& stored_shape);
  void interleaved(const std::string& param, const std::string& name, const Shape& shape, int64_t heads);
  void row_vector(const std::string& param, const std::string& name, int64_t n);
  void stacked(const std::string& param, std::vector<HfTensor> parts);
  // "<param>.weight" [out, in] and, with bias, "<param>.bias" [out].
  void linear(const std::string& param, const std::string& name, int64_t out, int64_t in, bool bias);
  // "<param>.weight" [dim] and, with bias, "<param>.bias".
  void norm(const std::string& param, const std::string& name, int64_t dim, bool bias);
  // Q, K, V projections stored apart, fused into "<param>.weight" (and ".bias").
  void separate_qkv(const std::string& param, const std::string& q, const std::string& k, const std::string& v,
                    const ArchConfig& c);
  // Cross-attention: "<param>.q" from q, "<param>.kv" from k and v stacked.
  void separate_cross(const std::string& param, const std::string& q, const std::string& k, const std::string& v,
                      const ArchConfig& c);
  std::vector<HfMapping> take() { return std::move(mappings_); }

 private:
  std::vector<HfMapping> mappings_;
};

// The embeddings of BERT and the families that keep its module names (RoBERTa, ELECTRA, ALBERT):
// "<prefix>embeddings.{word,position,token_type}_embeddings" and "<prefix>embeddings.LayerNorm".
void bert_embeddings(HfTensorMap& m, const std::string& prefix, const ArchConfig& c);
// Encoder checkpoints of the classes in `with_head` carry the MLM head; any other class named in
// config.json "architectures" (BertModel, ElectraForPreTraining's discriminator, a sequence
// classifier) is loaded as the encoder alone (output_head false): hidden states only. No
// "architectures": with the head.
void mlm_head_only_for(const HfConfigReader& r, std::initializer_list<const char*> with_head, ArchConfig& c);
// An MLM head: transform dense and norm, the logits' bias, and the decoder weight when untied
// (nothing for a model without an output head).
void mlm_head(HfTensorMap& m, const std::string& dense, const std::string& norm, const std::string& bias,
              const std::string& decoder, const ArchConfig& c);

struct HfFamily {
  std::string model_type;    // config.json "model_type"
  std::string architecture;  // the class written to config.json "architectures" on save
  std::string base_prefix;   // prefix of the base model's names ("transformer."): checkpoints of the
                             // base model alone store names without it
  ArchConfig (*to_arch)(const HfConfigReader& config);
  // The family's config.json fields for `c` (model_type and architectures added by the caller).
  nlohmann::json (*to_hf_config)(const ArchConfig& c);
  std::vector<HfMapping> (*tensors)(const ArchConfig& c);
  // The base model's class ("BertModel"), written on save when the model has no output head;
  // empty for families always loaded with their head.
  std::string base_architecture = "";
};

const HfFamily& gpt2_family();
const HfFamily& llama_family();
const HfFamily& gpt_neox_family();
const HfFamily& opt_family();
const HfFamily& bloom_family();
const HfFamily& bert_family();
const HfFamily& roberta_family();
const HfFamily& electra_family();
const HfFamily& distilbert_family();
const HfFamily& albert_family();
const HfFamily& bart_family();
const HfFamily& marian_family();
const HfFamily& t5_family();

// The family of a model_type; an unknown one is a UsageError listing the supported types.
const HfFamily& hf_family(const std::string& model_type);
std::vector<std::string> hf_model_types();

// A decoder-only ArchConfig with the settings the HF decoder families share (pre-norm, final
// norm, no embedding scaling, no dropout, LayerNorm with biases).
ArchConfig hf_decoder_base();
// An encoder-only ArchConfig with the settings the HF encoder families share (BERT: post-norm
// LayerNorm with eps 1e-12, learned positions, an embedding norm, the MLM head's transform and
// bias, no embedding scaling, no dropout).
ArchConfig hf_encoder_base();

}  // namespace tcat::models

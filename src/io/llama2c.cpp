#include "io/llama2c.h"

#include <cstring>
#include <map>

namespace tcat::io {

namespace {

constexpr size_t kHeaderBytes = 7 * sizeof(int32_t);

struct Header {
  int64_t dim, hidden, layers, heads, kv_heads, vocab, seq_len;
  bool shared_classifier;
};

// The header of `file`, checked for sizes that cannot describe a model.
Header read_header(const Storage& file, const std::string& path) {
  if (file.bytes() < kHeaderBytes) fail("{}: {} bytes is too short for a llama2.c header", path, file.bytes());
  int32_t raw[7];
  std::memcpy(raw, file.data(), kHeaderBytes);
  const char* names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  for (int i = 0; i < 7; ++i)
    if (raw[i] == 0 || (raw[i] < 0 && i != 5))
      fail("{}: llama2.c header field {} = {} is not a positive size", path, names[i], raw[i]);
  const Header h{raw[0], raw[1], raw[2], raw[3], raw[4], std::abs(int64_t(raw[5])), raw[6], raw[5] > 0};
  if (h.dim % h.heads != 0 || h.heads % h.kv_heads != 0)
    fail("{}: n_heads {} must divide dim {} and n_kv_heads {} must divide n_heads", path, h.heads, h.dim, h.kv_heads);
  return h;
}

// Float counts of each tensor kind in run.c's order: {name, shape of one, how many}.
struct Block {
  const char* name;
  Shape shape;
  int64_t count;
};
std::vector<Block> blocks_of(const Header& h) {
  const int64_t head_dim = h.dim / h.heads, kv_dim = h.kv_heads * head_dim, L = h.layers;
  std::vector<Block> blocks = {
      {"token_embedding_table", {h.vocab, h.dim}, 1}, {"rms_att_weight", {h.dim}, L},
      {"wq", {h.dim, h.dim}, L},                      {"wk", {kv_dim, h.dim}, L},
      {"wv", {kv_dim, h.dim}, L},                     {"wo", {h.dim, h.dim}, L},
      {"rms_ffn_weight", {h.dim}, L},                 {"w1", {h.hidden, h.dim}, L},
      {"w2", {h.dim, h.hidden}, L},                   {"w3", {h.hidden, h.dim}, L},
      {"rms_final_weight", {h.dim}, 1},               {"freq_cis_real", {h.seq_len * head_dim / 2}, 1},
      {"freq_cis_imag", {h.seq_len * head_dim / 2}, 1}};
  if (!h.shared_classifier) blocks.push_back({"wcls", {h.vocab, h.dim}, 1});
  return blocks;
}

}  // namespace

bool is_llama2c_checkpoint(const std::string& path) {
  try {
    const std::shared_ptr<Storage> file = Storage::map_file(path);
    size_t bytes = kHeaderBytes;
    for (const Block& b : blocks_of(read_header(*file, path))) bytes += size_t(shape_numel(b.shape) * b.count) * 4;
    return bytes == file->bytes();
  } catch (const Error&) {
    return false;
  }
}

HfModel load_llama2c(const std::string& path) {
  const std::shared_ptr<Storage> file = Storage::map_file(path);
  const Header h = read_header(*file, path);
  const int64_t dim = h.dim, hidden = h.hidden, layers = h.layers, heads = h.heads, kv_heads = h.kv_heads;
  const int64_t vocab = h.vocab, seq_len = h.seq_len;
  const bool shared_classifier = h.shared_classifier;

  HfModel out;
  out.config.family = &models::llama_family();
  models::ArchConfig& c = out.config.arch;
  c = models::hf_decoder_base();
  c.vocab = vocab;
  c.d_model = dim;
  c.heads = heads;
  c.kv_heads = kv_heads;
  c.d_ff = hidden;
  c.dec_layers = layers;
  c.max_positions = seq_len;
  c.norm = nn::NormKind::RMSNorm;
  c.norm_eps = 1e-5f;  // run.c's rmsnorm
  c.activation = nn::Activation::SiLU;
  c.gated_ffn = true;
  c.bias = false;
  c.position = models::PositionKind::Rotary;
  c.rotary_interleaved = true;
  c.tie_output = shared_classifier;
  c.validate();
  out.config.bos_id = kLlama2cBos;
  out.config.eos_ids = {kLlama2cBos};

  const int64_t kv_dim = kv_heads * (dim / heads);
  std::map<std::string, std::vector<Tensor>> weights;
  size_t offset = kHeaderBytes;
  auto take = [&](const char* name, const Shape& shape, int64_t count) {
    const size_t bytes = size_t(shape_numel(shape)) * sizeof(float);
    if (offset + bytes * size_t(count) > file->bytes())
      fail("{}: the file ends inside {} ({} bytes, needs {} from offset {})", path, name, file->bytes(),
           bytes * size_t(count), offset);
    for (int64_t i = 0; i < count; ++i, offset += bytes)
      weights[name].push_back(Tensor::from_storage(file, offset, shape, DType::F32));
  };
  for (const Block& b : blocks_of(h)) take(b.name, b.shape, b.count);
  if (offset != file->bytes())
    fail("{}: {} bytes after the weights the header describes ({} bytes expected in all)", path,
         file->bytes() - offset, offset);

  out.model = std::make_unique<models::Transformer>(c, nn::Init::placeholders());  // each parameter is set below
  std::map<std::string, ag::Var> params;
  for (auto& [name, v] : out.model->named_parameters()) params.emplace(name, v);
  auto set = [&](const std::string& name, const Tensor& value) {
    ag::Var& p = params.at(name);
    TCAT_CHECK(p.shape() == value.shape(), "llama2.c: {} is {}, the model needs {}", name, value.desc(), p.desc());
    p.value() = value;
    params.erase(name);
  };
  set("embed.weight", weights["token_embedding_table"][0]);
  for (int64_t l = 0; l < layers; ++l) {
    const std::string prefix = fmt::format("decoder.layers.{}.", l);
    const size_t i = size_t(l);
    Tensor qkv = Tensor::empty({dim + 2 * kv_dim, dim});
    qkv.slice(0, 0, dim).copy_from(weights["wq"][i]);
    qkv.slice(0, dim, dim + kv_dim).copy_from(weights["wk"][i]);
    qkv.slice(0, dim + kv_dim, dim + 2 * kv_dim).copy_from(weights["wv"][i]);
    set(prefix + "self_attn.qkv.weight", qkv);
    set(prefix + "self_attn.out.weight", weights["wo"][i]);
    set(prefix + "norm_self.weight", weights["rms_att_weight"][i]);
    set(prefix + "norm_ffn.weight", weights["rms_ffn_weight"][i]);
    set(prefix + "ffn.gate.weight", weights["w1"][i]);
    set(prefix + "ffn.down.weight", weights["w2"][i]);
    set(prefix + "ffn.up.weight", weights["w3"][i]);
  }
  set("decoder.final_norm.weight", weights["rms_final_weight"][0]);
  if (!shared_classifier) set("lm_head.weight", weights["wcls"][0]);
  TCAT_CHECK(params.empty(), "llama2.c: the model has {} parameters the file format has no weights for (first: {})",
             params.size(), params.empty() ? "" : params.begin()->first);
  return out;
}

}  // namespace tcat::io

#include "io/hf_model.h"

#include <filesystem>
#include <map>
#include <optional>

#include "io/atomic_file.h"
#include "io/llama2c.h"
#include "io/safetensors.h"

namespace tcat::io {
namespace fs = std::filesystem;
namespace {

// model.safetensors or the shards of model.safetensors.index.json.
class CheckpointTensors {
 public:
  explicit CheckpointTensors(const fs::path& dir) {
    if (fs::exists(dir / "model.safetensors")) {
      single_ = SafetensorsFile::open((dir / "model.safetensors").string());
    } else if (fs::exists(dir / "model.safetensors.index.json")) {
      sharded_ = ShardedSafetensors::open((dir / "model.safetensors.index.json").string());
    } else {
      throw UsageError(fmt::format("{} has neither model.safetensors nor model.safetensors.index.json", dir.string()));
    }
  }

  // The stored name of `name`: itself, or without the base model's prefix (checkpoints of the
  // base model alone); empty if neither is stored.
  std::string find(const std::string& name, const std::string& base_prefix) const {
    if (contains(name)) return name;
    if (!base_prefix.empty() && name.rfind(base_prefix, 0) == 0 && contains(name.substr(base_prefix.size())))
      return name.substr(base_prefix.size());
    return {};
  }
  const TensorInfo& info(const std::string& name) const { return single_ ? single_->info(name) : sharded_->info(name); }
  // As stored: a view of the mapped file when tcat computes in the file's dtype, else widened to f32.
  Tensor stored(const std::string& name) const {
    const SafetensorsFile& f = file(name);
    return f.info(name).view_dtype ? f.get(name) : f.get_as(name, DType::F32);
  }
  void release(const std::string& name) const { file(name).release(name); }

 private:
  bool contains(const std::string& name) const { return single_ ? single_->contains(name) : sharded_->contains(name); }
  const SafetensorsFile& file(const std::string& name) const { return single_ ? *single_ : sharded_->shard(name); }

  std::optional<SafetensorsFile> single_;
  std::optional<ShardedSafetensors> sharded_;
};

// Rows of a per-head fused QKV, [outer, inner, head_dim, cols] viewed as [inner, outer, head_dim,
// cols] without copying: [heads, 3, ...] <-> [3, heads, ...].
Tensor swap_head_and_qkv(const Tensor& t, int64_t outer, int64_t inner) {
  const int64_t rows = t.dim(0), cols = t.numel() / rows;
  TCAT_CHECK(rows % (outer * inner) == 0, "fused QKV of {} rows cannot split into {} x {} groups", rows, outer, inner);
  return t.contiguous().view({outer, inner, rows / (outer * inner), cols}).permute({1, 0, 2, 3});
}

// The shape of a stored tensor in the parameter's layout.
Shape param_shape(const Shape& stored, const models::HfMapping& m) {
  switch (m.layout) {
    case models::HfLayout::Same:
    case models::HfLayout::HeadInterleaved: return stored;
    case models::HfLayout::Transposed: return {stored.at(1), stored.at(0)};
    case models::HfLayout::RowVector: return {shape_numel(stored)};
  }
  fail("unknown tensor layout {}", int(m.layout));
}

// Writes a stored tensor into `dest` (rows of a parameter) in the parameter's layout and dtype.
void copy_to_param_layout(const Tensor& stored, const models::HfMapping& m, Tensor dest) {
  switch (m.layout) {
    case models::HfLayout::Same: return dest.copy_from(stored);
    case models::HfLayout::Transposed: return dest.copy_from(stored.transpose(0, 1));
    case models::HfLayout::HeadInterleaved: {
      const Tensor swapped = swap_head_and_qkv(stored, m.heads, 3);
      return dest.view(swapped.shape()).copy_from(swapped);
    }
    case models::HfLayout::RowVector: return dest.copy_from(stored.view({stored.numel()}));
  }
  fail("unknown tensor layout {}", int(m.layout));
}

Tensor to_stored_layout(const Tensor& param, const models::HfMapping& m) {
  switch (m.layout) {
    case models::HfLayout::Same: return param.contiguous();
    case models::HfLayout::Transposed: return param.transpose(0, 1).contiguous();
    case models::HfLayout::HeadInterleaved: return swap_head_and_qkv(param, 3, m.heads).contiguous().view(param.shape());
    case models::HfLayout::RowVector: return param.contiguous().view({1, param.numel()});
  }
  fail("unknown tensor layout {}", int(m.layout));
}

std::map<std::string, ag::Var> parameters_by_name(const models::Transformer& model) {
  std::map<std::string, ag::Var> out;
  for (auto& [name, v] : model.named_parameters()) out.emplace(name, v);
  return out;
}

}  // namespace

HfModel load_hf_model(const std::string& dir) {
  HfModel out;
  out.config = read_hf_config(dir);
  const models::HfFamily& family = *out.config.family;
  out.model = std::make_unique<models::Transformer>(out.config.arch, nn::Init::placeholders());
  const CheckpointTensors files{fs::path(dir)};
  std::map<std::string, ag::Var> params = parameters_by_name(*out.model);
  for (const models::HfMapping& m : family.tensors(out.config.arch)) {
    auto param = params.find(m.param);
    TCAT_CHECK(param != params.end(), "{} tensor map names parameter '{}', which the model does not have",
               family.model_type, m.param);
    struct Part {
      std::string name;  // as stored
      Tensor stored;
      int64_t rows;  // in the parameter's layout
    };
    std::vector<Part> parts;
    Shape shape;  // of the parts stacked in the parameter's layout
    for (const models::HfTensor& part : m.parts) {
      const std::string stored = files.find(part.name, family.base_prefix);
      if (stored.empty())
        fail("{}: missing tensor '{}' (expected shape {})", dir, part.name, shape_str(part.shape));
      const Shape& stored_shape = files.info(stored).shape;
      if (stored_shape != part.shape)
        fail("{}: tensor '{}' has shape {}, but config.json implies {}", dir, stored, shape_str(stored_shape),
             shape_str(part.shape));
      const Shape part_shape = param_shape(part.shape, m);
      if (shape.empty()) {
        shape = part_shape;
      } else {
        shape[0] += part_shape[0];
      }
      parts.push_back({stored, files.stored(stored), part_shape[0]});
    }
    TCAT_CHECK(shape == param->second.shape(), "{}: parameter '{}' is {} but its tensors give {}",
               family.model_type, m.param, shape_str(param->second.shape()), shape_str(shape));
    const Tensor& first = parts.front().stored;
    const bool view = parts.size() == 1 && first.dtype() == DType::F32 && first.storage()->mapped() &&
                      (m.layout == models::HfLayout::Same || m.layout == models::HfLayout::RowVector);
    if (view) {
      param->second.value() = first.view(shape);  // zero-copy: the view keeps the mapping alive
    } else {
      // A copy, after which the file pages it read are released: only the copy stays resident.
      Tensor value = Tensor::empty(shape);
      int64_t row = 0;
      for (const Part& part : parts) {
        copy_to_param_layout(part.stored, m, value.slice(0, row, row + part.rows));
        files.release(part.name);
        row += part.rows;
      }
      param->second.value() = value;
    }
    params.erase(param);
  }
  TCAT_CHECK(params.empty(), "{} tensor map leaves parameter '{}' unset", family.model_type,
             params.empty() ? "" : params.begin()->first);
  return out;
}

HfModel load_pretrained(const std::string& path) {
  const fs::path p(path);
  if (fs::is_directory(p) && fs::exists(p / "config.json")) return load_hf_model(path);
  if (fs::is_regular_file(p)) return load_llama2c(path);
  if (!fs::is_directory(p)) throw UsageError(fmt::format("model path '{}' does not exist", path));
  std::vector<fs::path> bins;
  for (const auto& entry : fs::directory_iterator(p))
    if (entry.path().extension() == ".bin" && is_llama2c_checkpoint(entry.path().string())) bins.push_back(entry.path());
  if (bins.size() != 1)
    throw UsageError(fmt::format("{} has no config.json and {} llama2.c checkpoints (needs exactly one)", path,
                                 bins.size()));
  return load_llama2c(bins.front().string());
}

void save_hf_model(const models::Transformer& model, const HfModelConfig& config, const std::string& dir) {
  TCAT_CHECK(config.family, "save_hf_model: no model family");
  const models::HfFamily& family = *config.family;
  const nlohmann::json config_json = hf_config_json(config);
  // The family must describe this model exactly: its config.json has to read back as the same ArchConfig.
  models::ArchConfig expected = model.config();
  const models::ArchConfig written = parse_hf_config(config_json, "the config.json to save").arch;
  expected.dropout = written.dropout;
  expected.pad_id = written.pad_id;
  const nlohmann::json want = expected.to_json(), got = written.to_json();
  for (auto it = want.begin(); it != want.end(); ++it)
    if (got.at(it.key()) != it.value())
      throw UsageError(fmt::format("this model cannot be saved as {}: its {} is {}, which {} cannot express",
                                   family.model_type, it.key(), it.value().dump(), family.model_type));

  const std::map<std::string, ag::Var> params = parameters_by_name(model);
  std::vector<std::pair<std::string, Tensor>> tensors;
  for (const models::HfMapping& m : family.tensors(model.config())) {
    const Tensor& value = params.at(m.param).value();
    int64_t row = 0;
    for (const models::HfTensor& part : m.parts) {
      const int64_t rows = param_shape(part.shape, m)[0];
      tensors.emplace_back(part.name, to_stored_layout(value.slice(0, row, row + rows), m));
      row += rows;
    }
  }
  fs::create_directories(dir);
  save_safetensors((fs::path(dir) / "model.safetensors").string(), tensors, {{"format", "pt"}});
  write_file_atomic((fs::path(dir) / "config.json").string(), config_json.dump(2) + "\n");
}

}  // namespace tcat::io

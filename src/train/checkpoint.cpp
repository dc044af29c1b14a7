#include "train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <unordered_map>

#include "io/safetensors.h"

namespace tcat::train {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr const char* kFormat = "1";
constexpr const char* kModelFile = "model.safetensors";
constexpr const char* kTokenizerFile = "tokenizer.model";
constexpr const char* kStateFile = "train_state.safetensors";
constexpr const char* kCheckpointsDir = "checkpoints";
constexpr const char* kStepPrefix = "step-";
constexpr const char* kTmpMarker = ".tmp-";  // in every name that is not (yet or any more) a checkpoint
constexpr int kMaxJsonDepth = 64;
constexpr uintmax_t kMaxPointerBytes = 4096;

std::string tmp_suffix() { return fmt::format("{}{}", kTmpMarker, ::getpid()); }

template <typename Map>
std::vector<std::string> keys_of(const Map& m) {
  std::vector<std::string> keys;
  for (const auto& [key, value] : m) keys.push_back(key);
  return keys;
}

// ---- files and directories ----------------------------------------------------------------------

// Makes renames and creations inside `dir` durable. Some filesystems refuse fsync on directories,
// which costs nothing but durability there.
void sync_dir(const fs::path& dir) {
  const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

void write_synced(const fs::path& path, const std::string& bytes) {
  const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  TCAT_CHECK(fd >= 0, "cannot create '{}': {}", path.string(), std::strerror(errno));
  const char* p = bytes.data();
  size_t left = bytes.size();
  while (left > 0) {
    const ssize_t w = ::write(fd, p, left);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) {
      const int err = errno;
      ::close(fd);
      fail("cannot write '{}': {}", path.string(), std::strerror(err));
    }
    p += w;
    left -= size_t(w);
  }
  const bool synced = ::fsync(fd) == 0;
  const int err = errno;
  TCAT_CHECK(::close(fd) == 0 && synced, "cannot write '{}': {}", path.string(), std::strerror(synced ? errno : err));
}

std::string read_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  TCAT_CHECK(in.is_open(), "cannot open '{}': {}", path.string(), std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  TCAT_CHECK(!in.bad(), "cannot read '{}'", path.string());
  return bytes;
}

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

void remove_tree(const fs::path& p) {
  std::error_code ec;
  fs::remove_all(p, ec);
  TCAT_CHECK(!ec, "cannot delete '{}': {}", p.string(), ec.message());
}

void make_dirs(const fs::path& p) {
  std::error_code ec;
  fs::create_directories(p, ec);
  TCAT_CHECK(!ec, "cannot create directory '{}': {}", p.string(), ec.message());
}

std::vector<std::string> entries_of(const fs::path& dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec))
    names.push_back(it->path().filename().string());
  TCAT_CHECK(!ec, "cannot list '{}': {}", dir.string(), ec.message());
  return names;
}

// Moves the finished directory `tmp` to `dir`. An existing `dir` is swapped out in one step, so
// `dir` is never missing, and then deleted.
void install_dir(const fs::path& tmp, const fs::path& dir) {
  if (::rename(tmp.c_str(), dir.c_str()) != 0) {
    TCAT_CHECK(errno == ENOTEMPTY || errno == EEXIST, "cannot rename '{}' to '{}': {}", tmp.string(), dir.string(),
               std::strerror(errno));
    TCAT_CHECK(::renameat2(AT_FDCWD, tmp.c_str(), AT_FDCWD, dir.c_str(), RENAME_EXCHANGE) == 0,
               "cannot replace '{}' with '{}': {}", dir.string(), tmp.string(), std::strerror(errno));
    sync_dir(dir.parent_path());
    remove_tree(tmp);
    return;
  }
  sync_dir(dir.parent_path());
}

// ---- metadata -----------------------------------------------------------------------------------

std::string dump(const json& j, const char* what) {
  try {
    return j.dump();
  } catch (const json::exception& e) {
    fail("checkpoint: cannot encode {} as JSON (strings must be UTF-8): {}", what, e.what());
  }
}

const std::string& metadata_string(const io::SafetensorsFile& f, const char* key) {
  const auto it = f.metadata().find(key);
  TCAT_CHECK(it != f.metadata().end(), "'{}': missing metadata \"{}\"", f.path(), key);
  return it->second;
}

json metadata_json(const io::SafetensorsFile& f, const char* key) {
  const std::string& text = metadata_string(f, key);
  const json::parser_callback_t limit_depth = [&](int depth, json::parse_event_t, json&) {
    if (depth > kMaxJsonDepth)
      fail("'{}': metadata \"{}\" is nested deeper than {} levels", f.path(), key, kMaxJsonDepth);
    return true;
  };
  try {
    return json::parse(text, limit_depth);
  } catch (const json::exception& e) {
    fail("'{}': metadata \"{}\" is not valid JSON: {}", f.path(), key, e.what());
  }
}

io::SafetensorsFile open_checkpoint_file(const fs::path& path) {
  io::SafetensorsFile f = io::SafetensorsFile::open(path.string());
  const auto it = f.metadata().find("tcat.format");
  TCAT_CHECK(it != f.metadata().end(), "'{}' is not a tcat checkpoint file (no \"tcat.format\" metadata)", f.path());
  TCAT_CHECK(it->second == kFormat, "'{}' has checkpoint format '{}'; this build reads format {}", f.path(), it->second,
             kFormat);
  return f;
}

int64_t non_negative(const io::SafetensorsFile& f, const char* what, const json& v) {
  TCAT_CHECK(v.is_number_unsigned() && v.get<uint64_t>() <= uint64_t(INT64_MAX),
             "'{}': {} must be a non-negative integer, got {}", f.path(), what, v.dump());
  return v.get<int64_t>();
}

// ---- what a checkpoint holds --------------------------------------------------------------------

using Named = std::vector<std::pair<std::string, Var>>;

// Each parameter once, under its first name (tied parameters have several), in registration order.
Named unique_parameters(const nn::Module& m) {
  Named out;
  std::set<const ag::VarImpl*> seen;
  for (auto& [name, v] : m.named_parameters())
    if (seen.insert(v.impl().get()).second) out.emplace_back(name, v);
  return out;
}

// The optimizer's parameters in its own order, named as in the model.
Named optimizer_parameters(const Adam& optimizer, const nn::Module& model) {
  std::unordered_map<const ag::VarImpl*, std::string> name_of;
  for (const auto& [name, v] : unique_parameters(model)) name_of.emplace(v.impl().get(), name);
  Named out;
  for (const ParamGroup& g : optimizer.groups()) {
    for (const Var& p : g.params) {
      const auto it = name_of.find(p.impl().get());
      TCAT_CHECK(it != name_of.end(), "checkpoint: optimizer parameter '{}' {} is not a parameter of the model",
                 p.name(), p.desc());
      out.emplace_back(it->second, p);
    }
  }
  return out;
}

struct ModelFile {
  io::SafetensorsFile file;
  models::ArchConfig arch;
  int64_t step = 0;
  json train_config;
};

ModelFile open_model_file(const std::string& dir) {
  TCAT_CHECK(is_dir(dir), "checkpoint '{}' does not exist or is not a directory", dir);
  const fs::path path = fs::path(dir) / kModelFile;
  TCAT_CHECK(is_file(path), "checkpoint '{}' is incomplete: missing '{}'", dir, path.string());
  ModelFile m{open_checkpoint_file(path), {}, 0, nullptr};
  const json arch = metadata_json(m.file, "tcat.arch");
  try {
    m.arch = models::ArchConfig::from_json(arch);
  } catch (const UsageError& e) {
    fail("'{}': metadata \"tcat.arch\": {}", m.file.path(), e.what());
  }
  m.step = non_negative(m.file, "metadata \"tcat.step\"", metadata_json(m.file, "tcat.step"));
  if (m.file.metadata().count("tcat.train_config")) m.train_config = metadata_json(m.file, "tcat.train_config");
  return m;
}

std::optional<std::string> read_tokenizer(const std::string& dir) {
  const fs::path path = fs::path(dir) / kTokenizerFile;
  if (!is_file(path)) return std::nullopt;
  return read_file(path);
}

void check_same_arch(const models::ArchConfig& a, const std::string& a_label, const models::ArchConfig& b,
                     const std::string& b_label) {
  const json ja = a.to_json(), jb = b.to_json();
  std::vector<std::string> diffs;
  for (const auto& [key, value] : ja.items())
    if (value != jb[key])
      diffs.push_back(fmt::format("{} is {} in {} but {} in {}", key, value.dump(), a_label, jb[key].dump(), b_label));
  TCAT_CHECK(diffs.empty(), "architectures differ: {}", fmt::join(diffs, "; "));
}

// The tensors `expected` names, each checked against its shape, as f32; any other tensor in the file
// is an error too. Reads only: nothing is modified until every tensor has passed.
std::vector<Tensor> read_exactly(const io::SafetensorsFile& f,
                                 const std::vector<std::pair<std::string, Shape>>& expected) {
  std::set<std::string> wanted;
  std::vector<Tensor> out;
  for (const auto& [name, shape] : expected) {
    TCAT_CHECK(f.contains(name), "'{}': missing tensor '{}' (expected shape {})", f.path(), name, shape_str(shape));
    const Shape& actual = f.info(name).shape;
    TCAT_CHECK(actual == shape, "'{}': tensor '{}' has shape {}, expected {}", f.path(), name, shape_str(actual),
               shape_str(shape));
    out.push_back(f.get_as(name, DType::F32));
    wanted.insert(name);
  }
  std::vector<std::string> extra;
  for (const std::string& name : f.names())
    if (!wanted.count(name)) extra.push_back(name);
  constexpr size_t kShown = 5;
  TCAT_CHECK(extra.empty(), "'{}': {} unexpected tensor(s): {}{}", f.path(), extra.size(),
             fmt::join(extra.begin(), extra.begin() + std::min(extra.size(), kShown), ", "),
             extra.size() > kShown ? ", ..." : "");
  return out;
}

std::vector<std::pair<std::string, Shape>> shapes_of(const Named& params, const std::string& prefix = "") {
  std::vector<std::pair<std::string, Shape>> out;
  for (const auto& [name, v] : params) out.emplace_back(prefix + name, v.shape());
  return out;
}

std::vector<std::pair<std::string, Shape>> moment_shapes(const Named& params) {
  std::vector<std::pair<std::string, Shape>> out;
  for (const auto& [name, v] : params) {
    out.emplace_back("adam.m." + name, v.shape());
    out.emplace_back("adam.v." + name, v.shape());
  }
  return out;
}

void write_files(const fs::path& dir, const Checkpoint& c, const std::map<std::string, std::string>& extra_metadata) {
  std::map<std::string, std::string> meta = extra_metadata;
  meta["tcat.format"] = kFormat;
  meta["tcat.arch"] = c.model.config().to_json().dump();
  meta["tcat.step"] = std::to_string(c.step);
  if (!c.train_config.is_null()) meta["tcat.train_config"] = dump(c.train_config, "the train config");
  std::vector<std::pair<std::string, Tensor>> tensors;
  TCAT_CHECK(c.weights_dtype == DType::F32 || c.weights_dtype == DType::BF16 || c.weights_dtype == DType::F16,
             "checkpoint weights can be stored as f32, bf16 or f16, not {}", dtype_name(c.weights_dtype));
  TCAT_CHECK(c.weights_dtype == DType::F32 || !c.training,
             "a checkpoint with training state keeps f32 weights (resuming from rounded weights would not be exact)");
  for (const auto& [name, v] : unique_parameters(c.model)) tensors.emplace_back(name, v.value().to(c.weights_dtype));
  io::save_safetensors((dir / kModelFile).string(), tensors, meta);

  if (c.tokenizer) write_synced(dir / kTokenizerFile, *c.tokenizer);

  if (c.training) {
    const TrainingState& t = *c.training;
    const Named params = optimizer_parameters(t.optimizer, c.model);
    const std::vector<Tensor> moments = t.optimizer.state_tensors();
    const auto names = moment_shapes(params);
    tensors.clear();
    for (size_t i = 0; i < names.size(); ++i) tensors.emplace_back(names[i].first, moments[i]);
    json rngs = json::object();
    for (const auto& [name, s] : t.rngs) rngs[name] = s;
    const json state = {{"optimizer_step", t.optimizer.steps()}, {"rngs", rngs}, {"progress", t.progress}};
    io::save_safetensors((dir / kStateFile).string(), tensors,
                         {{"tcat.format", kFormat}, {"tcat.train_state", dump(state, "the training state")}});
  }
}

void write_checkpoint_dir(const fs::path& dir, const Checkpoint& c,
                          const std::map<std::string, std::string>& extra_metadata) {
  TCAT_CHECK(c.step >= 0, "checkpoint '{}': step {} is negative", dir.string(), c.step);
  const fs::path tmp = dir.string() + tmp_suffix();
  make_dirs(dir.parent_path().empty() ? fs::path(".") : dir.parent_path());
  remove_tree(tmp);
  make_dirs(tmp);
  try {
    write_files(tmp, c, extra_metadata);
    sync_dir(tmp);
    install_dir(tmp, dir);
  } catch (...) {
    std::error_code ignored;  // the original error is the one to report
    fs::remove_all(tmp, ignored);
    throw;
  }
}

// ---- runs: step directories and pointers --------------------------------------------------------

fs::path checkpoints_dir(const std::string& run_dir) { return fs::path(run_dir) / kCheckpointsDir; }

// The step a "step-<N>" directory name stands for; nullopt for any other name.
std::optional<int64_t> step_of(const std::string& name) {
  const std::string prefix = kStepPrefix;
  if (name.size() <= prefix.size() || name.size() > prefix.size() + 18 || name.compare(0, prefix.size(), prefix) != 0)
    return std::nullopt;
  int64_t step = 0;
  for (size_t i = prefix.size(); i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9') return std::nullopt;
    step = step * 10 + (name[i] - '0');
  }
  return step;
}

std::vector<std::pair<int64_t, std::string>> step_dirs(const fs::path& ckdir) {
  std::vector<std::pair<int64_t, std::string>> out;
  if (!is_dir(ckdir)) return out;
  for (const std::string& name : entries_of(ckdir))
    if (const auto step = step_of(name); step && is_dir(ckdir / name)) out.emplace_back(*step, name);
  std::sort(out.begin(), out.end());
  return out;
}

void write_pointer(const fs::path& ckdir, const char* pointer, const std::string& target) {
  const fs::path tmp = ckdir / (pointer + tmp_suffix());
  write_synced(tmp, target + "\n");
  TCAT_CHECK(::rename(tmp.c_str(), (ckdir / pointer).c_str()) == 0, "cannot rename '{}' to '{}': {}", tmp.string(),
             (ckdir / pointer).string(), std::strerror(errno));
  sync_dir(ckdir);
}

// The name a pointer file holds, unvalidated; nullopt when it does not exist.
std::optional<std::string> pointer_target(const fs::path& path) {
  std::error_code ec;
  if (!fs::exists(fs::symlink_status(path, ec))) return std::nullopt;
  const uintmax_t size = fs::file_size(path, ec);
  TCAT_CHECK(!ec && size <= kMaxPointerBytes, "'{}' must be a small text file naming a checkpoint directory",
             path.string());
  std::string text = read_file(path);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.pop_back();
  return text;
}

std::optional<std::string> read_pointer(const std::string& run_dir, const char* pointer) {
  const fs::path ckdir = checkpoints_dir(run_dir), path = ckdir / pointer;
  const auto name = pointer_target(path);
  if (!name) return std::nullopt;
  TCAT_CHECK(!name->empty() && name->find('/') == std::string::npos && *name != "." && *name != "..",
             "'{}' must name a checkpoint directory next to it, got '{}'", path.string(), *name);
  const fs::path target = ckdir / *name;
  TCAT_CHECK(is_file(target / kModelFile), "'{}' points to '{}', which is not a checkpoint (no {})", path.string(),
             target.string(), kModelFile);
  return target.string();
}

// Deletes what interrupted saves and deletions left behind: every name carrying the temp marker.
void remove_leftovers(const fs::path& ckdir) {
  for (const std::string& name : entries_of(ckdir))
    if (name.find(kTmpMarker) != std::string::npos) remove_tree(ckdir / name);
}

// Deletes step directories beyond the `keep` highest steps, except those a pointer names. Each is
// first renamed to a temp name, so a half-deleted directory never looks like a checkpoint.
void prune(const fs::path& ckdir, int64_t keep) {
  if (keep == 0) return;
  std::set<std::string> pinned;
  for (const char* pointer : {"latest", "best"})
    if (const auto name = pointer_target(ckdir / pointer)) pinned.insert(*name);
  const auto steps = step_dirs(ckdir);
  for (size_t i = 0; i + size_t(keep) < steps.size(); ++i) {
    const std::string& name = steps[i].second;
    if (pinned.count(name)) continue;
    const fs::path trash = ckdir / (name + tmp_suffix() + ".deleted");
    TCAT_CHECK(::rename((ckdir / name).c_str(), trash.c_str()) == 0, "cannot rename '{}' to '{}': {}",
               (ckdir / name).string(), trash.string(), std::strerror(errno));
    remove_tree(trash);
  }
}

}  // namespace

// ---- public API ---------------------------------------------------------------------------------

void write_checkpoint(const std::string& dir, const Checkpoint& c) { write_checkpoint_dir(dir, c, {}); }

std::string save_checkpoint(const std::string& run_dir, const Checkpoint& c, const SaveOptions& opt) {
  TCAT_CHECK(opt.keep_last >= 0, "save_checkpoint: keep_last must be >= 0, got {}", opt.keep_last);
  const fs::path ckdir = checkpoints_dir(run_dir);
  make_dirs(ckdir);
  remove_leftovers(ckdir);
  const std::string name = kStepPrefix + std::to_string(c.step);
  write_checkpoint_dir(ckdir / name, c, {});
  write_pointer(ckdir, "latest", name);
  if (opt.is_best) write_pointer(ckdir, "best", name);
  prune(ckdir, opt.keep_last);
  return (ckdir / name).string();
}

std::vector<std::string> list_checkpoints(const std::string& run_dir) {
  const fs::path ckdir = checkpoints_dir(run_dir);
  std::vector<std::string> out;
  for (const auto& [step, name] : step_dirs(ckdir)) out.push_back((ckdir / name).string());
  return out;
}

std::optional<std::string> latest_checkpoint(const std::string& run_dir) { return read_pointer(run_dir, "latest"); }
std::optional<std::string> best_checkpoint(const std::string& run_dir) { return read_pointer(run_dir, "best"); }

std::string resolve_checkpoint(const std::string& path) {
  if (is_file(fs::path(path) / kModelFile)) return path;
  if (const auto latest = latest_checkpoint(path)) return *latest;
  fail("'{}' is neither a checkpoint directory (no {}) nor a run directory (no {}/latest)", path, kModelFile,
       kCheckpointsDir);
}

std::string resolve_model(const std::string& path) {
  TCAT_CHECK(fs::exists(path), "model '{}' does not exist", path);
  if (is_file(fs::path(path) / kModelFile)) return path;
  if (is_file(fs::path(path) / "model" / kModelFile)) return (fs::path(path) / "model").string();
  return resolve_checkpoint(path);
}

void export_model(const std::string& from, const std::string& to, DType dtype, int64_t average_last) {
  std::error_code ec;
  TCAT_CHECK(!fs::exists(to) || fs::is_empty(to, ec) || is_file(fs::path(to) / kModelFile),
             "export: '{}' exists and is not a checkpoint; refusing to replace it", to);
  // The f32 mean of averaged checkpoints goes through a private directory next to `to`, always removed.
  struct RemovedOnExit {
    fs::path path;
    ~RemovedOnExit() {
      std::error_code ignored;
      if (!path.empty()) fs::remove_all(path, ignored);
    }
  } average_dir;
  std::string dir = resolve_model(from);
  if (average_last > 0) {
    average_dir.path = to + ".average" + tmp_suffix();
    dir = average_dir.path.string();
    average_last_checkpoints(from, average_last, dir);
  }
  const LoadedModel m = load_model(dir);
  Checkpoint c{*m.model, m.step, m.train_config, m.tokenizer};
  c.weights_dtype = dtype;
  write_checkpoint(to, c);
}

LoadedModel load_model(const std::string& dir) {
  const ModelFile m = open_model_file(dir);
  Rng init_rng(0);  // every parameter is overwritten below
  auto model = std::make_unique<models::Transformer>(m.arch, init_rng);
  Named params = unique_parameters(*model);
  const std::vector<Tensor> values = read_exactly(m.file, shapes_of(params));
  for (size_t i = 0; i < params.size(); ++i) params[i].second.value().copy_from(values[i]);
  return {m.arch, std::move(model), m.step, m.train_config, read_tokenizer(dir)};
}

ResumeInfo load_training_state(const std::string& dir, models::Transformer& model, Adam& optimizer,
                               const std::map<std::string, Rng*>& rngs) {
  const ModelFile m = open_model_file(dir);
  check_same_arch(m.arch, fmt::format("checkpoint '{}'", dir), model.config(), "the model being resumed");
  Named params = unique_parameters(model);
  const std::vector<Tensor> values = read_exactly(m.file, shapes_of(params));

  const fs::path state_path = fs::path(dir) / kStateFile;
  TCAT_CHECK(is_file(state_path),
             "checkpoint '{}' holds no training state: missing '{}' (an averaged or exported model?)", dir,
             state_path.string());
  const io::SafetensorsFile state_file = open_checkpoint_file(state_path);
  const json state = metadata_json(state_file, "tcat.train_state");
  TCAT_CHECK(state.is_object() && state.contains("optimizer_step") && state.contains("rngs") &&
                 state["rngs"].is_object() && state.contains("progress"),
             "'{}': metadata \"tcat.train_state\" must be an object with \"optimizer_step\", \"rngs\" (an object) "
             "and \"progress\"",
             state_file.path());
  const int64_t optimizer_step = non_negative(state_file, "optimizer_step", state["optimizer_step"]);
  const std::vector<Tensor> moments = read_exactly(state_file, moment_shapes(optimizer_parameters(optimizer, model)));

  std::map<std::string, std::array<uint64_t, 4>> rng_states;
  for (const auto& [name, s] : state["rngs"].items()) {
    TCAT_CHECK(rngs.count(name), "'{}': holds the state of RNG '{}', which the caller does not restore (restoring: {})",
               state_file.path(), name, fmt::join(keys_of(rngs), ", "));
    TCAT_CHECK(s.is_array() && s.size() == 4 &&
                   std::all_of(s.begin(), s.end(), [](const json& w) { return w.is_number_unsigned(); }),
               "'{}': state of RNG '{}' must be 4 unsigned 64-bit integers, got {}", state_file.path(), name, s.dump());
    rng_states[name] = s.get<std::array<uint64_t, 4>>();
  }
  for (const auto& [name, rng] : rngs)
    TCAT_CHECK(rng_states.count(name), "'{}': no state saved for RNG '{}'", state_file.path(), name);

  // Everything is valid: only now change the caller's objects.
  for (size_t i = 0; i < params.size(); ++i) params[i].second.value().copy_from(values[i]);
  optimizer.load_state(moments, optimizer_step);
  for (const auto& [name, rng] : rngs) rng->set_state(rng_states.at(name));
  return {m.step, state["progress"], m.train_config};
}

void average_checkpoints(const std::vector<std::string>& dirs, const std::string& out_dir) {
  TCAT_CHECK(!dirs.empty(), "average_checkpoints: no checkpoints given");
  const ModelFile first = open_model_file(dirs.front());
  const std::optional<std::string> tokenizer = read_tokenizer(dirs.front());
  Rng init_rng(0);  // every parameter is overwritten below
  models::Transformer model(first.arch, init_rng);
  Named params = unique_parameters(model);
  const auto shapes = shapes_of(params);

  std::vector<std::vector<double>> sums;
  for (const auto& [name, v] : params) sums.emplace_back(size_t(v.value().numel()), 0.0);
  int64_t step = 0;
  for (const std::string& dir : dirs) {
    const ModelFile m = open_model_file(dir);
    check_same_arch(first.arch, fmt::format("'{}'", dirs.front()), m.arch, fmt::format("'{}'", dir));
    TCAT_CHECK(read_tokenizer(dir) == tokenizer, "cannot average '{}' with '{}': their tokenizers differ", dir,
               dirs.front());
    const std::vector<Tensor> values = read_exactly(m.file, shapes);
    for (size_t i = 0; i < values.size(); ++i) {
      const Tensor v = values[i].contiguous();
      const float* p = v.data<float>();
      for (size_t j = 0; j < sums[i].size(); ++j) sums[i][j] += double(p[j]);
    }
    step = m.step;
  }
  for (size_t i = 0; i < params.size(); ++i) {
    float* p = params[i].second.value().data<float>();
    for (size_t j = 0; j < sums[i].size(); ++j) p[j] = float(sums[i][j] / double(dirs.size()));
  }
  write_checkpoint_dir(out_dir, Checkpoint{model, step, first.train_config, tokenizer, nullptr},
                       {{"tcat.averaged_from", dump(json(dirs), "the source list")}});
}

void average_last_checkpoints(const std::string& run_dir, int64_t k, const std::string& out_dir) {
  TCAT_CHECK(k > 0, "average_last_checkpoints: k must be positive, got {}", k);
  const std::vector<std::string> all = list_checkpoints(run_dir);
  TCAT_CHECK(all.size() >= size_t(k), "average_last_checkpoints: run '{}' has {} checkpoint(s), {} requested", run_dir,
             all.size(), k);
  average_checkpoints({all.end() - k, all.end()}, out_dir);
}

}  // namespace tcat::train

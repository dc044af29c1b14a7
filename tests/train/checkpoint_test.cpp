#include "common/temp_dir.h"
#include "train/checkpoint.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "data/synthetic.h"
#include "io/safetensors.h"
#include "train/seq2seq_trainer.h"

using namespace tcat;
using namespace tcat::train;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

models::ArchConfig tiny_arch() {
  models::ArchConfig c = models::preset("transformer-tiny", 12);
  c.d_model = 16;
  c.heads = 2;
  c.d_ff = 32;
  c.enc_layers = c.dec_layers = 1;
  c.max_positions = 16;
  return c;
}

std::unique_ptr<models::Transformer> make_model(uint64_t seed, const models::ArchConfig& arch = tiny_arch()) {
  Rng rng(seed);
  return std::make_unique<models::Transformer>(arch, rng);
}

std::unique_ptr<Seq2SeqTrainer> make_trainer(models::Transformer& model) {
  return std::make_unique<Seq2SeqTrainer>(model, std::make_unique<NoamSchedule>(16, 4), Seq2SeqTrainOptions{});
}

data::Seq2SeqBatch batch(uint64_t seed) {
  Rng rng(seed);
  return data::synthetic_batch({data::SyntheticTask::Copy, 12, 3, 6}, 4, rng);
}

bool has(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

// The message of the tcat::Error `fn` throws (a failure if it throws nothing).
template <typename Fn>
std::string error_of(Fn fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "expected a tcat::Error";
  return {};
}

void expect_same_values(const std::vector<std::pair<std::string, ag::Var>>& a,
                        const std::vector<std::pair<std::string, ag::Var>>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_EQ(a[i].first, b[i].first);
    EXPECT_EQ(a[i].second.value().to_vector(), b[i].second.value().to_vector()) << a[i].first;
  }
}

std::string read_bytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void write_bytes(const fs::path& path, const std::string& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(bytes.data(), std::streamsize(bytes.size()));
}

std::vector<std::string> names_in(const fs::path& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

class CheckpointTest : public tcat::testing::TempDirTest {
 protected:

  std::string run() const { return (dir_ / "run").string(); }
  fs::path ckdir() const { return dir_ / "run" / "checkpoints"; }

  // A model-only checkpoint of a fresh model at `step`.
  std::string save_step(int64_t step, const SaveOptions& opt = {}) {
    const auto model = make_model(uint64_t(step));
    return save_checkpoint(run(), Checkpoint{.model = *model, .step = step}, opt);
  }

  std::string write_dir(const std::string& name, const models::Transformer& model, const std::string& tokenizer) {
    const std::string dir = (dir_ / name).string();
    write_checkpoint(dir, Checkpoint{model, 0, nullptr, tokenizer});
    return dir;
  }

};

TEST_F(CheckpointTest, ResumeRestoresEverythingAndContinuesBitExactly) {
  auto model = make_model(1);
  auto trainer = make_trainer(*model);
  trainer->step(batch(10));
  trainer->step(batch(11));
  Rng data_rng(77);
  data_rng.next_u64();
  const TrainingState state{trainer->optimizer(),
                            {{"dropout", trainer->rng().state()}, {"data", data_rng.state()}},
                            {{"epoch", 1}, {"batch", 7}, {"best_bleu", 12.5}, {"patience", 2}}};
  const json hyper = {{"lr_factor", 2.0}, {"warmup", 4}};
  const std::string dir = save_checkpoint(run(), Checkpoint{*model, 2, hyper, std::nullopt, &state});
  EXPECT_EQ(fs::path(dir).filename(), "step-2");
  EXPECT_EQ(latest_checkpoint(run()), dir);

  auto resumed = make_model(99);
  auto resumed_trainer = make_trainer(*resumed);
  Rng resumed_data_rng(0);
  const ResumeInfo info = load_training_state(dir, *resumed, resumed_trainer->optimizer(),
                                              {{"dropout", &resumed_trainer->rng()}, {"data", &resumed_data_rng}});
  EXPECT_EQ(info.step, 2);
  EXPECT_EQ(info.progress, state.progress);
  EXPECT_EQ(info.train_config, hyper);
  expect_same_values(model->named_parameters(), resumed->named_parameters());
  EXPECT_EQ(resumed_trainer->optimizer().steps(), 2);
  const auto moments = trainer->optimizer().state_tensors(), restored = resumed_trainer->optimizer().state_tensors();
  ASSERT_EQ(moments.size(), restored.size());
  for (size_t i = 0; i < moments.size(); ++i) EXPECT_EQ(moments[i].to_vector(), restored[i].to_vector()) << i;
  EXPECT_EQ(resumed_trainer->rng().state(), trainer->rng().state());
  EXPECT_EQ(resumed_data_rng.state(), data_rng.state());

  // Another step (with dropout and the learning-rate schedule) gives the same result on both.
  const StepStats a = trainer->step(batch(12)), b = resumed_trainer->step(batch(12));
  EXPECT_EQ(a.loss, b.loss);
  expect_same_values(model->named_parameters(), resumed->named_parameters());
}

TEST_F(CheckpointTest, LoadModelRebuildsTheArchitectureAndGivesIdenticalLogits) {
  auto model = make_model(3);
  const std::string tokenizer("\x00\x01spm-bytes\xff", 13);
  const std::string dir = save_checkpoint(run(), Checkpoint{*model, 40, json{{"preset", "tiny"}}, tokenizer});
  EXPECT_FALSE(fs::exists(fs::path(dir) / "train_state.safetensors"));

  const LoadedModel loaded = load_model(resolve_checkpoint(run()));
  EXPECT_EQ(loaded.config.to_json(), tiny_arch().to_json());
  EXPECT_EQ(loaded.step, 40);
  EXPECT_EQ(loaded.tokenizer, tokenizer);
  EXPECT_EQ(loaded.train_config, (json{{"preset", "tiny"}}));

  const Tensor src = Tensor::from_ids({3, 4, 5, 6, 2, 0}, {2, 3}), tgt = Tensor::from_ids({1, 7, 8, 1, 9, 0}, {2, 3});
  const nn::ForwardContext eval{false, nullptr};
  ag::NoGradGuard no_grad;
  EXPECT_EQ(model->forward(src, tgt, eval).value().to_vector(),
            loaded.model->forward(src, tgt, eval).value().to_vector());
}

TEST_F(CheckpointTest, ExportStoresBf16WeightsThatLoadAsRoundedF32) {
  auto model = make_model(5);
  const std::string tokenizer = "spm";
  save_checkpoint(run(), Checkpoint{*model, 12, json{{"preset", "tiny"}}, tokenizer});
  const std::string out = (dir_ / "exported").string();
  export_model(run(), out, DType::BF16);

  const io::SafetensorsFile file = io::SafetensorsFile::open(out + "/model.safetensors");
  for (const std::string& name : file.names()) EXPECT_EQ(file.info(name).dtype, "BF16") << name;
  const LoadedModel loaded = load_model(out);
  EXPECT_EQ(loaded.step, 12);
  EXPECT_EQ(loaded.tokenizer, tokenizer);
  EXPECT_EQ(loaded.train_config, (json{{"preset", "tiny"}}));
  const auto original = model->named_parameters(), rounded = loaded.model->named_parameters();
  ASSERT_EQ(original.size(), rounded.size());
  for (size_t i = 0; i < original.size(); ++i)
    EXPECT_EQ(rounded[i].second.value().to_vector(), original[i].second.value().to(DType::BF16).to(DType::F32).to_vector())
        << original[i].first;

  // Exporting again replaces the checkpoint; a directory holding anything else is never replaced.
  export_model(run(), out, DType::F32);
  EXPECT_EQ(io::SafetensorsFile::open(out + "/model.safetensors").info(original[0].first).dtype, "F32");
  fs::create_directories(dir_ / "precious");
  write_bytes(dir_ / "precious" / "notes.txt", "keep me");
  EXPECT_TRUE(has(error_of([&] { export_model(run(), (dir_ / "precious").string(), DType::BF16); }), "refusing"));
  EXPECT_EQ(read_bytes(dir_ / "precious" / "notes.txt"), "keep me");
}

TEST_F(CheckpointTest, ExportCanAverageTheLastCheckpointsOfARun) {
  for (int64_t step : {10, 20, 30}) save_step(step);
  const std::string averaged = (dir_ / "averaged").string(), exported = (dir_ / "exported").string();
  average_last_checkpoints(run(), 2, averaged);
  export_model(run(), exported, DType::F32, 2);
  const auto a = load_model(averaged).model->named_parameters(), b = load_model(exported).model->named_parameters();
  expect_same_values(a, b);
  EXPECT_EQ(names_in(dir_), (std::vector<std::string>{"averaged", "exported", "run"}));  // no temporary left
  EXPECT_TRUE(has(error_of([&] { export_model(run(), (dir_ / "x").string(), DType::F32, 4); }), "3 checkpoint(s), 4"));
  EXPECT_FALSE(fs::exists(dir_ / "x"));
}

TEST_F(CheckpointTest, StoresEachParameterOnceUnderItsNameWithTheArchitecture) {
  auto model = make_model(4);
  const std::string dir = save_checkpoint(run(), Checkpoint{.model = *model, .step = 1});
  const auto file = io::SafetensorsFile::open(dir + "/model.safetensors");
  // Names of tied parameters (one Var registered under several names) collapse to the first.
  std::vector<std::string> first_names;
  std::set<const ag::VarImpl*> seen;
  for (const auto& [name, v] : model->named_parameters())
    if (seen.insert(v.impl().get()).second) first_names.push_back(name);
  std::sort(first_names.begin(), first_names.end());
  EXPECT_EQ(file.names(), first_names);
  EXPECT_EQ(file.metadata().at("tcat.format"), "1");
  EXPECT_EQ(file.metadata().at("tcat.step"), "1");
  EXPECT_EQ(json::parse(file.metadata().at("tcat.arch")), tiny_arch().to_json());
}

TEST_F(CheckpointTest, InterruptedSavesAreIgnoredThenCleanedUp) {
  const std::string first = save_step(1);
  // A save killed half-way: a temp directory with a partial file, and a half-written pointer.
  fs::create_directories(ckdir() / "step-2.tmp-999999");
  write_bytes(ckdir() / "step-2.tmp-999999" / "model.safetensors", "\x10\x00\x00");
  write_bytes(ckdir() / "latest.tmp-999999", "step-");
  EXPECT_EQ(latest_checkpoint(run()), first);
  EXPECT_EQ(list_checkpoints(run()), std::vector<std::string>{first});
  EXPECT_NO_THROW(load_model(*latest_checkpoint(run())));

  const std::string second = save_step(2);
  EXPECT_EQ(latest_checkpoint(run()), second);
  EXPECT_EQ(names_in(ckdir()), (std::vector<std::string>{"latest", "step-1", "step-2"}));
}

TEST_F(CheckpointTest, ResavingAnExistingStepReplacesItWhole) {
  // A kill after the directory was renamed but before `latest` moved leaves a complete orphan
  // step-2; training resumes from step-1 and reaches step 2 again.
  save_step(1);
  auto orphan = make_model(50);
  write_checkpoint((ckdir() / "step-2").string(), Checkpoint{*orphan, 2, json{{"orphan", true}}, "old tokenizer"});
  EXPECT_EQ(fs::path(*latest_checkpoint(run())).filename(), "step-1");

  auto model = make_model(51);
  save_checkpoint(run(), Checkpoint{.model = *model, .step = 2});
  const LoadedModel loaded = load_model(*latest_checkpoint(run()));
  expect_same_values(model->named_parameters(), loaded.model->named_parameters());
  EXPECT_TRUE(loaded.train_config.is_null());
  EXPECT_FALSE(loaded.tokenizer.has_value());
  EXPECT_EQ(names_in(ckdir()), (std::vector<std::string>{"latest", "step-1", "step-2"}));
}

TEST_F(CheckpointTest, KeepsTheLastKPlusBest) {
  for (int64_t step = 1; step <= 5; ++step) save_step(step, {2, step == 2});
  EXPECT_EQ(names_in(ckdir()), (std::vector<std::string>{"best", "latest", "step-2", "step-4", "step-5"}));
  EXPECT_EQ(fs::path(*best_checkpoint(run())).filename(), "step-2");
  EXPECT_EQ(fs::path(*latest_checkpoint(run())).filename(), "step-5");

  save_step(6, {1, true});
  EXPECT_EQ(names_in(ckdir()), (std::vector<std::string>{"best", "latest", "step-6"}));
  EXPECT_EQ(list_checkpoints(run()), std::vector<std::string>{(ckdir() / "step-6").string()});
}

TEST_F(CheckpointTest, AveragingIsTheElementWiseMean) {
  auto a = make_model(7), b = make_model(8);
  save_checkpoint(run(), Checkpoint{*a, 10, json{{"from", "a"}}, "tok"}, {0});
  save_checkpoint(run(), Checkpoint{*b, 20, json{{"from", "b"}}, "tok"}, {0});
  save_step(5, {0});  // the lowest step: not among the last two
  const std::string out = (dir_ / "averaged").string();
  average_last_checkpoints(run(), 2, out);

  const LoadedModel avg = load_model(out);
  EXPECT_EQ(avg.step, 20);
  EXPECT_EQ(avg.tokenizer, "tok");
  EXPECT_EQ(avg.train_config, (json{{"from", "a"}}));
  const auto pa = a->named_parameters(), pb = b->named_parameters(), pm = avg.model->named_parameters();
  for (size_t i = 0; i < pm.size(); ++i) {
    const auto va = pa[i].second.value().to_vector(), vb = pb[i].second.value().to_vector();
    const auto vm = pm[i].second.value().to_vector();
    for (size_t j = 0; j < vm.size(); ++j)
      ASSERT_EQ(vm[j], float((double(va[j]) + double(vb[j])) / 2.0)) << pm[i].first << "[" << j << "]";
  }
  const auto file = io::SafetensorsFile::open(out + "/model.safetensors");
  EXPECT_EQ(json::parse(file.metadata().at("tcat.averaged_from")),
            (json{(ckdir() / "step-10").string(), (ckdir() / "step-20").string()}));
  EXPECT_TRUE(has(error_of([&] { average_last_checkpoints(run(), 4, out); }), "has 3 checkpoint(s), 4 requested"));
}

TEST_F(CheckpointTest, AveragingRejectsDifferentArchitecturesAndTokenizers) {
  models::ArchConfig wide = tiny_arch();
  wide.d_ff = 48;
  auto a = make_model(1), b = make_model(2, wide), c = make_model(3);
  const std::string da = write_dir("a", *a, "tok"), db = write_dir("b", *b, "tok"), dc = write_dir("c", *c, "other");
  const std::string arch_error = error_of([&] { average_checkpoints({da, db}, (dir_ / "out").string()); });
  EXPECT_TRUE(has(arch_error, "d_ff is 32 in '" + da + "' but 48 in '" + db + "'")) << arch_error;
  EXPECT_TRUE(has(error_of([&] { average_checkpoints({da, dc}, (dir_ / "out").string()); }), "tokenizers differ"));
  EXPECT_FALSE(fs::exists(dir_ / "out"));
}

// ---- damaged and mismatched checkpoints ---------------------------------------------------------

// A checkpoint whose model.safetensors holds `tensors` and `metadata` (defaults: a valid one).
class DamagedCheckpointTest : public CheckpointTest {
 protected:
  void SetUp() override {
    CheckpointTest::SetUp();
    model_ = make_model(5);
    trainer_ = make_trainer(*model_);
    trainer_->step(batch(1));
    state_ =
        std::make_unique<TrainingState>(TrainingState{trainer_->optimizer(), {{"dropout", trainer_->rng().state()}}});
    ckpt_ = save_checkpoint(run(), Checkpoint{*model_, 1, nullptr, std::nullopt, state_.get()});
    model_file_ = ckpt_ + "/model.safetensors";
    state_file_ = ckpt_ + "/train_state.safetensors";
  }

  std::vector<std::pair<std::string, Tensor>> tensors() const {
    const auto file = io::SafetensorsFile::open(model_file_);
    std::vector<std::pair<std::string, Tensor>> out;
    for (const std::string& name : file.names()) out.emplace_back(name, file.get(name).clone());
    return out;
  }
  std::map<std::string, std::string> metadata() const { return io::SafetensorsFile::open(model_file_).metadata(); }
  void rewrite(const std::vector<std::pair<std::string, Tensor>>& t, const std::map<std::string, std::string>& m) {
    io::save_safetensors(model_file_, t, m);
  }
  std::string load_error() {
    return error_of([&] { load_model(ckpt_); });
  }

  std::unique_ptr<models::Transformer> model_;
  std::unique_ptr<Seq2SeqTrainer> trainer_;
  std::unique_ptr<TrainingState> state_;
  std::string ckpt_, model_file_, state_file_;
};

TEST_F(DamagedCheckpointTest, MissingOrTruncatedModelFile) {
  const std::string bytes = read_bytes(model_file_);
  write_bytes(model_file_, bytes.substr(0, bytes.size() - 10));
  EXPECT_TRUE(has(load_error(), model_file_)) << load_error();
  fs::remove(model_file_);
  const std::string missing = load_error();
  EXPECT_TRUE(has(missing, "missing '" + model_file_ + "'")) << missing;
  EXPECT_TRUE(has(error_of([&] { load_model((dir_ / "nowhere").string()); }), "nowhere' does not exist"));
}

TEST_F(DamagedCheckpointTest, BadMetadata) {
  auto meta = metadata();
  meta["tcat.arch"] = "{\"vocab\": 12,";
  rewrite(tensors(), meta);
  std::string e = load_error();
  EXPECT_TRUE(has(e, model_file_) && has(e, "\"tcat.arch\" is not valid JSON")) << e;

  meta = metadata();
  meta["tcat.arch"] = "{\"vocab\": 12, \"heads\": \"two\"}";
  rewrite(tensors(), meta);
  e = load_error();
  EXPECT_TRUE(has(e, model_file_) && has(e, "'heads' has the wrong type")) << e;

  meta = metadata();
  meta["tcat.format"] = "2";
  rewrite(tensors(), meta);
  e = load_error();
  EXPECT_TRUE(has(e, model_file_) && has(e, "format '2'")) << e;

  meta.erase("tcat.format");
  rewrite(tensors(), meta);
  e = load_error();
  EXPECT_TRUE(has(e, model_file_) && has(e, "not a tcat checkpoint file")) << e;
}

TEST_F(DamagedCheckpointTest, WrongShapeMissingAndUnexpectedTensors) {
  const auto meta = metadata();
  auto t = tensors();
  const std::string name = t[0].first;
  const Shape shape = t[0].second.shape();
  t[0].second = Tensor::zeros({shape[0] + 1, shape[1]});
  rewrite(t, meta);
  std::string e = load_error();
  EXPECT_TRUE(has(e, model_file_) && has(e, "tensor '" + name + "' has shape") &&
              has(e, "expected " + shape_str(shape)))
      << e;

  t = tensors();
  t.erase(t.begin());
  rewrite(t, meta);
  e = load_error();
  EXPECT_TRUE(has(e, model_file_) && has(e, "missing tensor '" + name + "'")) << e;

  t.emplace_back(name, Tensor::zeros(shape));
  t.emplace_back("encoder.extra.weight", Tensor::zeros({2}));
  rewrite(t, meta);
  e = load_error();
  EXPECT_TRUE(has(e, model_file_) && has(e, "unexpected tensor(s): encoder.extra.weight")) << e;
}

TEST_F(DamagedCheckpointTest, PointerNamingNothing) {
  write_bytes(ckdir() / "latest", "step-77\n");
  const std::string e = error_of([&] { latest_checkpoint(run()); });
  EXPECT_TRUE(has(e, (ckdir() / "latest").string()) && has(e, "step-77")) << e;
  write_bytes(ckdir() / "best", "../../etc\n");
  EXPECT_TRUE(has(error_of([&] { best_checkpoint(run()); }), "must name a checkpoint directory next to it"));
  EXPECT_TRUE(has(error_of([&] { resolve_checkpoint(run()); }), "step-77"));
  EXPECT_TRUE(has(error_of([&] { resolve_checkpoint(dir_.string()); }), "neither a checkpoint directory"));
}

TEST_F(DamagedCheckpointTest, FailedResumeChangesNothing) {
  auto model = make_model(6);
  auto trainer = make_trainer(*model);
  const auto params_before = model->named_parameters();
  std::vector<std::vector<float>> values_before;
  for (const auto& [name, v] : params_before) values_before.push_back(v.value().to_vector());
  const auto rng_before = trainer->rng().state();
  const std::string model_bytes = read_bytes(model_file_);

  auto expect_unchanged = [&] {
    const auto params = model->named_parameters();
    for (size_t i = 0; i < params.size(); ++i) EXPECT_EQ(params[i].second.value().to_vector(), values_before[i]);
    EXPECT_EQ(trainer->optimizer().steps(), 0);
    EXPECT_EQ(trainer->rng().state(), rng_before);
    EXPECT_EQ(read_bytes(model_file_), model_bytes);
  };
  const std::map<std::string, Rng*> rngs{{"dropout", &trainer->rng()}};

  const std::string state_bytes = read_bytes(state_file_);
  write_bytes(state_file_, state_bytes.substr(0, state_bytes.size() / 2));
  std::string e = error_of([&] { load_training_state(ckpt_, *model, trainer->optimizer(), rngs); });
  EXPECT_TRUE(has(e, state_file_)) << e;
  expect_unchanged();

  write_bytes(state_file_, state_bytes);
  Rng other;
  e = error_of([&] {
    load_training_state(ckpt_, *model, trainer->optimizer(), {{"dropout", &trainer->rng()}, {"data", &other}});
  });
  EXPECT_TRUE(has(e, state_file_) && has(e, "no state saved for RNG 'data'")) << e;
  expect_unchanged();

  fs::remove(state_file_);
  e = error_of([&] { load_training_state(ckpt_, *model, trainer->optimizer(), rngs); });
  EXPECT_TRUE(has(e, "holds no training state") && has(e, state_file_)) << e;
  expect_unchanged();
}

TEST_F(DamagedCheckpointTest, ResumingADifferentArchitectureNamesTheField) {
  models::ArchConfig other = tiny_arch();
  other.heads = 4;
  other.dropout = 0.2f;
  auto model = make_model(6, other);
  auto trainer = make_trainer(*model);
  const std::string e = error_of([&] { load_training_state(ckpt_, *model, trainer->optimizer(), {}); });
  EXPECT_TRUE(has(e, "heads is 2 in checkpoint '" + ckpt_ + "' but 4 in the model being resumed")) << e;
  EXPECT_TRUE(has(e, "dropout is")) << e;
  EXPECT_FALSE(has(e, "d_ff")) << e;
}

}  // namespace

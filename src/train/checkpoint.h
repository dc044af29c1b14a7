// Self-describing, crash-safe checkpoints (DESIGN.md §6, §7).
//
// A checkpoint is a directory:
//   model.safetensors        every parameter under its tcat name (a tied parameter once, under its first
//                            name); metadata "tcat.format" = "1", "tcat.arch" = ArchConfig JSON,
//                            "tcat.step", optionally "tcat.train_config" (the run's hyperparameters)
//   tokenizer.model          optional opaque bytes (e.g. a serialized SentencePiece model)
//   train_state.safetensors  optional: Adam moments "adam.m.<param>" / "adam.v.<param>"; metadata
//                            "tcat.format" and "tcat.train_state" = {"optimizer_step", "rngs": {name:
//                            [4 x u64]}, "progress": caller's JSON (data position, best metric, ...)}
// Inference needs only model.safetensors (+ tokenizer.model); resuming also needs train_state.
//
// A run keeps its checkpoints in <run_dir>/checkpoints/step-<N>/, with the text files `latest` and
// `best` naming one of them. Every directory is written under a ".tmp-<pid>" name, fsynced and renamed
// into place, and the pointers are replaced by rename, so a reader never sees a half-written checkpoint
// and a kill at any moment leaves the previous `latest` intact. One process writes a run at a time.
#pragma once
#include <array>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/rng.h"
#include "models/transformer.h"
#include "train/optim.h"

namespace tcat::train {

// What training needs besides the weights to continue exactly where it stopped.
struct TrainingState {
  const Adam& optimizer;                                // moments of its parameters and its step
  std::map<std::string, std::array<uint64_t, 4>> rngs;  // named Rng::state()s, e.g. {"dropout", ...}
  nlohmann::json progress = nlohmann::json::object();   // the caller's: epoch, batch, best metric, patience
};

struct Checkpoint {
  const models::Transformer& model;
  int64_t step = 0;                         // the caller's step count; names the directory in save
  nlohmann::json train_config = nullptr;    // the run's hyperparameters; null: none stored
  std::optional<std::string> tokenizer = std::nullopt;  // stored as tokenizer.model
  const TrainingState* training = nullptr;  // null: an inference-only checkpoint
  DType weights_dtype = DType::F32;         // storage of model.safetensors (F32, BF16 or F16); loading widens to F32
};

// Writes `c` as the checkpoint directory `dir`, atomically: via `dir`.tmp-<pid>, replacing an
// existing `dir` in one step (renameat2 RENAME_EXCHANGE).
void write_checkpoint(const std::string& dir, const Checkpoint& c);

struct SaveOptions {
  int64_t keep_last = 5;  // step directories kept, by highest step (0: all); latest and best always stay
  bool is_best = false;   // also point `best` at this checkpoint
};

// Writes <run_dir>/checkpoints/step-<c.step>, points `latest` (and `best` if opt.is_best) at it, then
// deletes leftovers of interrupted saves and checkpoints beyond opt.keep_last. Returns its path.
std::string save_checkpoint(const std::string& run_dir, const Checkpoint& c, const SaveOptions& opt = {});

// The run's step directories, ascending by step.
std::vector<std::string> list_checkpoints(const std::string& run_dir);
// The checkpoint `latest` / `best` names; nullopt when the pointer does not exist (a fresh run). A
// pointer naming something that is not a checkpoint is an error.
std::optional<std::string> latest_checkpoint(const std::string& run_dir);
std::optional<std::string> best_checkpoint(const std::string& run_dir);
// A checkpoint directory as given, or a run directory's latest checkpoint.
std::string resolve_checkpoint(const std::string& path);
// For inference: a checkpoint directory as given, a run directory's final model/ (the averaged
// model written when training ends) if it has one, else its latest checkpoint.
std::string resolve_model(const std::string& path);

struct LoadedModel {
  models::ArchConfig config;
  std::unique_ptr<models::Transformer> model;  // built from config, weights loaded
  int64_t step = 0;
  nlohmann::json train_config;  // null when none was stored
  std::optional<std::string> tokenizer;
};

// Everything inference needs. The file must hold exactly the model's parameters with their shapes.
LoadedModel load_model(const std::string& dir);

// Writes the model at `from` (see resolve_model) as an inference-only checkpoint `to` with its
// weights stored as `dtype`. `to` must not exist, be empty, or be a checkpoint (it is replaced).
// average_last > 0: `from` is a run directory and the model is the mean of its last checkpoints.
void export_model(const std::string& from, const std::string& to, DType dtype, int64_t average_last = 0);

struct ResumeInfo {
  int64_t step = 0;
  nlohmann::json progress;
  nlohmann::json train_config;
};

// Restores parameters, Adam moments and step, and the named RNGs (exactly the names that were saved)
// from the checkpoint `dir`, whose architecture must equal model.config(). Everything is validated
// before anything is modified, so a failed load leaves model, optimizer and RNGs as they were.
ResumeInfo load_training_state(const std::string& dir, models::Transformer& model, Adam& optimizer,
                               const std::map<std::string, Rng*>& rngs);

// Writes the element-wise mean of the checkpoints' parameters as an inference checkpoint `out_dir`
// (architectures and tokenizers must match; train config and tokenizer come from the first, the step
// from the last; metadata "tcat.averaged_from" lists the sources).
void average_checkpoints(const std::vector<std::string>& dirs, const std::string& out_dir);
// The same over the run's k highest-step checkpoints (an error if it has fewer).
void average_last_checkpoints(const std::string& run_dir, int64_t k, const std::string& out_dir);

}  // namespace tcat::train

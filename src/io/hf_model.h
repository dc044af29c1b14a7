// Hugging Face checkpoints: a folder with config.json and model.safetensors (or a sharded
// model.safetensors.index.json) loaded into the one builder through the family's tensor map, and
// saved back the same way.
#pragma once
#include <memory>
#include <string>

#include "io/hf_config.h"
#include "models/transformer.h"

namespace tcat::io {

struct HfModel {
  HfModelConfig config;
  std::unique_ptr<models::Transformer> model;
};

// Weights are memory-mapped: float32 tensors stored in tcat's layout are read-only views of the
// file (clone the parameters before training them); F16/BF16 and re-laid-out tensors (GPT-2's
// transposed Conv1D, separately stored Q/K/V) are copies, after which their file pages are released.
// The model is built without initialising parameters, so resident memory stays near the file size.
// A missing tensor is named with its expected shape; a wrong shape names both shapes.
HfModel load_hf_model(const std::string& dir);

// A model from a Hugging Face folder (config.json), a llama2.c .bin file, or a folder holding one
// llama2.c .bin file.
HfModel load_pretrained(const std::string& path);

// Writes config.json and model.safetensors (float32, HF tensor names; tied tensors stored once)
// into `dir`, created if needed. The ArchConfig must be one the family can express.
void save_hf_model(const models::Transformer& model, const HfModelConfig& config, const std::string& dir);

}  // namespace tcat::io

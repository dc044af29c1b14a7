#include "train/translation.h"

#include <fmt/ranges.h>

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <sstream>

#include "autograd/ops.h"
#include "data/batching.h"
#include "data/parallel.h"
#include "eval/bleu.h"
#include "generate/greedy.h"
#include "io/atomic_file.h"
#include "tokenizer/sentencepiece.h"
#include "train/checkpoint.h"
#include "train/metrics.h"
#include "train/progress.h"
#include "train/seq2seq_trainer.h"

namespace fs = std::filesystem;

namespace tcat::train {

// ------------------------------------------------------------------ configuration

nlohmann::json TranslationTrainConfig::to_json() const {
  return {{"train_src", train_src},
          {"train_tgt", train_tgt},
          {"valid_src", valid_src},
          {"valid_tgt", valid_tgt},
          {"tokenizer", tokenizer},
          {"vocab_size", vocab_size},
          {"tokenizer_type", tokenizer_type},
          {"arch", arch.to_json()},
          {"max_tokens", max_tokens},
          {"accumulate", accumulate},
          {"max_len", max_len},
          {"lr_factor", lr_factor},
          {"warmup", warmup},
          {"label_smoothing", label_smoothing},
          {"clip_norm", clip_norm},
          {"bf16", bf16},
          {"seed", seed},
          {"max_steps", max_steps},
          {"max_epochs", max_epochs},
          {"log_every", log_every},
          {"valid_every", valid_every},
          {"keep_checkpoints", keep_checkpoints},
          {"average_last", average_last},
          {"patience", patience},
          {"valid_max_sentences", valid_max_sentences}};
}

TranslationTrainConfig TranslationTrainConfig::from_json(const nlohmann::json& j) {
  if (!j.is_object()) throw UsageError("training config: expected a JSON object");
  TranslationTrainConfig c;
  const nlohmann::json defaults = c.to_json();
  for (auto it = j.begin(); it != j.end(); ++it)
    if (!defaults.contains(it.key())) throw UsageError(fmt::format("training config: unknown key '{}'", it.key()));
  try {
    auto get = [&](const char* key, auto& field) {
      if (j.contains(key)) j.at(key).get_to(field);
    };
    get("train_src", c.train_src);
    get("train_tgt", c.train_tgt);
    get("valid_src", c.valid_src);
    get("valid_tgt", c.valid_tgt);
    get("tokenizer", c.tokenizer);
    get("vocab_size", c.vocab_size);
    get("tokenizer_type", c.tokenizer_type);
    if (j.contains("arch")) c.arch = models::ArchConfig::from_json(j.at("arch"));
    get("max_tokens", c.max_tokens);
    get("accumulate", c.accumulate);
    get("max_len", c.max_len);
    get("lr_factor", c.lr_factor);
    get("warmup", c.warmup);
    get("label_smoothing", c.label_smoothing);
    get("clip_norm", c.clip_norm);
    get("bf16", c.bf16);
    get("seed", c.seed);
    get("max_steps", c.max_steps);
    get("max_epochs", c.max_epochs);
    get("log_every", c.log_every);
    get("valid_every", c.valid_every);
    get("keep_checkpoints", c.keep_checkpoints);
    get("average_last", c.average_last);
    get("patience", c.patience);
    get("valid_max_sentences", c.valid_max_sentences);
  } catch (const nlohmann::json::exception& e) {
    throw UsageError(fmt::format("training config: {}", e.what()));
  }
  c.validate();
  return c;
}

void TranslationTrainConfig::validate() const {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw UsageError("training config: " + what);
  };
  need(!train_src.empty() && !train_tgt.empty(), "training data needs both --src and --tgt files");
  need(valid_src.empty() == valid_tgt.empty(), "validation data needs both a source and a target file");
  need(vocab_size >= 16, fmt::format("vocab_size {} is too small", vocab_size));
  need(max_tokens > max_len, fmt::format("max_tokens ({}) must exceed max_len ({})", max_tokens, max_len));
  need(max_len >= 1 && max_len + 2 <= arch.max_positions,
       fmt::format("max_len {} must be in [1, max_positions - 2 = {}]", max_len, arch.max_positions - 2));
  need(accumulate >= 1, "accumulate must be at least 1");
  need(warmup >= 1 && lr_factor > 0, "warmup and lr_factor must be positive");
  need(label_smoothing >= 0 && label_smoothing < 1, "label_smoothing must be in [0, 1)");
  need(max_steps > 0 || max_epochs > 0, "set max_steps or max_epochs");
  need(max_steps >= 0 && max_epochs >= 0, "max_steps and max_epochs must not be negative");
  need(log_every >= 1 && valid_every >= 1, "log_every and valid_every must be positive");
  need(keep_checkpoints >= 1 && average_last >= 1 && average_last <= keep_checkpoints,
       "need 1 <= average_last <= keep_checkpoints");
  need(patience >= 0 && valid_max_sentences >= 0, "patience and valid_max_sentences must not be negative");
  tokenizer::sentencepiece_model_type_from_name(tokenizer_type);
  arch.validate();
  need(arch.layout == models::Layout::EncoderDecoder, "translation needs an encoder-decoder architecture");
}

TranslationTrainConfig translation_preset(const std::string& name, const std::string& data_dir) {
  TranslationTrainConfig c;
  c.train_src = data_dir + "/train.en";
  c.train_tgt = data_dir + "/train.de";
  c.valid_src = data_dir + "/val.en";
  c.valid_tgt = data_dir + "/val.de";
  // Both presets use a small post-norm Transformer (d 128, 4 heads, d_ff 256, 4+4 layers, shared
  // embeddings): on 29k sentence pairs small models beat Transformer-base, which overfits (text-only
  // Multi30k baselines of Wu et al. 2021 use this shape), and on 2 CPU cores it trains ~8x faster.
  c.arch = models::preset("transformer-tiny", c.vocab_size);
  c.arch.d_model = 128;
  c.arch.heads = 4;
  c.arch.d_ff = 256;
  c.arch.enc_layers = c.arch.dec_layers = 4;
  c.max_tokens = 4096;
  if (name == "multi30k-tiny") {
    // About 10 epochs: 12 min 51 s on 2 idle cores of an AVX2 Zen 3 (test_2016 BLEU 32.8); this shared
    // machine's speed drifts by up to 25%, so the step budget leaves that much room below 15 minutes.
    c.vocab_size = 5000;
    c.arch.dropout = 0.1f;
    c.warmup = 600;
    c.lr_factor = 1.6f;  // peak lr 0.0058
    c.max_steps = 1200;
    c.valid_every = 300;
    c.average_last = 2;
    c.keep_checkpoints = 3;
  } else if (name == "multi30k-base") {
    // Trained to convergence with heavy dropout, early stopping and averaging of the last 10 checkpoints.
    c.vocab_size = 8000;
    c.arch.dropout = 0.3f;
    c.warmup = 2000;
    c.lr_factor = 2.5f;  // peak lr 0.0049
    c.max_steps = 12000;
    c.valid_every = 250;
    c.patience = 10;
    c.keep_checkpoints = 10;
    c.average_last = 10;
  } else {
    throw UsageError(fmt::format("unknown training preset '{}' (known: {})", name,
                                 fmt::join(translation_preset_names(), ", ")));
  }
  c.arch.max_positions = 256;
  return c;
}

std::vector<std::string> translation_preset_names() { return {"multi30k-tiny", "multi30k-base"}; }

// ------------------------------------------------------------------ helpers

namespace {

std::vector<std::vector<int64_t>> encode_all(const tokenizer::Tokenizer& tok, const std::vector<std::string>& lines) {
  std::vector<std::vector<int64_t>> out(lines.size());
#pragma omp parallel for schedule(dynamic, 64)
  for (size_t i = 0; i < lines.size(); ++i) out[i] = tok.encode(lines[i]);
  return out;
}

std::string read_text(const std::string& path) {
  std::ifstream in(path);
  TCAT_CHECK(in.good(), "cannot read '{}'", path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

struct ValidationSet {
  std::vector<std::string> src_text, tgt_text;
  std::vector<std::vector<int64_t>> src, tgt;
};

struct ValidationResult {
  double loss = 0;  // per target token, without label smoothing
  double bleu = 0;
};

// Token-weighted mean cross-entropy over the whole set, and corpus BLEU of greedy translations.
ValidationResult validate(const models::Transformer& model, const tokenizer::Tokenizer& tok, const ValidationSet& v,
                          int64_t max_tokens, int64_t max_len) {
  ag::NoGradGuard no_grad;
  const nn::ForwardContext eval{false, nullptr};
  const auto& cfg = model.config();
  ValidationResult r;
  data::BatchingOptions bo;
  bo.max_tokens = max_tokens;
  bo.max_len = max_len;
  bo.overlong = data::OverlongPolicy::Truncate;
  data::BatchStream stream(v.src, v.tgt, bo);
  double loss_sum = 0;
  int64_t tokens = 0;
  for (size_t b = 0; b < stream.epoch_batches().size(); ++b) {
    const data::Seq2SeqBatch batch = stream.next();
    const ag::Var logits = model.forward(batch.src, batch.tgt_in, eval);
    const float loss = ag::cross_entropy(ag::reshape(logits, {-1, cfg.vocab}), batch.tgt_out.reshape({-1}), 0.0f,
                                         cfg.pad_id).value().item();
    const int64_t n = batch.target_tokens();
    loss_sum += double(loss) * double(n);
    tokens += n;
  }
  r.loss = tokens ? loss_sum / double(tokens) : 0.0;

  // Greedy translations, batched by similar source length.
  std::vector<size_t> order(v.src.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return v.src[a].size() < v.src[b].size(); });
  std::vector<std::string> hyps(v.src.size());
  const size_t batch_size = 64;
  for (size_t start = 0; start < order.size(); start += batch_size) {
    const size_t end = std::min(order.size(), start + batch_size);
    std::vector<std::vector<int64_t>> sources;
    size_t longest = 1;
    for (size_t i = start; i < end; ++i) {
      auto s = v.src[order[i]];
      if (int64_t(s.size()) > max_len) s.resize(size_t(max_len));
      longest = std::max(longest, s.size());
      sources.push_back(std::move(s));
    }
    const data::Seq2SeqBatch batch = data::make_batch(sources, sources);
    generate::GreedyOptions go{data::kBosId, data::kEosId,
                               std::min<int64_t>(int64_t(longest) + 50, cfg.max_positions - 1)};
    const auto out = generate::greedy_decode(model, batch.src, go);
    for (size_t i = start; i < end; ++i) hyps[order[i]] = tok.decode(out[i - start]);
  }
  r.bleu = eval::corpus_bleu(hyps, {v.tgt_text}).score;
  return r;
}

// Applies a resumed run's changes to its stored configuration; returns them as "name old -> new".
std::vector<std::string> apply_resume_changes(TranslationTrainConfig& cfg, const ResumeChanges& changes) {
  std::vector<std::string> applied;
  auto change = [&](const char* name, int64_t& field, const std::optional<int64_t>& value) {
    if (!value || *value == field) return;
    applied.push_back(fmt::format("{} {} -> {}", name, field, *value));
    field = *value;
  };
  change("max_steps", cfg.max_steps, changes.max_steps);
  change("max_epochs", cfg.max_epochs, changes.max_epochs);
  change("patience", cfg.patience, changes.patience);
  change("keep_checkpoints", cfg.keep_checkpoints, changes.keep_checkpoints);
  change("average_last", cfg.average_last, changes.average_last);
  return applied;
}

}  // namespace

// ------------------------------------------------------------------ the run

TranslationRunResult train_translation(const std::string& run_dir, const TranslationTrainConfig& config_in,
                                       const TranslationRunOptions& options) {
  const std::string config_path = run_dir + "/config.json";
  TranslationTrainConfig cfg = config_in;
  std::vector<std::string> resume_changes;
  if (options.resume) {
    TCAT_CHECK(fs::exists(config_path), "cannot resume: '{}' has no config.json (is it a tcat run directory?)",
               run_dir);
    const auto j = nlohmann::json::parse(read_text(config_path), nullptr, false);
    TCAT_CHECK(!j.is_discarded(), "cannot resume: '{}' is not valid JSON", config_path);
    cfg = TranslationTrainConfig::from_json(j);
    resume_changes = apply_resume_changes(cfg, options.changes);
    if (!resume_changes.empty()) {
      cfg.validate();  // before the stored file changes: a refused change leaves it as it was
      io::write_file_atomic(config_path, cfg.to_json().dump(2) + "\n");
    }
  } else {
    cfg.validate();
    if (latest_checkpoint(run_dir))
      throw UsageError(fmt::format("'{}' already holds a training run; continue it with --resume or choose another "
                                   "output directory",
                                   run_dir));
  }
  ProgressReporter progress(options.progress, options.interactive, cfg.log_every);

  // Data, all read before the run directory is made: a wrong path leaves nothing behind.
  data::ParallelCorpus train_corpus = data::read_parallel_corpus(cfg.train_src, cfg.train_tgt);
  std::optional<data::ParallelCorpus> valid_corpus;
  if (!cfg.valid_src.empty()) valid_corpus = data::read_parallel_corpus(cfg.valid_src, cfg.valid_tgt);
  progress.message(fmt::format("train: {} pairs read, {} kept ({} with an empty side, {} not UTF-8)",
                               train_corpus.stats.read, train_corpus.stats.kept, train_corpus.stats.skipped_empty,
                               train_corpus.stats.skipped_invalid_utf8));
  TCAT_CHECK(train_corpus.stats.kept > 0, "no usable training pairs in '{}' / '{}'", cfg.train_src, cfg.train_tgt);
  fs::create_directories(run_dir);

  // Tokenizer: the run's own copy wins, so a resumed run encodes exactly as before.
  const std::string tok_path = run_dir + "/tokenizer.model";
  std::optional<tokenizer::SentencePieceTokenizer> tok;
  if (fs::exists(tok_path)) {
    tok = tokenizer::SentencePieceTokenizer::load(tok_path);
  } else if (!cfg.tokenizer.empty()) {
    tok = tokenizer::SentencePieceTokenizer::load(cfg.tokenizer);
    tok->save(tok_path);
  } else {
    progress.message(fmt::format("training a joint {} SentencePiece model with {} pieces", cfg.tokenizer_type,
                                 cfg.vocab_size));
    tokenizer::SentencePieceTrainOptions so;
    so.inputs = {cfg.train_src, cfg.train_tgt};
    so.model_type = tokenizer::sentencepiece_model_type_from_name(cfg.tokenizer_type);
    so.vocab_size = cfg.vocab_size;
    so.seed = cfg.seed;
    tok = tokenizer::train_sentencepiece(so);
    tok->save(tok_path);
  }
  TCAT_CHECK(tok->pad_id() == data::kPadId && tok->bos_id() == data::kBosId && tok->eos_id() == data::kEosId,
             "tokenizer '{}' has pad/bos/eos ids {}/{}/{}, tcat needs {}/{}/{}", tok_path, tok->pad_id(),
             tok->bos_id(), tok->eos_id(), data::kPadId, data::kBosId, data::kEosId);

  data::BatchingOptions bo;
  bo.max_tokens = cfg.max_tokens;
  bo.max_len = cfg.max_len;
  bo.seed = cfg.seed;
  data::BatchStream stream(encode_all(*tok, train_corpus.src), encode_all(*tok, train_corpus.tgt), bo);
  const auto& bs = stream.stats();
  progress.message(fmt::format("batching: {} pairs in {} batches per epoch; {} longer than {} tokens skipped",
                               bs.kept, stream.epoch_batches().size(), bs.skipped_overlong, cfg.max_len));

  ValidationSet valid;
  if (valid_corpus) {
    data::ParallelCorpus& vc = *valid_corpus;
    if (cfg.valid_max_sentences > 0 && int64_t(vc.src.size()) > cfg.valid_max_sentences) {
      vc.src.resize(size_t(cfg.valid_max_sentences));
      vc.tgt.resize(size_t(cfg.valid_max_sentences));
    }
    valid.src = encode_all(*tok, vc.src);
    valid.tgt = encode_all(*tok, vc.tgt);
    valid.src_text = std::move(vc.src);
    valid.tgt_text = std::move(vc.tgt);
  }

  // Model and optimizer.
  models::ArchConfig arch = cfg.arch;
  arch.vocab = tok->vocab_size();
  arch.pad_id = tok->pad_id();
  Rng init_rng(cfg.seed);
  models::Transformer model(arch, init_rng);
  Seq2SeqTrainOptions topt;
  topt.label_smoothing = cfg.label_smoothing;
  topt.clip_norm = cfg.clip_norm;
  topt.bf16 = cfg.bf16;
  topt.seed = cfg.seed + 1;
  Seq2SeqTrainer trainer(model, std::make_unique<NoamSchedule>(arch.d_model, cfg.warmup, cfg.lr_factor), topt);

  int64_t step = 0, bad_validations = 0;
  double best_bleu = -1;
  if (options.resume) {
    const auto latest = latest_checkpoint(run_dir);
    TCAT_CHECK(latest.has_value(), "cannot resume '{}': it has no checkpoint yet", run_dir);
    const ResumeInfo info = load_training_state(*latest, model, trainer.optimizer(), {{"dropout", &trainer.rng()}});
    step = info.step;
    const auto& p = info.progress;
    TCAT_CHECK(p.value("batch_fingerprint", uint64_t(0)) == stream.fingerprint(),
               "cannot resume '{}': the training data or batching differ from the checkpoint's", run_dir);
    stream.seek({p.at("epoch").get<int64_t>(), p.at("batch").get<int64_t>()});
    best_bleu = p.value("best_bleu", -1.0);
    bad_validations = p.value("bad_validations", int64_t(0));
    progress.message(fmt::format("resumed from {} (step {}, epoch {})", *latest, step, stream.position().epoch));
    if (!resume_changes.empty())
      progress.message(fmt::format("changed for the rest of the run: {}", fmt::join(resume_changes, ", ")));
  } else {
    io::write_file_atomic(config_path, cfg.to_json().dump(2) + "\n");
    fs::remove(run_dir + "/metrics.jsonl");
  }
  MetricsLog log(run_dir + "/metrics.jsonl", options.resume ? step : -1);
  progress.message(fmt::format("model: {} parameters, vocabulary {}", model.parameter_count(), arch.vocab));

  auto save = [&](bool is_best) {
    TrainingState state{trainer.optimizer(),
                        {{"dropout", trainer.rng().state()}},
                        {{"epoch", stream.position().epoch},
                         {"batch", stream.position().batch},
                         {"batch_fingerprint", stream.fingerprint()},
                         {"best_bleu", best_bleu},
                         {"bad_validations", bad_validations}}};
    Checkpoint c{model, step, cfg.to_json(), tok->serialized(), &state};
    return save_checkpoint(run_dir, c, {cfg.keep_checkpoints, is_best});
  };
  // A run that early-stopped stays stopped when resumed, unless --patience was raised.
  bool early_stopped = cfg.patience > 0 && bad_validations >= cfg.patience;
  auto validate_and_save = [&] {
    nlohmann::json rec{{"step", step}, {"epoch", stream.position().epoch}};
    bool is_best = false;
    if (!valid.src.empty()) {
      const ValidationResult vr = validate(model, *tok, valid, cfg.max_tokens, cfg.max_len);
      is_best = vr.bleu > best_bleu;
      if (is_best) {
        best_bleu = vr.bleu;
        bad_validations = 0;
      } else {
        ++bad_validations;
      }
      rec["valid_loss"] = vr.loss;
      rec["valid_bleu"] = vr.bleu;
      progress.message(fmt::format("step {}: valid loss {:.4f}, BLEU {:.2f} (best {:.2f})", step, vr.loss, vr.bleu,
                                   best_bleu));
      early_stopped = cfg.patience > 0 && bad_validations >= cfg.patience;
    }
    save(is_best || valid.src.empty());
    log.append(rec);
    write_svg_plot(run_dir + "/plot.svg", "tcat train: " + fs::path(run_dir).filename().string(),
                   series_from_log(log.path()), "loss (per target token)", "BLEU");
  };

  const auto total_steps = cfg.max_steps;
  double tok_per_s = 0;
  float loss_avg = 0;
  int64_t loss_count = 0;
  while (!early_stopped) {
    if (cfg.max_steps > 0 && step >= cfg.max_steps) break;
    if (cfg.max_epochs > 0 && stream.position().epoch >= cfg.max_epochs) break;
    std::vector<data::Seq2SeqBatch> micro;
    for (int64_t a = 0; a < cfg.accumulate; ++a) micro.push_back(stream.next());
    const auto t0 = std::chrono::steady_clock::now();
    StepStats st;
    try {
      st = trainer.step(micro);
    } catch (const Error& e) {
      const auto last = latest_checkpoint(run_dir);
      fail("{}; the last good checkpoint is {}", e.what(), last ? *last : "none (no checkpoint was written yet)");
    }
    ++step;
    const double dt = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double rate = double(st.target_tokens) / std::max(dt, 1e-9);
    tok_per_s = tok_per_s == 0 ? rate : 0.9 * tok_per_s + 0.1 * rate;
    loss_avg += st.loss;
    ++loss_count;
    progress.update({step, total_steps, stream.position().epoch, st.loss, st.lr, tok_per_s});
    if (step % cfg.log_every == 0) {
      log.append({{"step", step},
                  {"epoch", stream.position().epoch},
                  {"train_loss", loss_avg / float(loss_count)},
                  {"lr", st.lr},
                  {"grad_norm", st.grad_norm},
                  {"target_tokens_per_s", tok_per_s}});
      loss_avg = 0;
      loss_count = 0;
    }
    if (step % cfg.valid_every == 0) validate_and_save();
  }
  if (step % cfg.valid_every != 0) validate_and_save();
  progress.finish();

  const std::string model_dir = run_dir + "/model";
  const int64_t k = std::min<int64_t>(cfg.average_last, int64_t(list_checkpoints(run_dir).size()));
  average_last_checkpoints(run_dir, k, model_dir);
  progress.message(fmt::format("wrote {} (average of the last {} checkpoints)", model_dir, k));
  return {step, best_bleu, model_dir, early_stopped};
}

}  // namespace tcat::train

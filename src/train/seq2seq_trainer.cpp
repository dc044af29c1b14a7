#include "train/seq2seq_trainer.h"

#include <cmath>

#include "autograd/ops.h"

namespace tcat::train {

Seq2SeqTrainer::Seq2SeqTrainer(models::Transformer& model, std::unique_ptr<LrSchedule> schedule,
                               Seq2SeqTrainOptions opt)
    : model_(model),
      schedule_(std::move(schedule)),
      opt_(opt),
      params_(model.parameters()),
      adam_(opt.adam.decoupled_weight_decay ? decay_groups(params_, opt.weight_decay)
                                            : std::vector<ParamGroup>{{params_, 0.0f}},
            opt.adam),
      rng_(opt.seed) {
  TCAT_CHECK(schedule_ != nullptr, "Seq2SeqTrainer needs a learning-rate schedule");
}

StepStats Seq2SeqTrainer::step(const std::vector<data::Seq2SeqBatch>& micro_batches) {
  StepStats stats;
  for (const auto& b : micro_batches) stats.target_tokens += b.target_tokens();
  TCAT_CHECK(stats.target_tokens > 0, "training step without target tokens");
  ag::MatmulPrecisionGuard precision(opt_.bf16 ? kernels::MatmulPrecision::BF16 : kernels::MatmulPrecision::F32);
  const nn::ForwardContext ctx{true, &rng_};
  const int64_t vocab = model_.config().vocab, pad = model_.config().pad_id;
  double loss_sum = 0;
  for (const auto& b : micro_batches) {
    const ag::Var logits = model_.forward(b.src, b.tgt_in, ctx);
    ag::Var loss = ag::cross_entropy(ag::reshape(logits, {-1, vocab}), b.tgt_out.reshape({-1}), opt_.label_smoothing, pad);
    // Each micro-batch's mean loss is weighted by its share of the step's target tokens.
    const float weight = float(b.target_tokens()) / float(stats.target_tokens);
    loss_sum += double(loss.value().item()) * weight;
    ag::scale(loss, weight).backward();
  }
  stats.loss = float(loss_sum);
  TCAT_CHECK(std::isfinite(stats.loss), "training loss became {} at step {}", stats.loss, adam_.steps() + 1);
  stats.grad_norm = clip_grad_norm(params_, opt_.clip_norm);
  stats.lr = schedule_->at(adam_.steps() + 1);
  adam_.step(stats.lr);
  adam_.zero_grad();
  return stats;
}

float Seq2SeqTrainer::evaluate(const data::Seq2SeqBatch& b) const {
  ag::NoGradGuard no_grad;
  const nn::ForwardContext eval{false, nullptr};
  const ag::Var logits = model_.forward(b.src, b.tgt_in, eval);
  return ag::cross_entropy(ag::reshape(logits, {-1, model_.config().vocab}), b.tgt_out.reshape({-1}),
                           opt_.label_smoothing, model_.config().pad_id)
      .value()
      .item();
}

}  // namespace tcat::train

// End to end: a tiny Transformer trained briefly on the copy task reproduces its sources with
// beam search (beam 4); the n-best list holds distinct hypotheses, best first.
#include <gtest/gtest.h>

#include "core/threading.h"
#include "data/synthetic.h"
#include "generate/beam_search.h"
#include "train/seq2seq_trainer.h"

using namespace tcat;

TEST(CopyBeam, TrainedModelCopiesWithBeamFour) {
  data::SyntheticOptions task;
  task.max_len = 7;
  models::ArchConfig arch = models::preset("transformer-tiny", task.vocab);
  arch.d_model = 32;
  arch.heads = 2;
  arch.d_ff = 128;
  arch.dropout = 0.0f;
  arch.pad_id = data::kPadId;
  Rng init_rng(1), data_rng(2), eval_rng(3);
  models::Transformer model(arch, init_rng);
  train::Seq2SeqTrainOptions topt;
  topt.label_smoothing = 0.0f;
  train::Seq2SeqTrainer trainer(model, std::make_unique<train::NoamSchedule>(arch.d_model, 100), topt);
  // One thread: matrices this small gain nothing from a second one, and the trained weights (so
  // the outcome) do not depend on the machine's thread count.
  const int threads = num_threads();
  set_num_threads(1);
  for (int step = 0; step < 800; ++step) trainer.step(data::synthetic_batch(task, 32, data_rng));
  set_num_threads(threads);

  std::vector<std::vector<int64_t>> sources;
  const data::Seq2SeqBatch batch = data::synthetic_batch(task, 32, eval_rng, &sources);
  generate::BeamSearchOptions opt;
  opt.beam_size = 4;
  opt.n_best = 2;
  opt.limits = {data::kBosId, data::kEosId, task.max_len + 2, 0};
  const auto beams = generate::beam_search(model, batch.src, opt);
  for (size_t i = 0; i < sources.size(); ++i) {
    ASSERT_EQ(beams[i].size(), 2u);
    EXPECT_EQ(beams[i][0].tokens, sources[i]) << "sentence " << i;
    EXPECT_GE(beams[i][0].score, beams[i][1].score);
    EXPECT_NE(beams[i][0].tokens, beams[i][1].tokens);
  }
}

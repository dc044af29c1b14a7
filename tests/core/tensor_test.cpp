#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>

#include "core/allocator.h"
#include "core/rng.h"
#include "core/tensor.h"

using namespace tcat;

TEST(Tensor, TransposeIsAViewAndContiguousCopies) {
  Tensor t = Tensor::from_vector({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor tt = t.transpose(0, 1);
  EXPECT_EQ(tt.shape(), (Shape{3, 2}));
  EXPECT_FALSE(tt.is_contiguous());
  EXPECT_EQ(tt.storage(), t.storage());
  EXPECT_EQ(tt.contiguous().to_vector(), (std::vector<float>{1, 4, 2, 5, 3, 6}));
}

TEST(Tensor, ReshapeViewsContiguousDataAndCopiesOtherwise) {
  Tensor t = Tensor::from_vector({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor r = t.reshape({3, -1});
  EXPECT_EQ(r.shape(), (Shape{3, 2}));
  EXPECT_EQ(r.storage(), t.storage());
  Tensor rt = t.transpose(0, 1).reshape({6});
  EXPECT_NE(rt.storage(), t.storage());
  EXPECT_EQ(rt.to_vector(), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_THROW(t.view({4, 2}), Error);
  EXPECT_THROW(t.reshape({-1, -1}), Error);
  EXPECT_THROW(t.transpose(0, 1).view({6}), Error);
}

TEST(Tensor, SliceSelectPermuteAndExpand) {
  Tensor t = Tensor::empty({2, 3, 4});
  for (int64_t i = 0; i < 24; ++i) t.data<float>()[i] = float(i);
  Tensor s = t.slice(2, 1, 3);
  EXPECT_EQ(s.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(s.at({1, 2, 0}), 1 * 12 + 2 * 4 + 1);
  EXPECT_EQ(t.select(1, 2).at({1, 3}), 12 + 8 + 3);
  Tensor p = t.permute({2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(p.at({3, 1, 2}), t.at({1, 2, 3}));
  Tensor row = Tensor::from_vector({7, 8, 9}, {3});
  Tensor e = row.expand({2, 3});
  EXPECT_EQ(e.strides(), (Shape{0, 1}));
  EXPECT_EQ(e.contiguous().to_vector(), (std::vector<float>{7, 8, 9, 7, 8, 9}));
  EXPECT_THROW(t.slice(0, 1, 3), Error);
  EXPECT_THROW(row.expand({2, 4}), Error);
  EXPECT_THROW(t.permute({0, 0, 1}), Error);
  EXPECT_EQ(t.unsqueeze(1).shape(), (Shape{2, 1, 3, 4}));
  EXPECT_EQ(t.unsqueeze(1).squeeze(1).shape(), t.shape());
}

TEST(Tensor, BroadcastShapesFollowsNumpyRules) {
  EXPECT_EQ(broadcast_shapes({2, 1, 4}, {3, 1}, "t"), (Shape{2, 3, 4}));
  try {
    broadcast_shapes({2, 3}, {4}, "myop");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("myop: shapes [2, 3] and [4]"), std::string::npos) << e.what();
  }
}

TEST(Dtype, Bf16RoundsToNearestEven) {
  EXPECT_EQ(float_to_bf16(1.0f).bits, 0x3f80);
  // 1 + 2^-8 is exactly half-way between bf16 neighbours 1 and 1 + 2^-7: ties go to even (1).
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 1.0f / 256)), 1.0f);
  EXPECT_EQ(bf16_to_float(float_to_bf16(1.0f + 3.0f / 256)), 1.0f + 4.0f / 256);
  EXPECT_TRUE(std::isnan(bf16_to_float(float_to_bf16(NAN))));
  EXPECT_TRUE(std::isinf(bf16_to_float(float_to_bf16(INFINITY))));
}

TEST(Dtype, Fp16RoundTripsRepresentableValuesAndRounds) {
  for (float v : {0.0f, -0.0f, 1.0f, -2.5f, 65504.0f, 6.103515625e-05f /*min normal*/, 5.960464477539063e-08f}) {
    EXPECT_EQ(fp16_to_float(float_to_fp16(v)), v) << v;
  }
  EXPECT_TRUE(std::isinf(fp16_to_float(float_to_fp16(70000.0f))));
  EXPECT_TRUE(std::isnan(fp16_to_float(float_to_fp16(NAN))));
  EXPECT_EQ(float_to_fp16(1.0f + 1.0f / 2048).bits, 0x3c00);  // tie to even
  EXPECT_EQ(float_to_fp16(1.0f + 3.0f / 2048).bits, 0x3c02);
}

TEST(Tensor, ConvertsBetweenDtypes) {
  Tensor f = Tensor::from_vector({1.5f, -2.0f, 3.25f}, {3});
  EXPECT_EQ(f.to(DType::BF16).to(DType::F32).to_vector(), f.to_vector());
  EXPECT_EQ(f.to(DType::F16).to(DType::F32).to_vector(), f.to_vector());
  EXPECT_EQ(f.to(DType::I32).to_ids(), (std::vector<int64_t>{1, -2, 3}));
  EXPECT_THROW(f.data<int64_t>(), Error);
}

TEST(Allocator, ReusesFreedActivationMemory) {
  { Tensor warm = Tensor::empty({1000, 37}); }
  const auto before = allocator_stats();
  for (int step = 0; step < 10; ++step) {
    Tensor a = Tensor::empty({1000, 37});
    Tensor b = Tensor::empty({1000, 37});
  }
  const auto after = allocator_stats();
  EXPECT_LE(after.system_allocs - before.system_allocs, 1u);  // one extra block for the second live tensor
  EXPECT_GE(after.reuses - before.reuses, 19u);
}

TEST(Storage, MapsFilesReadOnly) {
  const std::string path = ::testing::TempDir() + "/tcat_map_test.bin";
  {
    std::ofstream out(path, std::ios::binary);
    const float v[3] = {1, 2, 3};
    out.write(reinterpret_cast<const char*>(v), sizeof v);
  }
  auto st = Storage::map_file(path);
  EXPECT_TRUE(st->mapped());
  Tensor t = Tensor::from_storage(st, 4, {2}, DType::F32);
  EXPECT_EQ(t.to_vector(), (std::vector<float>{2, 3}));
  EXPECT_THROW(Tensor::from_storage(st, 8, {2}, DType::F32), Error);
  EXPECT_THROW(Storage::map_file(path + ".missing"), Error);
  std::remove(path.c_str());
}

TEST(Rng, IsDeterministicAndRestorable) {
  Rng a(42), b(42);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(a.next_u64(), b.next_u64());
  const auto saved = a.state();
  const float x = a.uniform();
  a.set_state(saved);
  EXPECT_EQ(a.uniform(), x);
  double sum = 0, sq = 0;
  for (int i = 0; i < 20000; ++i) {
    const double n = a.normal();
    sum += n;
    sq += n * n;
  }
  EXPECT_NEAR(sum / 20000, 0.0, 0.03);
  EXPECT_NEAR(sq / 20000, 1.0, 0.05);
  for (int i = 0; i < 1000; ++i) EXPECT_LT(a.below(7), 7u);
}

// BufferCache (engine/buffer_cache.h): large tensor buffers recycled across
// runs instead of fresh, page-faulting, zero-filled allocations — and the
// kernels that now skip the zero-fill (Tensor::Uninitialized) must write
// every element they hand on.
#include "engine/buffer_cache.h"

#include <cmath>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "tests/engine/onnx_builder.h"

namespace qs {
namespace {

using test::CompileBuilt;
using test::OnnxBuilder;
using test::RandomTensor;

constexpr size_t kLarge = BufferCache::kMinCachedBytes;

TEST(BufferCacheTest, SmallBuffersBypassTheCache) {
  BufferCache cache;
  { auto p = cache.Allocate(kLarge - 1); }
  const BufferCache::Stats s = cache.stats();
  EXPECT_EQ(s.hits + s.misses, 0u);
  EXPECT_EQ(s.idle_buffers, 0u);
}

TEST(BufferCacheTest, AFreedBufferServesTheNextRequestOfItsSize) {
  BufferCache cache;
  std::byte* first = nullptr;
  {
    auto p = cache.Allocate(3 * kLarge);
    first = p.get();
    EXPECT_EQ(reinterpret_cast<uintptr_t>(first) % 64, 0u);
  }
  EXPECT_EQ(cache.stats().idle_buffers, 1u);
  EXPECT_GE(cache.stats().idle_bytes, 3 * kLarge);
  auto again = cache.Allocate(3 * kLarge - 100);  // same size class
  EXPECT_EQ(again.get(), first);
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(cache.stats().misses, 1u);
  EXPECT_EQ(cache.stats().idle_buffers, 0u);
}

// Dynamic batches of 27..32 rows ask for slightly different sizes: classes a
// quarter octave apart let them share buffers.
TEST(BufferCacheTest, RequestsOfOneSizeClassShareABuffer) {
  BufferCache cache;
  std::byte* first = nullptr;
  {
    auto p = cache.Allocate(5 * kLarge);  // class (4, 5] x kLarge
    first = p.get();
  }
  EXPECT_EQ(cache.stats().idle_bytes, 5 * kLarge);
  {
    auto p = cache.Allocate(4 * kLarge + kLarge / 2);
    EXPECT_EQ(p.get(), first);
  }
  auto next_class = cache.Allocate(5 * kLarge + 1);  // the next class, (5, 6] x kLarge
  EXPECT_NE(next_class.get(), first);
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(cache.stats().misses, 2u);
}

TEST(BufferCacheTest, ABufferMuchLargerThanTheRequestIsNotHandedOut) {
  BufferCache cache;
  { auto big = cache.Allocate(8 * kLarge); }
  auto small = cache.Allocate(2 * kLarge);  // would waste 3/4 of the big one
  EXPECT_EQ(cache.stats().hits, 0u);
  EXPECT_EQ(cache.stats().idle_buffers, 1u);
}

TEST(BufferCacheTest, AFullCacheHandsOutALargerIdleBuffer) {
  BufferCache cache;
  cache.SetLimit(8 * kLarge);
  { auto big = cache.Allocate(8 * kLarge); }  // the cache is now full
  auto small = cache.Allocate(2 * kLarge);    // could not be kept: reuse the big one
  EXPECT_EQ(cache.stats().hits, 1u);
  EXPECT_EQ(cache.stats().idle_buffers, 0u);
}

TEST(BufferCacheTest, IdleBytesStayUnderTheLimit) {
  BufferCache cache;
  cache.SetLimit(5 * kLarge);
  std::byte* recent = nullptr;
  {
    auto a = cache.Allocate(2 * kLarge);
    auto b = cache.Allocate(3 * kLarge);
    auto c = cache.Allocate(2 * kLarge);
    recent = b.get();
    a.reset();
    b.reset();
  }  // c, freed last, does not fit under the cap: it goes back to the system
  EXPECT_EQ(cache.stats().idle_buffers, 2u);
  EXPECT_LE(cache.stats().idle_bytes, 5 * kLarge);
  cache.SetLimit(3 * kLarge);  // drops the longest idle (a) first
  EXPECT_EQ(cache.stats().idle_buffers, 1u);
  auto again = cache.Allocate(3 * kLarge);
  EXPECT_EQ(again.get(), recent);
  again.reset();
  cache.Clear();
  EXPECT_EQ(cache.stats().idle_buffers, 0u);
  EXPECT_EQ(cache.stats().idle_bytes, 0u);
}

TEST(BufferCacheTest, BuffersFreedOnOtherThreadsComeBack) {
  BufferCache cache;
  std::vector<std::shared_ptr<std::byte>> buffers;
  for (int i = 0; i < 8; ++i) buffers.push_back(cache.Allocate(kLarge));
  std::vector<std::thread> threads;
  for (auto& b : buffers) threads.emplace_back([p = std::move(b)]() mutable { p.reset(); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(cache.stats().idle_buffers, 8u);
}

// A two-layer classifier plus a small conv stack, at a batch where every
// activation is above kMinCachedBytes: with junk-filled (NaN) buffers its
// answers must be bit-identical to the run on zeroed ones.
OnnxBuilder JunkProbeModel() {
  OnnxBuilder b(13);
  b.Input("x", {-1, 3, 16, 16})
      .Initializer("w1", RandomTensor({6, 3, 3, 3}, 1, -0.5f, 0.5f))
      .Initializer("w2", RandomTensor({6, 6, 3, 3}, 2, -0.3f, 0.3f))
      .Initializer("fc1", RandomTensor({6 * 8 * 8, 64}, 3, -0.1f, 0.1f))
      .Initializer("fc2", RandomTensor({64, 10}, 4, -0.3f, 0.3f))
      .Initializer("bias", RandomTensor({10}, 5))
      .Node("Conv", {"x", "w1"}, {"c1"}, {{"pads", std::vector<int64_t>{1, 1, 1, 1}}})
      .Node("Relu", {"c1"}, {"r1"})
      .Node("Conv", {"r1", "w2"}, {"c2"}, {{"pads", std::vector<int64_t>{1, 1, 1, 1}}})
      .Node("Add", {"c2", "r1"}, {"a"})
      .Node("MaxPool", {"a"}, {"p"},
            {{"kernel_shape", std::vector<int64_t>{2, 2}}, {"strides", std::vector<int64_t>{2, 2}}})
      .Node("Flatten", {"p"}, {"f"})
      .Node("MatMul", {"f", "fc1"}, {"h"})
      .Node("Relu", {"h"}, {"hr"})
      .Node("Gemm", {"hr", "fc2", "bias"}, {"logits"})
      .Node("Softmax", {"logits"}, {"y"})
      .Output("y");
  return b;
}

TEST(BufferCacheTest, JunkFilledBuffersDoNotChangeAnswers) {
  auto model = CompileBuilt(JunkProbeModel());
  ASSERT_TRUE(model.ok()) << model.status();
  const Tensor x = RandomTensor({256, 3, 16, 16}, 9);
  auto clean = (*model)->Run({{"x", x}});
  ASSERT_TRUE(clean.ok()) << clean.status();

  // A fresh model: the first one's pooled run context keeps its scratch
  // buffers, which would not be junk-filled.
  BufferCache::Global().SetJunkFill(true);
  auto junk_model = CompileBuilt(JunkProbeModel());
  ASSERT_TRUE(junk_model.ok()) << junk_model.status();
  auto first = (*junk_model)->Run({{"x", x}});
  auto second = (*junk_model)->Run({{"x", x}});  // on recycled buffers
  BufferCache::Global().SetJunkFill(false);
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(second.ok()) << second.status();
  const Tensor& want = (*clean)[0];
  ASSERT_EQ(want.shape(), (Shape{256, 10}));
  for (const Tensor* got : {&(*first)[0], &(*second)[0]}) {
    ASSERT_EQ(got->shape(), want.shape());
    for (int64_t i = 0; i < want.num_elements(); ++i) {
      ASSERT_FALSE(std::isnan(got->data<float>()[i])) << "element " << i;
      ASSERT_EQ(got->data<float>()[i], want.data<float>()[i]) << "element " << i;
    }
  }
  EXPECT_GT(BufferCache::Global().stats().hits, 0u);
}

}  // namespace
}  // namespace qs

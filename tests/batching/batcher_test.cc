// The dynamic batcher on the bundled model: concurrent batch-1 requests are
// served as real batches with the same answers as unbatched runs; deadlines,
// cancellation and the queue limit are honoured.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <thread>

#include "engine/data/npy.h"
#include "engine/onnx_importer.h"
#include "server/batcher.h"

namespace qs {
namespace {

using Clock = Batcher::Clock;
const std::string kModels = QS_SOURCE_DIR "/models";

std::shared_ptr<const CompiledModel> Model() {
  static std::shared_ptr<const CompiledModel> model = [] {
    auto g = ImportOnnxFile(kModels + "/fmnist_cnn.onnx");
    return std::shared_ptr<const CompiledModel>(std::move(*CompiledModel::Compile(*g)));
  }();
  return model;
}

Tensor Image(int i) {
  static Tensor all = *ReadNpy(kModels + "/fmnist_cnn_first16_input.npy");
  Tensor one(DataType::kFloat32, {1, 1, 28, 28});
  std::memcpy(one.raw_data(), all.data<float>() + i * 784, 784 * sizeof(float));
  return one;
}

TEST(BatcherTest, ConcurrentRequestsFormBatchesWithUnchangedAnswers) {
  std::mutex mu;
  std::vector<BatchEvent> events;
  BatchingOptions options;
  options.max_batch_size = 8;
  options.max_queue_delay = std::chrono::milliseconds(20);
  Batcher batcher(Model(), options, [&](const BatchEvent& e) {
    std::lock_guard<std::mutex> lock(mu);
    events.push_back(e);
  });
  ASSERT_TRUE(batcher.batching());
  constexpr int kClients = 16;
  std::vector<std::thread> clients;
  std::atomic<int> mismatches{0}, failures{0};
  for (int c = 0; c < kClients; ++c) {
    clients.emplace_back([&, c] {
      auto direct = Model()->RunOrdered({Image(c)});
      auto batched = batcher.Run({Image(c)}, Clock::now() + std::chrono::seconds(10), nullptr);
      if (!batched.ok() || !direct.ok()) {
        ++failures;
        return;
      }
      for (int k = 0; k < 10; ++k) {
        if (std::fabs((*batched)[0].data<float>()[k] - (*direct)[0].data<float>()[k]) > 1e-4) {
          ++mismatches;
        }
      }
    });
  }
  for (auto& t : clients) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(mismatches, 0);
  int64_t rows = 0, largest = 0;
  for (const auto& e : events) {
    rows += e.rows;
    largest = std::max(largest, e.rows);
    EXPECT_LE(e.rows, 8);
  }
  EXPECT_EQ(rows, kClients);
  EXPECT_GT(largest, 1) << "no batch had more than one request";
  EXPECT_LT(events.size(), static_cast<size_t>(kClients));
}

TEST(BatcherTest, DeadlineExpiresWhileQueued) {
  BatchingOptions options;
  options.max_batch_size = 64;
  options.max_queue_delay = std::chrono::seconds(2);  // the batch would wait long
  Batcher batcher(Model(), options);
  const auto start = Clock::now();
  auto r = batcher.Run({Image(0)}, start + std::chrono::milliseconds(30), nullptr);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_LT(Clock::now() - start, std::chrono::milliseconds(500));
}

TEST(BatcherTest, CancelledCallStopsWaiting) {
  BatchingOptions options;
  options.max_batch_size = 64;
  options.max_queue_delay = std::chrono::seconds(2);
  Batcher batcher(Model(), options);
  std::atomic<bool> cancel{false};
  std::thread canceller([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
    cancel = true;
  });
  auto r = batcher.Run({Image(0)}, Clock::now() + std::chrono::seconds(10), [&] { return cancel.load(); });
  canceller.join();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kCancelled);
}

TEST(BatcherTest, FullQueueIsResourceExhausted) {
  BatchingOptions options;
  options.max_batch_size = 64;
  options.max_queue_rows = 2;
  options.max_queue_delay = std::chrono::milliseconds(300);
  Batcher batcher(Model(), options);
  std::thread first([&] {
    Tensor two(DataType::kFloat32, {2, 1, 28, 28});
    (void)batcher.Run({two}, Clock::now() + std::chrono::seconds(5), nullptr);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  auto r = batcher.Run({Image(1)}, Clock::now() + std::chrono::seconds(5), nullptr);
  first.join();
  EXPECT_EQ(r.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST(BatcherTest, QueuedRequestsFinishWhenTheBatcherStops) {
  BatchingOptions options;
  options.max_batch_size = 64;
  options.max_queue_delay = std::chrono::milliseconds(200);
  auto batcher = std::make_unique<Batcher>(Model(), options);
  absl::StatusOr<std::vector<Tensor>> result = absl::UnknownError("not run");
  std::thread client([&] {
    result = batcher->Run({Image(2)}, Clock::now() + std::chrono::seconds(5), nullptr);
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  batcher.reset();  // destructor drains the queue
  client.join();
  EXPECT_TRUE(result.ok()) << result.status();
}

TEST(BatcherTest, BatchSizeOneRunsDirectly) {
  Batcher batcher(Model(), BatchingOptions{});
  EXPECT_FALSE(batcher.batching());
  auto r = batcher.Run({Image(3)}, Clock::now() + std::chrono::seconds(5), nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].shape(), (Shape{1, 10}));
}

}  // namespace
}  // namespace qs

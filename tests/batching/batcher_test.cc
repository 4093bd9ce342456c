// The dynamic batcher on the bundled model: concurrent batch-1 requests are
// served as real batches with the same answers as unbatched runs; deadlines,
// cancellation and the queue limit are honoured.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <future>
#include <stdexcept>
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

TEST(BatcherTest, BatchSizeOneRunsEachRequestAlone) {
  std::vector<BatchEvent> events;
  Batcher batcher(Model(), BatchingOptions{}, [&](const BatchEvent& e) { events.push_back(e); });
  EXPECT_FALSE(batcher.batching());
  Tensor three(DataType::kFloat32, {3, 1, 28, 28});
  auto r = batcher.Run({three}, Clock::now() + std::chrono::seconds(5), nullptr);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ((*r)[0].shape(), (Shape{3, 10}));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].rows, 3);
  EXPECT_EQ(events[0].requests, 1);
}

// The asynchronous form: the answer comes on a worker thread, also without
// batching, so a gRPC callback handler never runs the model itself.
TEST(BatcherTest, SubmitAnswersOnAWorkerThread) {
  for (int max_batch : {1, 8}) {
    BatchingOptions options;
    options.max_batch_size = max_batch;
    options.max_queue_delay = std::chrono::milliseconds(1);
    Batcher batcher(Model(), options);
    std::promise<std::pair<std::thread::id, Batcher::Result>> answer;
    auto request = batcher.Submit({Image(4)}, Clock::now() + std::chrono::seconds(5),
                                  [&](Batcher::Result r) {
                                    answer.set_value({std::this_thread::get_id(), std::move(r)});
                                  });
    EXPECT_NE(request, nullptr);
    auto [thread, result] = answer.get_future().get();
    EXPECT_NE(thread, std::this_thread::get_id()) << max_batch;
    ASSERT_TRUE(result.ok()) << result.status();
    EXPECT_EQ((*result)[0].shape(), (Shape{1, 10}));
    // Answered: too late to take it back.
    EXPECT_FALSE(request->Abandon());
  }
}

TEST(BatcherTest, AnAbandonedRequestIsNeverAnswered) {
  BatchingOptions options;
  options.max_batch_size = 64;
  options.max_queue_delay = std::chrono::milliseconds(100);
  std::vector<BatchEvent> events;
  std::atomic<int> answered{0};
  {
    Batcher batcher(Model(), options, [&](const BatchEvent& e) { events.push_back(e); });
    auto gone = batcher.Submit({Image(5)}, Clock::now() + std::chrono::seconds(5),
                               [&](Batcher::Result) { ++answered; });
    ASSERT_NE(gone, nullptr);
    EXPECT_TRUE(gone->Abandon());
    EXPECT_FALSE(gone->Abandon());  // once
    auto kept = batcher.Run({Image(6)}, Clock::now() + std::chrono::seconds(5), nullptr);
    EXPECT_TRUE(kept.ok());
  }  // the destructor drains the queue: the abandoned request stays unanswered
  EXPECT_EQ(answered, 0);
  int64_t rows = 0;
  for (const auto& e : events) rows += e.rows;
  EXPECT_EQ(rows, 1) << "the abandoned request ran";
}

// Nobody waits on a submitted request: the batcher itself answers it when
// its deadline passes in the queue.
TEST(BatcherTest, ASubmittedRequestPastItsDeadlineIsAnsweredByTheBatcher) {
  BatchingOptions options;
  options.max_batch_size = 64;
  options.max_queue_delay = std::chrono::milliseconds(100);
  Batcher batcher(Model(), options);
  std::promise<Batcher::Result> answer;
  const auto start = Clock::now();
  batcher.Submit({Image(7)}, start + std::chrono::milliseconds(20),
                 [&](Batcher::Result r) { answer.set_value(std::move(r)); });
  auto future = answer.get_future();
  ASSERT_EQ(future.wait_for(std::chrono::seconds(5)), std::future_status::ready);
  EXPECT_EQ(future.get().status().code(), absl::StatusCode::kDeadlineExceeded);
}

// A caller's callback that throws does not take the worker down, and the
// other requests of its batch still get their rows.
TEST(BatcherTest, AThrowingCallbackLeavesTheBatchAndTheWorkerServing) {
  BatchingOptions options;
  options.max_batch_size = 8;
  options.max_queue_delay = std::chrono::milliseconds(100);
  std::vector<BatchEvent> events;
  Batcher batcher(Model(), options, [&](const BatchEvent& e) { events.push_back(e); });
  std::promise<Batcher::Result> second;
  batcher.Submit({Image(1)}, Clock::now() + std::chrono::seconds(5),
                 [](Batcher::Result) { throw std::runtime_error("caller bug"); });
  batcher.Submit({Image(2)}, Clock::now() + std::chrono::seconds(5),
                 [&](Batcher::Result r) { second.set_value(std::move(r)); });
  auto answer = second.get_future().get();
  ASSERT_TRUE(answer.ok()) << answer.status();
  auto direct = Model()->RunOrdered({Image(2)});
  ASSERT_TRUE(direct.ok());
  for (int k = 0; k < 10; ++k) {
    EXPECT_NEAR((*answer)[0].data<float>()[k], (*direct)[0].data<float>()[k], 1e-4);
  }
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].requests, 2);  // one batch
  auto again = batcher.Run({Image(3)}, Clock::now() + std::chrono::seconds(5), nullptr);
  EXPECT_TRUE(again.ok()) << again.status();
}

TEST(BatcherTest, ARefusedSubmitAnswersAtOnce) {
  Batcher batcher(Model(), BatchingOptions{});
  absl::StatusCode code = absl::StatusCode::kOk;
  auto request = batcher.Submit({Image(0)}, Clock::now() - std::chrono::milliseconds(1),
                                [&](Batcher::Result r) { code = r.status().code(); });
  EXPECT_EQ(request, nullptr);
  EXPECT_EQ(code, absl::StatusCode::kDeadlineExceeded);
}

}  // namespace
}  // namespace qs

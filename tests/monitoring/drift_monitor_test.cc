// The drift monitor's sampling, queueing and replay, with an observer that
// records what it is told. Variants are the bundled fp32 model (twice, so a
// replay must find no drift) and a copy whose output is shifted by a
// constant bias (so a replay must find some).
#include "server/drift_monitor.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <condition_variable>
#include <cstring>
#include <mutex>

#include "engine/data/npy.h"
#include "engine/onnx_importer.h"
#include "server/feedback_store.h"

namespace qs {
namespace {

const std::string kModels = QS_SOURCE_DIR "/models";

std::shared_ptr<const CompiledModel> Fp32() {
  static std::shared_ptr<const CompiledModel> model = [] {
    auto g = ImportOnnxFile(kModels + "/fmnist_cnn.onnx");
    return std::shared_ptr<const CompiledModel>(std::move(*CompiledModel::Compile(*g)));
  }();
  return model;
}

Tensor Images(int first, int count) {
  static Tensor all = *ReadNpy(kModels + "/fmnist_cnn_first16_input.npy");
  Tensor t(DataType::kFloat32, {count, 1, 28, 28});
  std::memcpy(t.raw_data(), all.data<float>() + first * 784, count * 784 * sizeof(float));
  return t;
}

class RecordingObserver : public DriftObserver {
 public:
  void Compared(int variant, const std::vector<SampleComparison>& samples) override {
    std::unique_lock<std::mutex> lock(mu);
    gate_cv.wait(lock, [this] { return open; });
    for (const auto& s : samples) compared[variant].push_back(s);
  }
  void ReplayFailed(int variant, const absl::Status&) override {
    std::lock_guard<std::mutex> lock(mu);
    ++failed[variant];
  }
  void Enqueued(int v) override {
    std::lock_guard<std::mutex> lock(mu);
    ++enqueued[v];
  }
  void Dropped(int v) override {
    std::lock_guard<std::mutex> lock(mu);
    ++dropped[v];
  }
  void QueueLength(size_t n) override {
    std::lock_guard<std::mutex> lock(mu);
    last_length = n;
  }
  void Open() {
    {
      std::lock_guard<std::mutex> lock(mu);
      open = true;
    }
    gate_cv.notify_all();
  }

  std::mutex mu;
  std::condition_variable gate_cv;
  bool open = true;
  std::map<int, std::vector<SampleComparison>> compared;
  std::map<int, int> failed, enqueued, dropped;
  size_t last_length = 0;
};

// Runs `variant` on images and submits the request like ServedModel::Run.
void Serve(DriftMonitor& monitor, const std::vector<std::shared_ptr<const CompiledModel>>& models,
           int variant, int first, int count, const std::string& id = "") {
  std::vector<Tensor> inputs = {Images(first, count)};
  auto out = models[variant]->RunOrdered(inputs);
  ASSERT_TRUE(out.ok()) << out.status();
  if (monitor.ShouldSample(variant)) monitor.Submit(variant, inputs, *out, id);
}

TEST(DriftMonitorTest, ShadowModeComparesTheServedOutputWithTheReference) {
  auto observer = std::make_shared<RecordingObserver>();
  std::vector<std::shared_ptr<const CompiledModel>> models = {Fp32(), Fp32()};
  DriftOptions options;
  options.sample_rate = 1;
  options.reference = 0;
  DriftMonitor monitor(models, options, observer);
  Serve(monitor, models, 1, 0, 4);
  Serve(monitor, models, 0, 4, 4);  // the reference itself: nothing to compare
  monitor.WaitIdle();
  std::lock_guard<std::mutex> lock(observer->mu);
  ASSERT_EQ(observer->compared[1].size(), 4u);
  EXPECT_EQ(observer->compared.count(0), 0u);
  for (const auto& s : observer->compared[1]) {
    EXPECT_EQ(s.top1, s.reference_top1);
    EXPECT_LT(s.kl_divergence, 1e-9);
    EXPECT_LT(s.relative_error, 1e-6);
  }
  EXPECT_EQ(observer->enqueued[1], 1);
  EXPECT_EQ(observer->enqueued[0], 0);
  EXPECT_EQ(observer->last_length, 0u);
}

TEST(DriftMonitorTest, DriftIsMeasuredWhenTheServedOutputDiffers) {
  auto observer = std::make_shared<RecordingObserver>();
  std::vector<std::shared_ptr<const CompiledModel>> models = {Fp32(), Fp32()};
  DriftOptions options;
  options.sample_rate = 1;
  DriftMonitor monitor(models, options, observer);
  std::vector<Tensor> inputs = {Images(0, 2)};
  auto out = models[1]->RunOrdered(inputs);
  ASSERT_TRUE(out.ok());
  // A "quantized" answer: the served logits with class 3 raised by 50.
  Tensor served = out->front().Clone();
  served.data<float>()[3] += 50;
  served.data<float>()[10 + 3] += 50;
  ASSERT_TRUE(monitor.ShouldSample(1));
  monitor.Submit(1, inputs, {served}, "");
  monitor.WaitIdle();
  std::lock_guard<std::mutex> lock(observer->mu);
  ASSERT_EQ(observer->compared[1].size(), 2u);
  for (const auto& s : observer->compared[1]) {
    EXPECT_EQ(s.top1, 3);
    EXPECT_GT(s.kl_divergence, 1);
    EXPECT_GT(s.relative_error, 0.1);
  }
}

TEST(DriftMonitorTest, MirrorModeReplaysEveryOtherVariantAndFeedsFeedback) {
  auto observer = std::make_shared<RecordingObserver>();
  auto feedback = std::make_shared<FeedbackStore>(10, 3);
  std::vector<std::shared_ptr<const CompiledModel>> models = {Fp32(), Fp32(), Fp32()};
  DriftOptions options;
  options.sample_rate = 1;
  options.mirror = true;
  options.reference = 1;
  DriftMonitor monitor(models, options, observer, feedback);
  feedback->Record("req", 1, {0, 0, 0});  // what the served variant answered
  Serve(monitor, models, 1, 0, 3, "req");  // the reference is served
  monitor.WaitIdle();
  {
    std::lock_guard<std::mutex> lock(observer->mu);
    EXPECT_EQ(observer->compared[0].size(), 3u);
    EXPECT_EQ(observer->compared[2].size(), 3u);
    EXPECT_EQ(observer->compared.count(1), 0u);
  }
  FeedbackStore::Taken t = feedback->Take("req", 3);
  ASSERT_EQ(t.outcome, FeedbackStore::Taken::Outcome::kTaken);
  EXPECT_EQ(t.predictions[0].size(), 3u);  // replayed
  EXPECT_EQ(t.predictions[2].size(), 3u);  // replayed
  EXPECT_EQ(t.predictions[0], t.predictions[2]);
}

TEST(DriftMonitorTest, SamplesExactlyTheConfiguredFractionPerVariant) {
  auto observer = std::make_shared<RecordingObserver>();
  DriftOptions options;
  options.sample_rate = 0.05;
  DriftMonitor monitor({Fp32(), Fp32()}, options, observer);
  int sampled = 0;
  for (int i = 0; i < 1000; ++i) sampled += monitor.ShouldSample(1);
  EXPECT_EQ(sampled, 50);
  options.sample_rate = 0;
  DriftMonitor off({Fp32(), Fp32()}, options, observer);
  for (int i = 0; i < 100; ++i) EXPECT_FALSE(off.ShouldSample(1));
}

TEST(DriftMonitorTest, AFullQueueDropsInsteadOfWaiting) {
  auto observer = std::make_shared<RecordingObserver>();
  observer->open = false;  // the worker blocks in its first Compared
  std::vector<std::shared_ptr<const CompiledModel>> models = {Fp32(), Fp32()};
  DriftOptions options;
  options.sample_rate = 1;
  options.queue_capacity = 2;
  DriftMonitor monitor(models, options, observer);
  std::vector<Tensor> inputs = {Images(0, 1)};
  auto out = models[1]->RunOrdered(inputs);
  ASSERT_TRUE(out.ok());
  monitor.Submit(1, inputs, *out, "");
  // Wait until the worker has taken the first job off the queue.
  for (int i = 0; i < 500; ++i) {
    {
      std::lock_guard<std::mutex> lock(observer->mu);
      if (observer->last_length == 0 && observer->enqueued[1] == 1) break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  for (int i = 0; i < 4; ++i) monitor.Submit(1, inputs, *out, "");
  {
    std::lock_guard<std::mutex> lock(observer->mu);
    EXPECT_EQ(observer->enqueued[1], 3);
    EXPECT_EQ(observer->dropped[1], 2);
    EXPECT_EQ(observer->last_length, 2u);
  }
  observer->Open();
  monitor.WaitIdle();
  std::lock_guard<std::mutex> lock(observer->mu);
  EXPECT_EQ(observer->compared[1].size(), 3u);
}

TEST(DriftMonitorTest, AFailedReplayIsReported) {
  auto observer = std::make_shared<RecordingObserver>();
  std::vector<std::shared_ptr<const CompiledModel>> models = {Fp32(), Fp32()};
  DriftOptions options;
  options.sample_rate = 1;
  DriftMonitor monitor(models, options, observer);
  // Inputs the reference cannot run (wrong rank), as if a bug let them in.
  Tensor bad(DataType::kFloat32, {1, 28, 28});
  auto out = models[1]->RunOrdered({Images(0, 1)});
  ASSERT_TRUE(out.ok());
  monitor.Submit(1, {bad}, *out, "");
  monitor.WaitIdle();
  std::lock_guard<std::mutex> lock(observer->mu);
  EXPECT_EQ(observer->failed[1], 1);
  EXPECT_TRUE(observer->compared[1].empty());
}

TEST(DriftMonitorTest, DestroyingWithQueuedWorkDoesNotHang) {
  auto observer = std::make_shared<RecordingObserver>();
  std::vector<std::shared_ptr<const CompiledModel>> models = {Fp32(), Fp32()};
  DriftOptions options;
  options.sample_rate = 1;
  options.queue_capacity = 100;
  auto monitor = std::make_unique<DriftMonitor>(models, options, observer);
  auto out = models[1]->RunOrdered({Images(0, 8)});
  ASSERT_TRUE(out.ok());
  for (int i = 0; i < 50; ++i) monitor->Submit(1, {Images(0, 8)}, *out, "");
  monitor.reset();  // returns after at most the replay in progress
  std::lock_guard<std::mutex> lock(observer->mu);
  EXPECT_LT(observer->compared[1].size(), 50u * 8);
}

}  // namespace
}  // namespace qs

// The models the server is serving, by name. Each entry is an immutable
// shared_ptr<const ServedModel>: a request holds its model for its whole
// life, and a reload publishes a replacement without disturbing requests in
// flight (the old model is freed when its last request finishes).
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "config/server_config.h"
#include "engine/model_builder.h"
#include "server/batcher.h"
#include "server/drift_monitor.h"
#include "server/feedback_store.h"
#include "server/serving_gate.h"

namespace qs {

struct VariantMetrics;  // server/metrics.h
struct ModelMetrics;    // server/metrics.h

struct ServedModel {
  BuiltModel built;
  std::string default_variant;
  // One per variant, same order: its Prometheus children, created when the
  // model is published (empty when the server keeps no metrics).
  std::vector<std::shared_ptr<VariantMetrics>> metrics;
  // What it was built from, to tell on a reload whether it must be rebuilt:
  // its config and the state (mtime, size) of the files it read.
  ModelConfig config;
  std::string files_fingerprint;
  // Live drift monitoring (null when the model's drift.sample_rate is 0 or
  // it has no reference variant) and the answers kept for Feedback (null
  // when drift.feedback_capacity is 0).
  std::shared_ptr<DriftMonitor> drift;
  std::shared_ptr<FeedbackStore> feedback;
  std::shared_ptr<ModelMetrics> model_metrics;  // may be null
  // One per variant, same order as built.variants. A Batcher is internally
  // synchronized, so requests share it through the const ServedModel.
  // Declared last, so destroyed first: ~Batcher finishes queued requests,
  // whose callbacks (Submit) still report to `drift` and `feedback`.
  std::vector<std::shared_ptr<Batcher>> batchers;

  const std::string& name() const { return built.name; }
  // Position of `variant` in built.variants; -1 if there is none.
  int IndexOf(const std::string& variant) const;
  // Runs one request's inputs (graph order, validated) on variant `index`
  // without waiting: the request goes to the variant's batcher, and `done`
  // gets its outputs on a batcher thread (or within this call when the
  // batcher refuses it) after drift monitoring has been offered the request
  // and, when `request_id` is set, its top-1 answers were kept for Feedback.
  // The caller keeps this model alive until `done` has returned, and must
  // not drop its last reference on the batcher thread (inside `done`): the
  // model's destructor joins that thread. Returns the queued request (null
  // when it was answered already), which the caller may abandon.
  std::shared_ptr<Batcher::Request> Submit(int index, std::vector<Tensor> inputs,
                                           Batcher::Clock::time_point deadline,
                                           std::string request_id, Batcher::Done done) const;
  // The variant's metrics, or nullptr if `variant` does not exist or has none.
  // Shared: a request keeps its variant's metrics alive past a reload that
  // replaces this model (it counts its status after the handler returns).
  std::shared_ptr<VariantMetrics> FindMetrics(const std::string& variant) const;

 private:
  // Feedback and drift monitoring of a finished run; `sampled_inputs` are
  // the request's inputs when drift monitoring sampled it.
  void Observe(int index, std::optional<std::vector<Tensor>> sampled_inputs,
               const std::vector<Tensor>& outputs, const std::string& request_id) const;
};

class ModelRegistry {
 public:
  void Publish(std::shared_ptr<const ServedModel> model);
  // Replaces the whole set at once (a config reload): requests see either
  // the old models or the new ones, never a mix; models left out are no
  // longer served (requests holding them finish undisturbed).
  void ReplaceAll(std::vector<std::shared_ptr<const ServedModel>> models);
  // Every configured model has been published (set once after start-up).
  void MarkLoaded() { loaded_ = true; }
  bool loaded() const { return loaded_; }
  std::shared_ptr<const ServedModel> Find(const std::string& name) const;
  std::vector<std::shared_ptr<const ServedModel>> List() const;
  // "'a', 'b'" for error messages.
  std::string Names() const;
  // Admission of inference calls; draining during shutdown. Mutable: the
  // services hold the registry as const and only pass through the gate.
  ServingGate& gate() const { return gate_; }

 private:
  mutable std::mutex mu_;
  mutable ServingGate gate_;
  std::atomic<bool> loaded_{false};
  std::map<std::string, std::shared_ptr<const ServedModel>> models_;  // guarded by mu_
};

}  // namespace qs

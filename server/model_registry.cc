#include "server/model_registry.h"

#include <optional>

#include "engine/output_compare.h"
#include "server/metrics.h"

namespace qs {

int ServedModel::IndexOf(const std::string& variant) const {
  for (size_t i = 0; i < built.variants.size(); ++i) {
    if (built.variants[i].report.name == variant) return static_cast<int>(i);
  }
  return -1;
}

std::shared_ptr<Batcher::Request> ServedModel::Submit(int index, std::vector<Tensor> inputs,
                                                      Batcher::Clock::time_point deadline,
                                                      std::string request_id,
                                                      Batcher::Done done) const {
  // Tensor copies share their buffers: keeping the inputs for a replay costs
  // a reference count, not a copy.
  std::optional<std::vector<Tensor>> sampled_inputs;
  if (drift != nullptr && drift->ShouldSample(index)) sampled_inputs = inputs;
  auto observed = [this, index, sampled_inputs = std::move(sampled_inputs),
                   request_id = std::move(request_id),
                   done = std::move(done)](Batcher::Result outputs) mutable {
    if (outputs.ok()) {
      try {
        Observe(index, std::move(sampled_inputs), *outputs, request_id);
      } catch (...) {
        // Monitoring (a drift replay, a Feedback record) is best effort: the
        // request is still answered.
      }
    }
    done(std::move(outputs));
  };
  return batchers[index]->Submit(std::move(inputs), deadline, std::move(observed));
}

void ServedModel::Observe(int index, std::optional<std::vector<Tensor>> sampled_inputs,
                          const std::vector<Tensor>& outputs,
                          const std::string& request_id) const {
  if (outputs.empty()) return;
  const Tensor* scores = FirstFloatOutput(outputs);
  if (feedback != nullptr && !request_id.empty() && scores != nullptr) {
    feedback->Record(request_id, index, RowArgMax(*scores));
  }
  if (sampled_inputs) {
    drift->Submit(index, std::move(*sampled_inputs), outputs, request_id);
  }
}

std::shared_ptr<VariantMetrics> ServedModel::FindMetrics(const std::string& variant) const {
  for (size_t i = 0; i < built.variants.size() && i < metrics.size(); ++i) {
    if (built.variants[i].report.name == variant) return metrics[i];
  }
  return nullptr;
}

void ModelRegistry::Publish(std::shared_ptr<const ServedModel> model) {
  std::lock_guard<std::mutex> lock(mu_);
  models_[model->name()] = std::move(model);
}

void ModelRegistry::ReplaceAll(std::vector<std::shared_ptr<const ServedModel>> models) {
  std::map<std::string, std::shared_ptr<const ServedModel>> next;
  for (auto& m : models) {
    const std::string name = m->name();
    next[name] = std::move(m);
  }
  std::map<std::string, std::shared_ptr<const ServedModel>> previous;
  {
    std::lock_guard<std::mutex> lock(mu_);
    previous.swap(models_);
    models_.swap(next);
  }
  // `previous` is released here, outside the lock: destroying a model that no
  // request holds any more joins its batcher and drift threads.
}

std::shared_ptr<const ServedModel> ModelRegistry::Find(const std::string& name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(name);
  return it == models_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<const ServedModel>> ModelRegistry::List() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::shared_ptr<const ServedModel>> out;
  for (const auto& [name, model] : models_) out.push_back(model);
  return out;
}

std::string ModelRegistry::Names() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string s;
  for (const auto& [name, model] : models_) s += (s.empty() ? "'" : ", '") + name + "'";
  return s.empty() ? "none" : s;
}

}  // namespace qs

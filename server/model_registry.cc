#include "server/model_registry.h"

namespace qs {

Batcher* ServedModel::FindBatcher(const std::string& variant) const {
  for (size_t i = 0; i < built.variants.size() && i < batchers.size(); ++i) {
    if (built.variants[i].report.name == variant) return batchers[i].get();
  }
  return nullptr;
}

VariantMetrics* ServedModel::FindMetrics(const std::string& variant) const {
  for (size_t i = 0; i < built.variants.size() && i < metrics.size(); ++i) {
    if (built.variants[i].report.name == variant) return metrics[i].get();
  }
  return nullptr;
}

void ModelRegistry::Publish(std::shared_ptr<const ServedModel> model) {
  std::lock_guard<std::mutex> lock(mu_);
  models_[model->name()] = std::move(model);
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

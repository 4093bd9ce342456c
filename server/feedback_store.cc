#include "server/feedback_store.h"

#include <algorithm>

namespace qs {

FeedbackStore::FeedbackStore(int capacity, int variant_count)
    : capacity_(capacity), variant_count_(variant_count) {}

void FeedbackStore::Record(const std::string& id, int variant, std::vector<int32_t> top1) {
  if (capacity_ <= 0 || variant < 0 || variant >= variant_count_) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  if (it != entries_.end()) {
    order_.erase(it->second.age);
    entries_.erase(it);
  }
  while (static_cast<int>(entries_.size()) >= capacity_) {
    entries_.erase(order_.front());
    order_.pop_front();
  }
  order_.push_back(id);
  Entry& entry = entries_[id];
  entry.age = std::prev(order_.end());
  entry.predictions.resize(variant_count_);
  entry.predictions[variant] = std::move(top1);
}

void FeedbackStore::Add(const std::string& id, int variant, std::vector<int32_t> top1) {
  if (variant < 0 || variant >= variant_count_) return;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return;
  Predictions& p = it->second.predictions;
  // A different sample count means the id was reused for another request
  // after this replay was queued: the replay's answer is not for it.
  for (const auto& other : p) {
    if (!other.empty() && other.size() != top1.size()) return;
  }
  p[variant] = std::move(top1);
}

FeedbackStore::Taken FeedbackStore::Take(const std::string& id, size_t samples) {
  Taken taken;
  std::lock_guard<std::mutex> lock(mu_);
  auto it = entries_.find(id);
  if (it == entries_.end()) return taken;
  for (const auto& top1 : it->second.predictions) taken.samples = std::max(taken.samples, top1.size());
  if (taken.samples != samples) {
    taken.outcome = Taken::Outcome::kWrongCount;
    return taken;
  }
  taken.outcome = Taken::Outcome::kTaken;
  taken.predictions = std::move(it->second.predictions);
  order_.erase(it->second.age);
  entries_.erase(it);
  return taken;
}

size_t FeedbackStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return entries_.size();
}

}  // namespace qs

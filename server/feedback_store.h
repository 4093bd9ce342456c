// The predictions of recent requests that carried a request id, kept so
// that a later Feedback call with the true labels can score them. Bounded:
// when full, the oldest request is forgotten. A request id is scored once
// (Take removes it); reusing an id replaces what was kept under it.
#pragma once

#include <cstdint>
#include <list>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace qs {

class FeedbackStore {
 public:
  // Top-1 class per sample, for each variant of the model (same order as
  // its variants); empty for a variant that did not run the request.
  using Predictions = std::vector<std::vector<int32_t>>;

  FeedbackStore(int capacity, int variant_count);

  // The served variant's answer to a new request `id` (replaces an older
  // request with the same id).
  void Record(const std::string& id, int variant, std::vector<int32_t> top1);
  // Another variant's answer to the same inputs (drift replay), added if the
  // request is still remembered and has the same number of samples.
  void Add(const std::string& id, int variant, std::vector<int32_t> top1);
  struct Taken {
    enum class Outcome {
      kTaken,       // `predictions` holds the request's answers; forgotten now
      kUnknown,     // nothing is kept for the id
      kWrongCount,  // the request had `samples` samples, not as many as given; kept
    } outcome = Outcome::kUnknown;
    size_t samples = 0;
    Predictions predictions;
  };
  // Removes and returns what is kept for `id` if that request had `samples`
  // samples.
  Taken Take(const std::string& id, size_t samples);

  int capacity() const { return capacity_; }
  size_t size() const;

 private:
  struct Entry {
    Predictions predictions;
    std::list<std::string>::iterator age;  // position in order_
  };
  const int capacity_;
  const int variant_count_;
  mutable std::mutex mu_;
  std::unordered_map<std::string, Entry> entries_;  // guarded by mu_
  std::list<std::string> order_;                    // oldest first; guarded by mu_
};

}  // namespace qs

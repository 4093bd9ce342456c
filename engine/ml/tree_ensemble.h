// TreeEnsembleClassifier / TreeEnsembleRegressor models, read from the
// ONNX-ML node attributes into one flat node array (each tree contiguous,
// depth-first), and the evaluator that walks it.
//
// The evaluator walks a block of rows through one tree before moving to the
// next tree (the tree's nodes stay in cache across the block), and runs
// blocks in parallel (OpenMP) when the batch is large. Quantized evaluators
// map every input feature to an 8- or 16-bit bin code whose order matches
// the split thresholds exactly (see TreeQuantization), so splits become
// integer compares and nodes shrink; leaf values may be 8/16-bit integers
// with one scale per target.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/statusor.h"
#include "engine/graph.h"

namespace qs::ml {

enum class NodeMode : uint8_t { kLeq, kLt, kGte, kGt, kEq, kNeq };
enum class Aggregate { kSum, kAverage, kMin, kMax };

struct TreeEnsemble {
  struct Split {
    float threshold = 0.f;
    int32_t feature = 0;
    NodeMode mode = NodeMode::kLeq;
    bool missing_true = false;  // NaN goes to the true branch
    int32_t next_true = 0, next_false = 0;  // >= 0: split index; < 0: ~leaf index
  };
  std::vector<Split> splits;     // each tree's splits contiguous, depth-first
  std::vector<int32_t> roots;    // per tree: split index, or ~leaf for a lone leaf
  std::vector<int32_t> leaf_begin;   // leaf l's weights: [leaf_begin[l], leaf_begin[l+1])
  std::vector<int32_t> leaf_target;  // target (class) of each weight
  std::vector<float> leaf_weight;
  int64_t targets = 1;
  int32_t max_feature = -1;  // largest feature index any split reads
  Aggregate aggregate = Aggregate::kSum;
};

// Reads the node's nodes_* and `prefix`_* (class_ or target_) attributes.
// Target ids must lie in [0, targets). Errors name the node and attribute.
absl::StatusOr<TreeEnsemble> ReadTreeEnsemble(const Node& node, const char* prefix,
                                              int64_t targets);

// 0 = float; 8 or 16 = integer codes.
struct TreeQuantization {
  int threshold_bits = 0;
  int leaf_bits = 0;
};

class TreeEvaluator {
 public:
  virtual ~TreeEvaluator() = default;
  // scores [rows, targets] = aggregate over trees of the leaf weights each
  // row reaches (no base values, no post transform). x is [rows, stride].
  virtual void Evaluate(const float* x, int64_t rows, int64_t stride, float* scores) const = 0;
  // Bytes of the evaluator's tables (nodes, leaves, bins, scales).
  virtual int64_t bytes() const = 0;
  // Thresholds that had to be merged to fit the bin width (0 = exact).
  virtual int64_t merged_thresholds() const { return 0; }
};

absl::StatusOr<std::unique_ptr<TreeEvaluator>> MakeTreeEvaluator(const TreeEnsemble& e,
                                                                 TreeQuantization q);

}  // namespace qs::ml

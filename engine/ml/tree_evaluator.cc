// The flat tree walker behind TreeEnsembleClassifier/Regressor, in float and
// in integer-bin (8/16-bit) form.
#include <algorithm>
#include <cmath>
#include <limits>
#include <type_traits>

#include "absl/strings/str_cat.h"
#include "engine/ml/tree_ensemble.h"

namespace qs::ml {
namespace {

constexpr int64_t kBlockRows = 16;
// Rows × trees below which one thread does all the work.
constexpr int64_t kParallelWork = 1 << 14;

// 12 bytes with 8-bit codes, 16 with 16-bit codes, 20 in float.
template <typename T, typename F>
struct CompactSplit {
  int32_t next_true, next_false;  // >= 0: split; < 0: ~leaf (adjacent: indexed by a compare)
  F feature;
  T threshold;
  uint8_t flags;  // NodeMode | missing_true << 3
};

template <typename T>
inline bool Compare(NodeMode m, T x, T t) {
  switch (m) {
    case NodeMode::kLeq: return x <= t;
    case NodeMode::kLt: return x < t;
    case NodeMode::kGte: return x >= t;
    case NodeMode::kGt: return x > t;
    case NodeMode::kEq: return x == t;
    case NodeMode::kNeq: return x != t;
  }
  return false;
}

// The code of a missing (NaN) feature value.
template <typename T>
constexpr T kNanCode = std::numeric_limits<T>::max();

template <typename T, typename F>
inline bool GoTrue(const CompactSplit<T, F>& s, T x) {
  const NodeMode mode = static_cast<NodeMode>(s.flags & 7);
  const bool missing_true = (s.flags >> 3) != 0;
  if constexpr (std::is_floating_point_v<T>) {
    return Compare(mode, x, s.threshold) || (missing_true && std::isnan(x));
  } else {
    // A NaN compares false with everything, and != is true.
    if (x == kNanCode<T>) return missing_true || mode == NodeMode::kNeq;
    return Compare(mode, x, s.threshold);
  }
}

// The leaves of `n` rows in one tree, walked in lockstep: each pass moves
// every unfinished row one level down, so the rows' node loads are
// independent and overlap (a deep forest's nodes do not fit in cache; one
// row at a time would wait for each load in turn).
template <bool kLeqOnly, typename T, typename F>
inline void FindLeaves(const CompactSplit<T, F>* splits, int32_t root, const T* const* rows,
                       int64_t n, int32_t* leaves) {
  for (int64_t r = 0; r < n; ++r) leaves[r] = root;
  for (bool active = root >= 0; active;) {
    active = false;
    for (int64_t r = 0; r < n; ++r) {
      // Branch-free: a finished row re-reads split 0 and keeps its leaf
      // (which way a split goes is data, and mispredicts cost more than
      // the wasted load).
      const int32_t node = leaves[r];
      const bool done = node < 0;
      const auto& s = splits[done ? 0 : node];
      bool go;
      if constexpr (kLeqOnly) {
        go = rows[r][s.feature] <= s.threshold;  // NaN (or its code) goes false
      } else {
        go = GoTrue(s, rows[r][s.feature]);
      }
      const int32_t next = (&s.next_true)[go ? 0 : 1];
      leaves[r] = done ? node : next;
      active |= !done & (next >= 0);
    }
  }
  for (int64_t r = 0; r < n; ++r) leaves[r] = ~leaves[r];
}

// T: threshold/feature code type (float, uint8_t, uint16_t); F: feature
// index type; W: leaf weight type (float, int8_t, int16_t).
template <typename T, typename F, typename W>
class FlatTrees final : public TreeEvaluator {
  static constexpr bool kBinned = std::is_integral_v<T>;
  static constexpr bool kIntLeaves = std::is_integral_v<W>;
  using Acc = std::conditional_t<kIntLeaves, int64_t, double>;

 public:
  FlatTrees(const TreeEnsemble& e, int threshold_bits, int leaf_bits)
      : roots_(e.roots), leaf_begin_(e.leaf_begin),
        leaf_target_(e.leaf_target.begin(), e.leaf_target.end()),
        targets_(e.targets), features_(e.max_feature + 1), aggregate_(e.aggregate) {
    if constexpr (kBinned) BuildBins(e, threshold_bits);
    leq_only_ = true;
    for (const auto& s : e.splits) {
      CompactSplit<T, F> c{s.next_true, s.next_false, static_cast<F>(s.feature), T{},
                           static_cast<uint8_t>(static_cast<int>(s.mode) |
                                                (s.missing_true ? 8 : 0))};
      if constexpr (kBinned) {
        c.threshold = static_cast<T>(2 * BinOf(s.feature, s.threshold) + 1);
      } else {
        c.threshold = s.threshold;
      }
      leq_only_ &= s.mode == NodeMode::kLeq && !s.missing_true;
      splits_.push_back(c);
    }
    if constexpr (kIntLeaves) {
      const double qmax = (1 << (leaf_bits - 1)) - 1;
      std::vector<float> max_abs(targets_, 0.f);
      for (size_t i = 0; i < e.leaf_weight.size(); ++i) {
        max_abs[e.leaf_target[i]] = std::max(max_abs[e.leaf_target[i]], std::fabs(e.leaf_weight[i]));
      }
      for (float m : max_abs) scale_.push_back(m > 0 ? static_cast<float>(m / qmax) : 1.f);
      for (size_t i = 0; i < e.leaf_weight.size(); ++i) {
        leaf_weight_.push_back(static_cast<W>(
            std::lround(e.leaf_weight[i] / scale_[e.leaf_target[i]])));
      }
    } else {
      leaf_weight_ = e.leaf_weight;
    }
  }

  void Evaluate(const float* x, int64_t rows, int64_t stride, float* scores) const override {
    const int64_t blocks = (rows + kBlockRows - 1) / kBlockRows;
    const bool parallel = rows > kBlockRows &&
                          rows * static_cast<int64_t>(roots_.size()) >= kParallelWork;
#pragma omp parallel for schedule(static) if (parallel)
    for (int64_t b = 0; b < blocks; ++b) {
      const int64_t begin = b * kBlockRows;
      EvaluateBlock(x + begin * stride, std::min(kBlockRows, rows - begin), stride,
                    scores + begin * targets_);
    }
  }

  int64_t bytes() const override {
    int64_t b = splits_.size() * sizeof(CompactSplit<T, F>) + roots_.size() * 4 +
                leaf_begin_.size() * 4 + leaf_target_.size() * 2 +
                leaf_weight_.size() * sizeof(W) + scale_.size() * 4;
    for (const auto& bins : bins_) b += bins.size() * 4 + 4;
    return b;
  }
  int64_t merged_thresholds() const override { return merged_; }

 private:
  void BuildBins(const TreeEnsemble& e, int bits) {
    const size_t cap = ((size_t{1} << bits) - 2) / 2;  // codes 0..2·cap; NaN is the max
    std::vector<std::vector<float>> all(features_);
    for (const auto& s : e.splits) all[s.feature].push_back(s.threshold);
    bins_.resize(features_);
    for (int64_t f = 0; f < features_; ++f) {
      auto& t = all[f];
      std::sort(t.begin(), t.end());
      t.erase(std::unique(t.begin(), t.end()), t.end());
      if (!t.empty()) used_.push_back(f);
      if (t.size() <= cap) {
        bins_[f] = t;
        continue;
      }
      // Too many distinct thresholds for the width: keep `cap` of them evenly
      // by rank; the others snap to the nearest kept one (approximate).
      merged_ += static_cast<int64_t>(t.size() - cap);
      for (size_t k = 0; k < cap; ++k) bins_[f].push_back(t[k * (t.size() - 1) / (cap - 1)]);
    }
  }

  // Index of the kept threshold nearest to t for feature f.
  int64_t BinOf(int32_t f, float t) const {
    const auto& b = bins_[f];
    auto it = std::lower_bound(b.begin(), b.end(), t);
    if (it == b.end()) return static_cast<int64_t>(b.size()) - 1;
    if (*it != t && it != b.begin() && t - *(it - 1) < *it - t) --it;
    return it - b.begin();
  }

  // code(x) = 2·#{kept thresholds < x} + (x is a kept threshold): a
  // threshold t_k has code 2k+1, so every comparison mode gives the same
  // answer on codes as on the (kept) float values.
  T Encode(int64_t f, float x) const {
    if (std::isnan(x)) return kNanCode<T>;
    const auto& b = bins_[f];
    auto it = std::lower_bound(b.begin(), b.end(), x);
    const int64_t lb = it - b.begin();
    return static_cast<T>(2 * lb + (it != b.end() && *it == x ? 1 : 0));
  }

  void EvaluateBlock(const float* x, int64_t n, int64_t stride, float* scores) const {
    Acc init = 0;
    if (aggregate_ == Aggregate::kMin) init = std::numeric_limits<Acc>::max();
    if (aggregate_ == Aggregate::kMax) init = std::numeric_limits<Acc>::lowest();
    std::vector<Acc> acc(n * targets_, init);
    std::vector<T> codes;
    const T* rows[kBlockRows];
    if constexpr (kBinned) {
      codes.resize(n * features_);  // features no split reads stay 0
      for (int64_t r = 0; r < n; ++r) {
        for (int64_t f : used_) codes[r * features_ + f] = Encode(f, x[r * stride + f]);
      }
      for (int64_t r = 0; r < n; ++r) rows[r] = codes.data() + r * features_;
    } else {
      for (int64_t r = 0; r < n; ++r) rows[r] = x + r * stride;
    }
    int32_t leaves[kBlockRows];
    for (int32_t root : roots_) {
      if (leq_only_) {
        FindLeaves<true>(splits_.data(), root, rows, n, leaves);
      } else {
        FindLeaves<false>(splits_.data(), root, rows, n, leaves);
      }
      for (int64_t r = 0; r < n; ++r) {
        const int32_t leaf = leaves[r];
        Acc* a = acc.data() + r * targets_;
        for (int32_t i = leaf_begin_[leaf]; i < leaf_begin_[leaf + 1]; ++i) {
          const Acc w = static_cast<Acc>(leaf_weight_[i]);
          Acc& slot = a[leaf_target_[i]];
          switch (aggregate_) {
            case Aggregate::kMin: slot = std::min(slot, w); break;
            case Aggregate::kMax: slot = std::max(slot, w); break;
            default: slot += w;
          }
        }
      }
    }
    const double trees = std::max<double>(1.0, static_cast<double>(roots_.size()));
    for (int64_t r = 0; r < n; ++r) {
      for (int64_t t = 0; t < targets_; ++t) {
        Acc v = acc[r * targets_ + t];
        if (v == init && init != 0) v = 0;  // MIN/MAX: no tree reached this target
        double d = static_cast<double>(v);
        if constexpr (kIntLeaves) d *= scale_[t];
        if (aggregate_ == Aggregate::kAverage) d /= trees;
        scores[r * targets_ + t] = static_cast<float>(d);
      }
    }
  }

  std::vector<CompactSplit<T, F>> splits_;
  std::vector<int32_t> roots_, leaf_begin_;
  std::vector<uint16_t> leaf_target_;
  std::vector<W> leaf_weight_;
  std::vector<float> scale_;               // per target, integer leaves only
  std::vector<std::vector<float>> bins_;   // per feature, binned only
  std::vector<int64_t> used_;              // features with thresholds, binned only
  int64_t targets_, features_;
  Aggregate aggregate_;
  bool leq_only_ = true;
  int64_t merged_ = 0;
};

template <typename T, typename F>
std::unique_ptr<TreeEvaluator> WithLeaves(const TreeEnsemble& e, TreeQuantization q) {
  if (q.leaf_bits == 8) return std::make_unique<FlatTrees<T, F, int8_t>>(e, q.threshold_bits, 8);
  if (q.leaf_bits == 16) {
    return std::make_unique<FlatTrees<T, F, int16_t>>(e, q.threshold_bits, 16);
  }
  return std::make_unique<FlatTrees<T, F, float>>(e, q.threshold_bits, 0);
}

}  // namespace

absl::StatusOr<std::unique_ptr<TreeEvaluator>> MakeTreeEvaluator(const TreeEnsemble& e,
                                                                 TreeQuantization q) {
  for (int bits : {q.threshold_bits, q.leaf_bits}) {
    if (bits != 0 && bits != 8 && bits != 16) {
      return absl::InvalidArgumentError(absl::StrCat(
          "tree quantization width ", bits, " is not 8 or 16 (0 = float)"));
    }
  }
  if (e.targets > 65535) {
    return absl::UnimplementedError(
        absl::StrCat("tree ensembles support up to 65535 classes/targets; this one has ", e.targets));
  }
  if (q.threshold_bits == 0) return WithLeaves<float, int32_t>(e, q);
  if (e.max_feature >= 65535) {
    return absl::UnimplementedError(absl::StrCat(
        "binned trees support up to 65535 features; the ensemble reads feature ", e.max_feature));
  }
  if (q.threshold_bits == 8) return WithLeaves<uint8_t, uint16_t>(e, q);
  return WithLeaves<uint16_t, uint16_t>(e, q);
}

}  // namespace qs::ml

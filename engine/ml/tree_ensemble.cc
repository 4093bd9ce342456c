// Reading an ONNX-ML tree ensemble into TreeEnsemble's flat arrays.
#include "engine/ml/tree_ensemble.h"

#include <map>
#include <utility>

#include "absl/strings/str_cat.h"
#include "engine/ml/ml_common.h"
#include "engine/status_macros.h"

namespace qs::ml {
namespace {

using Key = std::pair<int64_t, int64_t>;  // (tree id, node id)
// Reading recurses per level; deeper trees (none in practice) are refused.
constexpr int kMaxDepth = 4096;

absl::StatusOr<NodeMode> ParseMode(const Node& node, const std::string& s, size_t i) {
  if (s == "BRANCH_LEQ") return NodeMode::kLeq;
  if (s == "BRANCH_LT") return NodeMode::kLt;
  if (s == "BRANCH_GTE") return NodeMode::kGte;
  if (s == "BRANCH_GT") return NodeMode::kGt;
  if (s == "BRANCH_EQ") return NodeMode::kEq;
  if (s == "BRANCH_NEQ") return NodeMode::kNeq;
  return absl::InvalidArgumentError(absl::StrCat(
      node.Describe(), ": nodes_modes[", i, "] is '", s,
      "'; expected LEAF or BRANCH_LEQ/LT/GTE/GT/EQ/NEQ"));
}

std::vector<std::string> Strings(const Node& node, const std::string& key) {
  auto it = node.attributes.find(key);
  if (it == node.attributes.end()) return {};
  if (auto* v = std::get_if<std::vector<std::string>>(&it->second)) return *v;
  return {};
}

class Reader {
 public:
  Reader(const Node& node, TreeEnsemble& e) : node_(node), e_(e) {}

  absl::Status Read(const char* prefix) {
    tree_ = node_.GetInts("nodes_treeids");
    id_ = node_.GetInts("nodes_nodeids");
    feature_ = node_.GetInts("nodes_featureids");
    true_ = node_.GetInts("nodes_truenodeids");
    false_ = node_.GetInts("nodes_falsenodeids");
    missing_ = node_.GetInts("nodes_missing_value_tracks_true");
    value_ = FloatsAttr(node_, "nodes_values");
    modes_ = Strings(node_, "nodes_modes");
    const size_t n = tree_.size();
    if (n == 0) return Error("nodes_treeids is empty");
    for (auto [name, size] : {std::pair{"nodes_nodeids", id_.size()},
                              {"nodes_featureids", feature_.size()},
                              {"nodes_truenodeids", true_.size()},
                              {"nodes_falsenodeids", false_.size()},
                              {"nodes_values", value_.size()},
                              {"nodes_modes", modes_.size()}}) {
      if (size != n) {
        return Error(absl::StrCat(name, " has ", size, " entries; nodes_treeids has ", n));
      }
    }
    if (!missing_.empty() && missing_.size() != n) {
      return Error("nodes_missing_value_tracks_true must be empty or one per node");
    }
    for (size_t i = 0; i < n; ++i) {
      if (!index_.emplace(Key{tree_[i], id_[i]}, i).second) {
        return Error(absl::StrCat("node (tree ", tree_[i], ", id ", id_[i], ") is defined twice"));
      }
    }
    RETURN_IF_ERROR(ReadLeafWeights(prefix));
    // Trees in order of first appearance; the root is the node no other node
    // of its tree points to.
    std::map<int64_t, std::vector<size_t>> members;
    std::vector<int64_t> order;
    for (size_t i = 0; i < n; ++i) {
      if (members[tree_[i]].empty()) order.push_back(tree_[i]);
      members[tree_[i]].push_back(i);
    }
    std::vector<bool> referenced(n, false);
    for (size_t i = 0; i < n; ++i) {
      if (modes_[i] == "LEAF") continue;
      for (int64_t child : {true_[i], false_[i]}) {
        auto it = index_.find({tree_[i], child});
        if (it == index_.end()) {
          return Error(absl::StrCat("node (tree ", tree_[i], ", id ", id_[i],
                                    ") points to missing node ", child));
        }
        referenced[it->second] = true;
      }
    }
    visited_.assign(n, false);
    for (int64_t t : order) {
      int64_t root = -1;
      for (size_t i : members[t]) {
        if (referenced[i]) continue;
        if (root >= 0) return Error(absl::StrCat("tree ", t, " has more than one root"));
        root = static_cast<int64_t>(i);
      }
      if (root < 0) return Error(absl::StrCat("tree ", t, " has no root (a cycle)"));
      ASSIGN_OR_RETURN(int32_t r, Emit(static_cast<size_t>(root), 0));
      e_.roots.push_back(r);
    }
    return absl::OkStatus();
  }

 private:
  absl::Status Error(const std::string& msg) const {
    return absl::InvalidArgumentError(absl::StrCat(node_.Describe(), ": ", msg));
  }

  absl::Status ReadLeafWeights(const std::string& prefix) {
    const auto trees = node_.GetInts(prefix + "treeids");
    const auto ids = node_.GetInts(prefix + "nodeids");
    const auto targets = node_.GetInts(prefix + "ids");
    const auto weights = FloatsAttr(node_, prefix + "weights");
    if (ids.size() != trees.size() || targets.size() != trees.size() ||
        weights.size() != trees.size()) {
      return Error(absl::StrCat(prefix, "treeids/nodeids/ids/weights differ in length"));
    }
    for (size_t i = 0; i < trees.size(); ++i) {
      if (targets[i] < 0 || targets[i] >= e_.targets) {
        return Error(absl::StrCat(prefix, "ids[", i, "] is ", targets[i], "; expected 0 to ",
                                  e_.targets - 1));
      }
      auto it = index_.find({trees[i], ids[i]});
      if (it == index_.end() || modes_[it->second] != "LEAF") {
        return Error(absl::StrCat(prefix, "nodeids[", i, "] (tree ", trees[i], ", id ", ids[i],
                                  ") is not a LEAF node"));
      }
      leaf_weights_[it->second].emplace_back(static_cast<int32_t>(targets[i]), weights[i]);
    }
    return absl::OkStatus();
  }

  // Appends node i's subtree depth-first; returns its split index or ~leaf.
  absl::StatusOr<int32_t> Emit(size_t i, int depth) {
    if (depth > kMaxDepth) {
      return Error(absl::StrCat("tree ", tree_[i], " is deeper than ", kMaxDepth, " levels"));
    }
    if (visited_[i]) {
      return Error(absl::StrCat("node (tree ", tree_[i], ", id ", id_[i],
                                ") is reached twice (a cycle or shared subtree)"));
    }
    visited_[i] = true;
    if (modes_[i] == "LEAF") {
      const int32_t leaf = static_cast<int32_t>(e_.leaf_begin.size()) - 1;
      for (const auto& [target, w] : leaf_weights_[i]) {
        e_.leaf_target.push_back(target);
        e_.leaf_weight.push_back(w);
      }
      e_.leaf_begin.push_back(static_cast<int32_t>(e_.leaf_weight.size()));
      return ~leaf;
    }
    TreeEnsemble::Split s;
    ASSIGN_OR_RETURN(s.mode, ParseMode(node_, modes_[i], i));
    if (feature_[i] < 0 || feature_[i] >= (int64_t{1} << 30)) {
      return Error(absl::StrCat("nodes_featureids[", i, "] is ", feature_[i]));
    }
    s.feature = static_cast<int32_t>(feature_[i]);
    e_.max_feature = std::max(e_.max_feature, s.feature);
    s.threshold = value_[i];
    s.missing_true = !missing_.empty() && missing_[i] != 0;
    const int32_t self = static_cast<int32_t>(e_.splits.size());
    e_.splits.push_back(s);
    ASSIGN_OR_RETURN(int32_t t, Emit(index_.at({tree_[i], true_[i]}), depth + 1));
    ASSIGN_OR_RETURN(int32_t f, Emit(index_.at({tree_[i], false_[i]}), depth + 1));
    e_.splits[self].next_true = t;
    e_.splits[self].next_false = f;
    return self;
  }

  const Node& node_;
  TreeEnsemble& e_;
  std::vector<int64_t> tree_, id_, feature_, true_, false_, missing_;
  std::vector<float> value_;
  std::vector<std::string> modes_;
  std::map<Key, size_t> index_;
  std::map<size_t, std::vector<std::pair<int32_t, float>>> leaf_weights_;
  std::vector<bool> visited_;
};

}  // namespace

absl::StatusOr<TreeEnsemble> ReadTreeEnsemble(const Node& node, const char* prefix,
                                              int64_t targets) {
  TreeEnsemble e;
  e.targets = targets;
  e.leaf_begin.push_back(0);
  const std::string agg = node.GetString("aggregate_function", "SUM");
  if (agg == "SUM") e.aggregate = Aggregate::kSum;
  else if (agg == "AVERAGE") e.aggregate = Aggregate::kAverage;
  else if (agg == "MIN") e.aggregate = Aggregate::kMin;
  else if (agg == "MAX") e.aggregate = Aggregate::kMax;
  else {
    return absl::InvalidArgumentError(absl::StrCat(
        node.Describe(), ": aggregate_function '", agg, "' is not SUM, AVERAGE, MIN or MAX"));
  }
  Reader reader(node, e);
  RETURN_IF_ERROR(reader.Read(prefix));
  return e;
}

}  // namespace qs::ml

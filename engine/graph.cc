#include "engine/graph.h"

#include <set>
#include <unordered_map>

#include "absl/strings/str_cat.h"

namespace qs {

int64_t Node::GetInt(const std::string& key, int64_t fallback) const {
  auto it = attributes.find(key);
  if (it == attributes.end()) return fallback;
  if (auto* v = std::get_if<int64_t>(&it->second)) return *v;
  if (auto* f = std::get_if<float>(&it->second)) return SaturatingToInt64(*f);
  return fallback;
}

float Node::GetFloat(const std::string& key, float fallback) const {
  auto it = attributes.find(key);
  if (it == attributes.end()) return fallback;
  if (auto* v = std::get_if<float>(&it->second)) return *v;
  if (auto* i = std::get_if<int64_t>(&it->second)) return static_cast<float>(*i);
  return fallback;
}

std::string Node::GetString(const std::string& key,
                            const std::string& fallback) const {
  auto it = attributes.find(key);
  if (it == attributes.end()) return fallback;
  if (auto* v = std::get_if<std::string>(&it->second)) return *v;
  return fallback;
}

std::vector<int64_t> Node::GetInts(const std::string& key,
                                   std::vector<int64_t> fallback) const {
  auto it = attributes.find(key);
  if (it == attributes.end()) return fallback;
  if (auto* v = std::get_if<std::vector<int64_t>>(&it->second)) return *v;
  return fallback;
}

std::vector<float> Node::GetFloats(const std::string& key) const {
  auto it = attributes.find(key);
  if (it == attributes.end()) return {};
  if (auto* v = std::get_if<std::vector<float>>(&it->second)) return *v;
  return {};
}

std::string Node::Describe() const {
  return absl::StrCat(op_type, " node '", name, "'");
}

const Tensor* Graph::FindInitializer(const std::string& value) const {
  auto it = initializers.find(value);
  return it == initializers.end() ? nullptr : &it->second;
}

int64_t Graph::InitializerBytes() const {
  int64_t total = 0;
  for (const auto& [name, t] : initializers) total += t.byte_size();
  return total;
}

absl::Status TopologicalSort(Graph& graph) {
  std::set<std::string> available;
  for (const auto& in : graph.inputs) available.insert(in.name);
  for (const auto& [name, t] : graph.initializers) available.insert(name);

  std::unordered_map<std::string, size_t> producer;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    for (const auto& out : graph.nodes[i].outputs) {
      if (out.empty()) continue;
      if (available.count(out) || producer.count(out)) {
        return absl::InvalidArgumentError(absl::StrCat(
            "value '", out, "' is produced more than once (by ",
            graph.nodes[i].Describe(), ")"));
      }
      producer[out] = i;
    }
  }
  for (const auto& node : graph.nodes) {
    for (const auto& in : node.inputs) {
      if (!in.empty() && !available.count(in) && !producer.count(in)) {
        return absl::InvalidArgumentError(absl::StrCat(
            node.Describe(), " reads '", in,
            "', which is neither a graph input, an initializer nor a node "
            "output (missing initializer?)"));
      }
    }
  }

  // Kahn's algorithm, stable in the original node order.
  std::vector<int> pending(graph.nodes.size(), 0);
  std::unordered_map<std::string, std::vector<size_t>> consumers;
  for (size_t i = 0; i < graph.nodes.size(); ++i) {
    std::set<std::string> seen;
    for (const auto& in : graph.nodes[i].inputs) {
      if (in.empty() || available.count(in) || !seen.insert(in).second) continue;
      ++pending[i];
      consumers[in].push_back(i);
    }
  }
  std::vector<Node> sorted;
  sorted.reserve(graph.nodes.size());
  std::vector<bool> done(graph.nodes.size(), false);
  bool progress = true;
  while (progress) {
    progress = false;
    for (size_t i = 0; i < graph.nodes.size(); ++i) {
      if (done[i] || pending[i] != 0) continue;
      done[i] = true;
      progress = true;
      for (const auto& out : graph.nodes[i].outputs) {
        for (size_t c : consumers[out]) --pending[c];
      }
      sorted.push_back(std::move(graph.nodes[i]));
    }
  }
  if (sorted.size() != graph.nodes.size()) {
    for (size_t i = 0; i < graph.nodes.size(); ++i) {
      if (!done[i]) {
        return absl::InvalidArgumentError(absl::StrCat(
            "the graph has a cycle through ", graph.nodes[i].Describe()));
      }
    }
  }
  graph.nodes = std::move(sorted);
  return absl::OkStatus();
}

}  // namespace qs

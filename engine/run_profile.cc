#include "engine/run_profile.h"

#include <algorithm>
#include <map>

namespace qs {

std::vector<RunProfile::OpType> RunProfile::ByOpType() const {
  std::map<std::string, OpType> by_type;
  for (const Layer& l : layers_) {
    OpType& t = by_type[l.op_type];
    t.op_type = l.op_type;
    ++t.layers;
    t.total_ms += l.total_ms;
  }
  std::vector<OpType> out;
  for (auto& [name, t] : by_type) out.push_back(std::move(t));
  std::stable_sort(out.begin(), out.end(),
                   [](const OpType& a, const OpType& b) { return a.total_ms > b.total_ms; });
  return out;
}

}  // namespace qs

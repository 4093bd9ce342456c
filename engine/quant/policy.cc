#include "engine/quant/policy.h"

namespace qs::quant {

const char* OptimizerName(Optimizer o) {
  switch (o) {
    case Optimizer::kGd: return "gd";
    case Optimizer::kSgd: return "sgd";
    case Optimizer::kAdam: return "adam";
  }
  return "?";
}

const char* LossName(Loss l) {
  return l == Loss::kMse ? "mse" : "cross_entropy";
}

}  // namespace qs::quant

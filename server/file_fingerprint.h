// The observable state of a set of files — path, size and modification time
// of each (following symlinks, as a Kubernetes ConfigMap update swaps one) —
// as one string: equal strings mean "nothing to reload".
#pragma once

#include <string>
#include <vector>

#include "config/server_config.h"

namespace qs {

std::string FingerprintFiles(const std::vector<std::string>& paths);

// The files a model is built from: its .onnx and its dataset files.
std::vector<std::string> ModelFiles(const ModelConfig& model);

}  // namespace qs

#include "tests/conformance/conformance_cases.h"

#include <cmath>
#include <filesystem>
#include <fstream>

#include "absl/strings/str_cat.h"
#include "engine/compiled_model.h"
#include "engine/onnx_importer.h"
#include "engine/onnx_tensor.h"
#include "engine/ops/op_registry.h"
#include "engine/status_macros.h"
#include "onnx/onnx_pb.h"

namespace qs::conformance {
namespace fs = std::filesystem;

namespace {

// ONNX's backend test defaults.
constexpr double kRtol = 1e-3;
constexpr double kAtol = 1e-7;
// Float32 kernels (Winograd/GEMM reassociation) need a little more absolute
// slack near zero than numpy's float64 reference provides.
constexpr double kAtolFloor = 1e-5;

// True when the model's every node is an op the engine claims (read from
// the protobuf directly, so cases of claimed ops that fail import still count).
bool IsClaimed(const std::string& model_path) {
  std::ifstream in(model_path, std::ios::binary);
  onnx::ModelProto model;
  if (!in || !model.ParseFromIstream(&in)) return false;
  for (const auto& n : model.graph().node()) {
    if (n.op_type() != "Constant" && FindOp(n.op_type()) == nullptr) return false;
  }
  return model.graph().node_size() > 0;
}

// Inputs that the engine requires to be constant (a Reshape's shape, Clip's
// bounds) arrive as graph inputs in these tests: bind them as initializers.
void BindConstantOperands(Graph& g, const std::vector<Tensor>& inputs) {
  for (const auto& node : g.nodes) {
    const OpDef* def = FindOp(node.op_type);
    for (int idx : def->constant_inputs) {
      if (!node.HasInput(idx)) continue;
      for (size_t i = 0; i < g.inputs.size(); ++i) {
        if (g.inputs[i].name == node.inputs[idx]) g.initializers[g.inputs[i].name] = inputs[i];
      }
    }
  }
  std::vector<ValueInfo> remaining;
  for (const auto& in : g.inputs) {
    if (!g.initializers.count(in.name)) remaining.push_back(in);
  }
  g.inputs = remaining;
}

absl::Status Compare(const std::string& what, const Tensor& got, const Tensor& want) {
  if (got.shape() != want.shape()) {
    return absl::InternalError(absl::StrCat(what, ": shape ", ShapeToString(got.shape()),
                                            " expected ", ShapeToString(want.shape())));
  }
  if (got.dtype() != want.dtype()) {
    return absl::InternalError(absl::StrCat(what, ": dtype ", DataTypeName(got.dtype()),
                                            " expected ", DataTypeName(want.dtype())));
  }
  for (int64_t i = 0; i < got.num_elements(); ++i) {
    const double g = got.ScalarAsDouble(i), w = want.ScalarAsDouble(i);
    if (std::isnan(w) && std::isnan(g)) continue;
    if (std::fabs(g - w) > std::max(kAtol, kAtolFloor) + kRtol * std::fabs(w)) {
      return absl::InternalError(absl::StrCat(what, ": element ", i, " is ", g,
                                              ", expected ", w));
    }
  }
  return absl::OkStatus();
}

std::vector<std::string> SortedFiles(const std::string& dir, const std::string& prefix) {
  std::vector<std::string> files;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind(prefix, 0) == 0) files.push_back(e.path().string());
  }
  // input_10.pb sorts after input_9.pb: order by the number.
  std::sort(files.begin(), files.end(), [&](const std::string& a, const std::string& b) {
    auto num = [&](const std::string& p) {
      std::string f = fs::path(p).stem().string();
      return std::stoi(f.substr(prefix.size()));
    };
    return num(a) < num(b);
  });
  return files;
}

}  // namespace

std::vector<Case> ClaimedCases() {
  std::vector<Case> cases;
  if (!fs::exists(kNodeTestRoot)) return cases;
  for (const auto& e : fs::directory_iterator(kNodeTestRoot)) {
    if (!IsClaimed((e.path() / "model.onnx").string())) continue;
    cases.push_back({e.path().filename().string(), e.path().string()});
  }
  std::sort(cases.begin(), cases.end(),
            [](const Case& a, const Case& b) { return a.name < b.name; });
  return cases;
}

const std::map<std::string, std::string>& KnownSkips() {
  static const auto* skips = [] {
    auto* m = new std::map<std::string, std::string>();
    std::ifstream in(QS_SOURCE_DIR "/tests/conformance/skips.txt");
    std::string line;
    while (std::getline(in, line)) {
      if (line.empty() || line[0] == '#') continue;
      auto colon = line.find(':');
      if (colon == std::string::npos) continue;
      std::string reason = line.substr(colon + 1);
      reason.erase(0, reason.find_first_not_of(' '));
      (*m)[line.substr(0, colon)] = reason;
    }
    return m;
  }();
  return *skips;
}

absl::Status RunCase(const Case& c) {
  ASSIGN_OR_RETURN(Graph graph, ImportOnnxFile(c.dir + "/model.onnx"));
  std::vector<std::string> sets = SortedFiles(c.dir, "test_data_set_");
  if (sets.empty()) return absl::NotFoundError("no test_data_set_* directory");
  for (const auto& set : sets) {
    std::vector<Tensor> inputs, expected;
    for (const auto& f : SortedFiles(set, "input_")) {
      ASSIGN_OR_RETURN(Tensor t, ReadTensorProtoFile(f));
      inputs.push_back(std::move(t));
    }
    for (const auto& f : SortedFiles(set, "output_")) {
      ASSIGN_OR_RETURN(Tensor t, ReadTensorProtoFile(f));
      expected.push_back(std::move(t));
    }
    Graph g = graph;
    if (inputs.size() != g.inputs.size()) {
      return absl::InternalError(absl::StrCat("test data has ", inputs.size(),
                                              " inputs, model ", g.inputs.size()));
    }
    std::vector<Tensor> runtime;
    std::vector<std::string> names;
    for (const auto& in : g.inputs) names.push_back(in.name);
    BindConstantOperands(g, inputs);
    for (size_t i = 0; i < names.size(); ++i) {
      if (!g.initializers.count(names[i])) runtime.push_back(inputs[i]);
    }
    ASSIGN_OR_RETURN(auto model, CompiledModel::Compile(std::move(g)));
    ASSIGN_OR_RETURN(std::vector<Tensor> outputs, model->RunOrdered(runtime));
    if (outputs.size() != expected.size()) {
      return absl::InternalError(absl::StrCat("got ", outputs.size(), " outputs, expected ",
                                              expected.size()));
    }
    for (size_t i = 0; i < outputs.size(); ++i) {
      RETURN_IF_ERROR(Compare(absl::StrCat(fs::path(set).filename().string(), " output ", i),
                              outputs[i], expected[i]));
    }
  }
  return absl::OkStatus();
}

}  // namespace qs::conformance

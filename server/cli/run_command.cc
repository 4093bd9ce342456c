// quantserve run --model FILE.onnx --input NAME=FILE [...] --output-dir DIR
#include <cstdio>
#include <filesystem>

#include "engine/compiled_model.h"
#include "engine/data/npy.h"
#include "engine/onnx_importer.h"
#include "engine/onnx_tensor.h"
#include "server/cli/commands.h"

namespace qs::cli {
namespace {

absl::StatusOr<Tensor> ReadInputFile(const std::string& path) {
  if (std::filesystem::path(path).extension() == ".pb") return ReadTensorProtoFile(path);
  return ReadNpy(path);
}

// Output names may hold characters a file name cannot ("/"); replace them.
std::string FileNameFor(const std::string& output) {
  std::string s = output;
  for (char& c : s) {
    if (c == '/' || c == '\\' || c == '\0') c = '_';
  }
  return s.empty() || s == "." || s == ".." ? "_" + s : s;
}

int Fail(const absl::Status& s) {
  std::fprintf(stderr, "quantserve run: %s\n", std::string(s.ToString()).c_str());
  return 1;
}

}  // namespace

int Run(const RunArgs& args) {
  auto graph = ImportOnnxFile(args.model);
  if (!graph.ok()) return Fail(graph.status());
  auto model = CompiledModel::Compile(std::move(*graph));
  if (!model.ok()) return Fail(model.status());
  NamedTensors inputs;
  for (const std::string& arg : args.inputs) {
    const auto eq = arg.find('=');
    if (eq == std::string::npos || eq == 0) {
      return Fail(absl::InvalidArgumentError("--input '" + arg + "' is not NAME=FILE"));
    }
    auto t = ReadInputFile(arg.substr(eq + 1));
    if (!t.ok()) return Fail(t.status());
    inputs.emplace_back(arg.substr(0, eq), std::move(*t));
  }
  auto outputs = (*model)->Run(inputs);
  if (!outputs.ok()) return Fail(outputs.status());
  std::error_code ec;
  std::filesystem::create_directories(args.output_dir, ec);
  if (ec) {
    return Fail(absl::InvalidArgumentError("cannot create --output-dir '" + args.output_dir +
                                           "': " + ec.message()));
  }
  for (size_t i = 0; i < outputs->size(); ++i) {
    const std::string& name = (*model)->outputs()[i].name;
    const std::string path = args.output_dir + "/" + FileNameFor(name) + ".npy";
    absl::Status st = WriteNpy(path, (*outputs)[i]);
    if (!st.ok()) return Fail(st);
    std::printf("%s %s -> %s\n", name.c_str(), ShapeToString((*outputs)[i].shape()).c_str(),
                path.c_str());
  }
  return 0;
}

}  // namespace qs::cli

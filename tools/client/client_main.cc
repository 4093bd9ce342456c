// quantserve-client: sends Fashion-MNIST or .npy images to a running
// quantserve and prints the predictions, the accuracy it observed (total and
// per class), throughput and latency percentiles. Exit code 1 if any request
// (or the metadata lookup) failed.
#include <CLI/CLI.hpp>
#include <grpcpp/grpcpp.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <string>
#include <vector>

#include "engine/data/dataset.h"
#include "quantserve/v1/inference.grpc.pb.h"
#include "tools/client/client_report.h"
#include "tools/client/load_runner.h"

namespace {

namespace v1 = quantserve::v1;
using qs::client::StatusCodeName;

const std::vector<std::string> kFashionMnistClasses = {
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat",
    "Sandal",      "Shirt",   "Sneaker",  "Bag",   "Ankle boot"};

struct Args {
  std::string address, model, variant;
  bool fashion_mnist = false;
  std::string split = "test";
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string npy_inputs, npy_labels;
  int64_t count = 0, batch = 16, timeout_ms = 10000, show = 5;
  int concurrency = 4;
  bool json = false;
  bool feedback = false;
};

int Fail(const std::string& what) {
  std::cerr << "quantserve-client: " << what << "\n";
  return 1;
}

std::string Join(const std::vector<std::string>& names) {
  std::string s;
  for (const auto& n : names) s += (s.empty() ? "'" : ", '") + n + "'";
  return s;
}

int Run(const Args& args) {
  grpc::ChannelArguments channel_args;
  channel_args.SetMaxReceiveMessageSize(-1);
  auto channel = grpc::CreateCustomChannel(args.address, grpc::InsecureChannelCredentials(),
                                           channel_args);
  // The input's name and sample shape come from the server.
  auto fetched = qs::client::FetchModelMetadata(channel, args.address, args.model, args.timeout_ms);
  if (!fetched.ok()) return Fail(std::string(fetched.status().message()));
  const v1::ModelMetadata& meta = *fetched;
  if (meta.inputs_size() != 1 || meta.inputs(0).datatype() != v1::FP32) {
    return Fail("model '" + args.model + "' must have exactly one FP32 input; it has " +
                std::to_string(meta.inputs_size()) + " input(s)");
  }
  const auto& dims = meta.inputs(0).shape();
  qs::Shape sample(dims.begin() + (dims.empty() ? 0 : 1), dims.end());
  for (int64_t d : sample) {
    if (d < 0) return Fail("model '" + args.model + "' input has a dynamic non-batch dimension");
  }
  std::vector<std::string> variants;
  for (const auto& v : meta.variants()) variants.push_back(v.name());
  if (!args.variant.empty() &&
      std::find(variants.begin(), variants.end(), args.variant) == variants.end()) {
    return Fail("NOT_FOUND: model '" + args.model + "' has no variant '" + args.variant +
                "' (variants: " + Join(variants) + ")");
  }

  qs::DatasetSpec spec;
  spec.limit = args.count;
  if (args.fashion_mnist) {
    const std::string prefix = args.data_dir + "/" + (args.split == "train" ? "train" : "t10k");
    spec.format = qs::DatasetSpec::Format::kIdx;
    spec.inputs = prefix + "-images-idx3-ubyte.gz";
    spec.labels = prefix + "-labels-idx1-ubyte.gz";
  } else {
    spec.format = qs::DatasetSpec::Format::kNpy;
    spec.inputs = args.npy_inputs;
    spec.labels = args.npy_labels;
  }
  auto data = qs::LoadDataset(spec, sample);
  if (!data.ok()) return Fail(data.status().ToString());
  if (data->size() == 0) return Fail("the dataset has no samples");

  qs::client::LoadOptions options;
  options.model = args.model;
  options.variant = args.variant;
  options.input_name = meta.inputs(0).name();
  options.batch = args.batch;
  options.concurrency = args.concurrency;
  options.timeout_ms = args.timeout_ms;
  options.top_k = 1;  // the top-1 class is all the client scores
  options.feedback = args.feedback;
  options.id_prefix = "qc-" + std::to_string(getpid()) + "-" +
                      std::to_string(std::chrono::duration_cast<std::chrono::milliseconds>(
                                         std::chrono::system_clock::now().time_since_epoch())
                                         .count()) +
                      "-";
  if (args.feedback && data->labels.num_elements() == 0) {
    return Fail("--feedback needs labels (--fashion-mnist, or --npy-labels)");
  }
  const qs::client::LoadResult run = qs::client::RunLoad(channel, *data, options);

  const std::string variant = args.variant.empty() ? meta.default_variant() : args.variant;
  const qs::client::Summary summary = qs::client::Summarize(args.model, variant, run, *data);
  if (args.json) {
    std::cout << qs::client::SummaryJson(summary, run).dump() << std::endl;
  } else {
    const auto& names = args.fashion_mnist ? kFashionMnistClasses : std::vector<std::string>{};
    qs::client::PrintReport(std::cout, summary, run, *data, names, args.show);
  }
  qs::client::PrintErrors(std::cerr, run);
  return run.error_count() > 0 ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"quantserve-client: sends images to a running quantserve and reports the "
               "predictions, accuracy, throughput and latency it observed"};
  Args args;
  app.add_option("--address", args.address, "Server address HOST:PORT")->required();
  app.add_option("--model", args.model, "Model name")->required();
  app.add_option("--variant", args.variant, "Variant (default: the model's default variant)");
  auto* fmnist = app.add_flag("--fashion-mnist", args.fashion_mnist,
                              "Send Fashion-MNIST images (IDX, /255) with their labels");
  app.add_option("--split", args.split, "Fashion-MNIST split")
      ->capture_default_str()
      ->check(CLI::IsMember({"test", "train"}))
      ->needs(fmnist);
  app.add_option("--data-dir", args.data_dir, "Directory of the Fashion-MNIST .gz files")
      ->capture_default_str()
      ->needs(fmnist);
  auto* npy = app.add_option("--npy-inputs", args.npy_inputs,
                             ".npy of samples [N, ...]; integer dtypes are scaled by 1/255, "
                             "float ones are sent as they are")
                  ->check(CLI::ExistingFile)
                  ->excludes(fmnist);
  app.add_option("--npy-labels", args.npy_labels, ".npy of integer labels [N]")
      ->check(CLI::ExistingFile)
      ->needs(npy);
  app.add_option("--count", args.count, "Send only the first N samples (0 = all)")
      ->check(CLI::NonNegativeNumber);
  app.add_option("--batch", args.batch, "Samples per request")->capture_default_str()->check(CLI::Range(1, 1 << 20));
  app.add_option("--concurrency", args.concurrency, "Requests in flight")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  app.add_option("--timeout-ms", args.timeout_ms, "Deadline of each request")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{86400000}));
  app.add_option("--show", args.show, "Predictions to list before the table")
      ->capture_default_str()
      ->check(CLI::NonNegativeNumber);
  app.add_flag("--json", args.json, "Print one JSON object instead of the report");
  app.add_flag("--feedback", args.feedback,
               "Report each answered request's true labels with the Feedback RPC "
               "(live accuracy per variant in the server's metrics)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;  // --help is 0; every usage error is 2
  }
  if (!args.fashion_mnist && args.npy_inputs.empty()) {
    std::cerr << "quantserve-client: give --fashion-mnist or --npy-inputs FILE.npy\n";
    return 2;
  }
  return Run(args);
}

#include "config/server_config.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "config/overrides.h"
#include "config/quant_policy_reader.h"
#include "config/value_readers.h"
#include "config/yaml_reader.h"
#include "engine/status_macros.h"

namespace qs {
namespace {

namespace fs = std::filesystem;
using config_internal::CheckModelFile;
using config_internal::CheckReadableFile;
using config_internal::MapReader;
using config_internal::ParseVariant;
using config_internal::ReadAddress;
using config_internal::ReadName;
using config_internal::ReadPath;
using config_internal::Value;
using config_internal::YamlReader;

constexpr int64_t kMaxThreads = 1024;
constexpr int64_t kMinMessageBytes = 1024;
// 2 GiB - 1: gRPC takes message limits as int.
constexpr int64_t kMaxMessageBytes = 2147483647;
constexpr int64_t kMaxEvalBatchSize = 4096;
constexpr int64_t kMaxShutdownGraceMs = 600000;  // 10 minutes
constexpr int64_t kMaxTensorElements = int64_t{1} << 31;
constexpr int64_t kMaxBatchRows = int64_t{1} << 20;
constexpr int64_t kMaxBatchSize = 4096;
constexpr int64_t kMaxQueueDelayUs = 1000000;  // 1 s
constexpr int64_t kMaxQueueRows = int64_t{1} << 20;
constexpr int64_t kMaxBatchWorkers = 64;
constexpr int64_t kMaxDriftQueue = 65536;
constexpr int64_t kMaxWatchConfigMs = 3600000;  // 1 hour
constexpr int64_t kMaxConnectionAgeMs = 86400000;  // 1 day
// gRPC's sync server needs a few threads of its own (pollers) to accept
// calls at all.
constexpr int64_t kMinConcurrentCalls = 16;
constexpr int64_t kMaxConcurrentCalls = 65536;
constexpr int64_t kMaxActivationCacheMb = int64_t{1} << 20;  // 1 TiB
constexpr int64_t kMaxFeedbackCapacity = int64_t{1} << 20;

// An optional key whose null value (`evaluation:` with nothing under it)
// counts as absent.
std::optional<Value> FindSection(const MapReader& map, absl::string_view key) {
  std::optional<Value> value = map.Find(key);
  if (value.has_value() && value->node.IsNull()) return std::nullopt;
  return value;
}

absl::StatusOr<TlsConfig> ParseTls(const YamlReader& reader, const Value& v,
                                   const fs::path& base_dir) {
  ASSIGN_OR_RETURN(MapReader map,
                   MapReader::Create(reader, v, {"cert", "key", "client_ca"},
                                     "TLS settings"));
  TlsConfig tls;
  ASSIGN_OR_RETURN(Value cert, map.Require("cert"));
  ASSIGN_OR_RETURN(tls.cert_file, ReadPath(reader, cert, base_dir));
  RETURN_IF_ERROR(
      CheckReadableFile(reader, cert, tls.cert_file, "TLS certificate"));
  ASSIGN_OR_RETURN(Value key, map.Require("key"));
  ASSIGN_OR_RETURN(tls.key_file, ReadPath(reader, key, base_dir));
  RETURN_IF_ERROR(
      CheckReadableFile(reader, key, tls.key_file, "TLS private key"));
  if (auto ca = map.Find("client_ca")) {
    ASSIGN_OR_RETURN(tls.client_ca_file, ReadPath(reader, *ca, base_dir));
    RETURN_IF_ERROR(CheckReadableFile(reader, *ca, tls.client_ca_file,
                                      "TLS client CA"));
  }
  return tls;
}

absl::Status ParseServerSection(const YamlReader& reader, const Value& v,
                                const fs::path& base_dir,
                                ServerSection* server) {
  ASSIGN_OR_RETURN(
      MapReader map,
      MapReader::Create(reader, v,
                        {"grpc_address", "metrics_address", "worker_threads",
                         "intra_op_threads", "max_message_bytes",
                         "shutdown_grace_ms", "access_log", "tls",
                         "max_tensor_elements", "max_batch_rows",
                         "nan_policy", "watch_config_ms", "model_roots",
                         "data_roots", "max_connection_age_ms",
                         "max_concurrent_calls", "activation_cache_mb"},
                        "the server section"));
  if (auto a = map.Find("grpc_address")) {
    ASSIGN_OR_RETURN(server->grpc_address,
                     ReadAddress(reader, *a, /*allow_unix=*/true));
  }
  if (auto a = map.Find("metrics_address")) {
    ASSIGN_OR_RETURN(server->metrics_address,
                     ReadAddress(reader, *a, /*allow_unix=*/false));
  }
  RETURN_IF_ERROR(map.GetInt("worker_threads", 0, kMaxThreads,
                             &server->worker_threads));
  RETURN_IF_ERROR(map.GetInt("intra_op_threads", 0, kMaxThreads,
                             &server->intra_op_threads));
  RETURN_IF_ERROR(map.GetInt("max_message_bytes", kMinMessageBytes,
                             kMaxMessageBytes, &server->max_message_bytes));
  RETURN_IF_ERROR(map.GetInt("shutdown_grace_ms", 0, kMaxShutdownGraceMs,
                             &server->shutdown_grace_ms));
  RETURN_IF_ERROR(map.GetBool("access_log", &server->access_log));
  if (auto t = FindSection(map, "tls")) {
    ASSIGN_OR_RETURN(server->tls, ParseTls(reader, *t, base_dir));
  }
  RETURN_IF_ERROR(map.GetInt("max_tensor_elements", 1, kMaxTensorElements,
                             &server->max_tensor_elements));
  RETURN_IF_ERROR(map.GetInt("max_batch_rows", 1, kMaxBatchRows,
                             &server->max_batch_rows));
  RETURN_IF_ERROR(map.GetInt("watch_config_ms", 0, kMaxWatchConfigMs,
                             &server->watch_config_ms));
  RETURN_IF_ERROR(map.GetInt("max_connection_age_ms", 0, kMaxConnectionAgeMs,
                             &server->max_connection_age_ms));
  RETURN_IF_ERROR(map.GetInt("max_concurrent_calls", 0, kMaxConcurrentCalls,
                             &server->max_concurrent_calls));
  RETURN_IF_ERROR(map.GetInt("activation_cache_mb", 0, kMaxActivationCacheMb,
                             &server->activation_cache_mb));
  if (server->max_concurrent_calls != 0 &&
      server->max_concurrent_calls < kMinConcurrentCalls) {
    return reader.Error(*map.Find("max_concurrent_calls"),
                        absl::StrCat("must be 0 (automatic) or ", kMinConcurrentCalls,
                                     "..", kMaxConcurrentCalls, ", got ",
                                     server->max_concurrent_calls));
  }
  if (auto r = map.Find("model_roots")) {
    ASSIGN_OR_RETURN(server->model_roots, ReadRoots(reader, *r, base_dir, "model"));
  }
  if (auto r = map.Find("data_roots")) {
    ASSIGN_OR_RETURN(server->data_roots, ReadRoots(reader, *r, base_dir, "data"));
  }
  if (auto n = map.Find("nan_policy")) {
    ASSIGN_OR_RETURN(std::string policy,
                     reader.ReadEnum(*n, {"reject", "allow"}));
    server->nan_policy =
        policy == "allow" ? NanPolicy::kAllow : NanPolicy::kReject;
  }
  return absl::OkStatus();
}

absl::StatusOr<BatchingConfig> ParseBatching(const YamlReader& reader,
                                             const Value& v) {
  ASSIGN_OR_RETURN(MapReader map,
                   MapReader::Create(reader, v,
                                     {"max_batch_size", "max_queue_delay_us",
                                      "max_queue_rows", "workers", "warm_up"},
                                     "batching settings"));
  BatchingConfig batching;
  RETURN_IF_ERROR(map.GetInt("max_batch_size", 1, kMaxBatchSize,
                             &batching.max_batch_size));
  RETURN_IF_ERROR(map.GetInt("max_queue_delay_us", 0, kMaxQueueDelayUs,
                             &batching.max_queue_delay_us));
  RETURN_IF_ERROR(map.GetInt("max_queue_rows", 1, kMaxQueueRows,
                             &batching.max_queue_rows));
  RETURN_IF_ERROR(map.GetInt("workers", 0, kMaxBatchWorkers,
                             &batching.workers));
  RETURN_IF_ERROR(map.GetBool("warm_up", &batching.warm_up));
  // A full batch must fit in the queue, or it could never form.
  if (batching.max_queue_rows < batching.max_batch_size) {
    if (auto rows = map.Find("max_queue_rows")) {
      return reader.Error(
          *rows, absl::StrCat("value ", batching.max_queue_rows,
                              " is less than max_batch_size (",
                              batching.max_batch_size,
                              "), so a full batch could never be queued "
                              "(allowed: ",
                              batching.max_batch_size, "..", kMaxQueueRows,
                              ")"));
    }
    ASSIGN_OR_RETURN(Value size, map.Require("max_batch_size"));
    return reader.Error(
        size, absl::StrCat("value ", batching.max_batch_size,
                           " exceeds max_queue_rows (",
                           batching.max_queue_rows,
                           " by default), so a full batch could never be "
                           "queued; raise max_queue_rows to at least ",
                           batching.max_batch_size));
  }
  return batching;
}

// `variants` are the model's, already parsed (the reference must be one).
absl::StatusOr<DriftConfig> ParseDrift(const YamlReader& reader, const Value& v,
                                       const std::vector<VariantConfig>& variants) {
  ASSIGN_OR_RETURN(MapReader map,
                   MapReader::Create(reader, v,
                                     {"sample_rate", "mode", "reference",
                                      "queue_capacity", "feedback_capacity"},
                                     "drift settings"));
  DriftConfig drift;
  if (auto r = map.Find("sample_rate")) {
    ASSIGN_OR_RETURN(drift.sample_rate, reader.ReadDouble(*r));
    if (!(drift.sample_rate >= 0 && drift.sample_rate <= 1)) {
      return reader.Error(*r, absl::StrCat("value ", drift.sample_rate,
                                           " is not a fraction (allowed: 0..1)"));
    }
  }
  if (auto m = map.Find("mode")) {
    ASSIGN_OR_RETURN(std::string mode, reader.ReadEnum(*m, {"shadow", "mirror"}));
    drift.mode = mode == "mirror" ? DriftConfig::Mode::kMirror
                                  : DriftConfig::Mode::kShadow;
  }
  RETURN_IF_ERROR(map.GetInt("queue_capacity", 1, kMaxDriftQueue,
                             &drift.queue_capacity));
  RETURN_IF_ERROR(map.GetInt("feedback_capacity", 0, kMaxFeedbackCapacity,
                             &drift.feedback_capacity));
  if (auto r = map.Find("reference")) {
    ASSIGN_OR_RETURN(drift.reference, reader.ReadString(*r));
    std::vector<absl::string_view> unquantized;
    const VariantConfig* named = nullptr;
    for (const VariantConfig& variant : variants) {
      if (variant.unquantized()) unquantized.push_back(variant.name);
      if (variant.name == drift.reference) named = &variant;
    }
    const std::string choices =
        unquantized.empty() ? "the model has none"
                            : absl::StrCat("unquantized: ", absl::StrJoin(unquantized, ", "));
    if (named == nullptr) {
      return reader.Error(*r, absl::StrCat("\"", drift.reference,
                                           "\" names no variant of this model (", choices, ")"));
    }
    if (!named->unquantized()) {
      return reader.Error(*r, absl::StrCat("variant \"", drift.reference,
                                           "\" is quantized; the drift reference must be an "
                                           "unquantized variant (", choices, ")"));
    }
  } else if (drift.sample_rate > 0) {
    bool has_reference = false;
    for (const VariantConfig& variant : variants) has_reference |= variant.unquantized();
    if (!has_reference) {
      ASSIGN_OR_RETURN(Value rate, map.Require("sample_rate"));
      return reader.Error(rate, "drift needs an unquantized variant to compare with, and this "
                                "model has none; add a variant such as `- name: fp32`");
    }
  }
  return drift;
}

const std::vector<absl::string_view> kDatasetKeys = {
    "format", "inputs", "labels", "scale", "offset", "limit"};

absl::StatusOr<DatasetConfig> ParseDataset(const YamlReader& reader,
                                           const Value& v,
                                           const fs::path& base_dir,
                                           const std::vector<std::string>& roots,
                                           bool labels_required) {
  ASSIGN_OR_RETURN(MapReader map,
                   MapReader::Create(reader, v, kDatasetKeys, "a dataset"));
  DatasetConfig dataset;
  if (auto f = map.Find("format")) {
    ASSIGN_OR_RETURN(std::string format, reader.ReadEnum(*f, {"idx", "npy"}));
    dataset.format = format == "npy" ? DatasetConfig::Format::kNpy
                                     : DatasetConfig::Format::kIdx;
  }
  ASSIGN_OR_RETURN(Value inputs, map.Require("inputs"));
  if (inputs.node.IsMap()) {
    if (dataset.format != DatasetConfig::Format::kNpy) {
      return reader.Error(inputs, "a map of model inputs to files needs format: npy");
    }
    if (inputs.node.size() == 0) return reader.Error(inputs, "no input files given");
    for (const auto& entry : inputs.node) {
      const std::string name = entry.first.as<std::string>();
      const Value file{entry.second, config_internal::ChildPath(inputs.path, name),
                       config_internal::BestMark(entry.second, entry.first.Mark())};
      ASSIGN_OR_RETURN(std::string path, ReadPath(reader, file, base_dir));
      RETURN_IF_ERROR(CheckUnderRoots(reader, file, path, roots, "data"));
      dataset.named_inputs.emplace_back(name, path);
    }
  } else {
    ASSIGN_OR_RETURN(dataset.inputs, ReadPath(reader, inputs, base_dir));
    RETURN_IF_ERROR(CheckUnderRoots(reader, inputs, dataset.inputs, roots, "data"));
  }
  std::optional<Value> labels = map.Find("labels");
  if (labels_required && !labels.has_value()) {
    ASSIGN_OR_RETURN(labels, map.Require("labels"));
  }
  if (labels.has_value()) {
    ASSIGN_OR_RETURN(dataset.labels, ReadPath(reader, *labels, base_dir));
    RETURN_IF_ERROR(CheckUnderRoots(reader, *labels, dataset.labels, roots, "data"));
  }
  if (auto s = map.Find("scale")) {
    ASSIGN_OR_RETURN(dataset.scale, reader.ReadFloat(*s));
    if (dataset.scale == 0.0f) {
      return reader.Error(*s, "scale must not be 0");
    }
  }
  RETURN_IF_ERROR(map.GetFloat("offset", &dataset.offset));
  RETURN_IF_ERROR(map.GetInt("limit", 0, std::numeric_limits<int64_t>::max(),
                             &dataset.limit));
  return dataset;
}

absl::StatusOr<std::vector<VariantConfig>> ParseVariants(
    const YamlReader& reader, const Value& v) {
  ASSIGN_OR_RETURN(std::vector<Value> items, reader.ReadList(v, "variants"));
  if (items.empty()) {
    return reader.Error(v, "at least one variant is required");
  }
  std::vector<VariantConfig> variants;
  std::map<std::string, int> first_line;  // name -> 1-based line
  for (const Value& item : items) {
    ASSIGN_OR_RETURN(VariantConfig variant, ParseVariant(reader, item));
    // ParseVariant has checked the map and its `name`.
    const YAML::Node name_node = item.node["name"];
    const Value name_value{name_node,
                           config_internal::ChildPath(item.path, "name"),
                           config_internal::BestMark(name_node, item.mark)};
    auto [it, inserted] =
        first_line.emplace(variant.name, name_value.mark.line + 1);
    if (!inserted) {
      return reader.Error(name_value,
                          absl::StrCat("duplicate variant name \"",
                                       variant.name, "\" (first defined at line ",
                                       it->second, ")"));
    }
    variants.push_back(std::move(variant));
  }
  return variants;
}

// A quantized variant needs calibration data, which must not be the
// evaluation set (its accuracy would then be measured on the data it was
// tuned on).
absl::Status CheckCalibration(const YamlReader& reader, const Value& model_v,
                              const std::optional<Value>& calibration_v,
                              const ModelConfig& model) {
  if (!model.calibration.has_value()) {
    for (size_t i = 0; i < model.variants.size(); ++i) {
      if (!model.variants[i].quantized()) continue;
      return reader.Error(
          model_v.mark, config_internal::ChildPath(model_v.path, "calibration"),
          absl::StrCat(
              "required by quantized variant \"", model.variants[i].name,
              "\" (",
              config_internal::IndexPath(
                  config_internal::ChildPath(model_v.path, "variants"), i),
              "); add a calibration dataset, e.g. the training split"));
    }
    return absl::OkStatus();
  }
  if (!model.evaluation.has_value() || model.calibration->inputs.empty()) {
    return absl::OkStatus();
  }
  const std::string& calibration = model.calibration->inputs;
  const std::string& evaluation = model.evaluation->inputs;
  std::error_code ec;
  if (calibration != evaluation &&
      !fs::equivalent(calibration, evaluation, ec)) {
    return absl::OkStatus();
  }
  ASSIGN_OR_RETURN(MapReader map, MapReader::Create(reader, *calibration_v,
                                                    kDatasetKeys, "a dataset"));
  ASSIGN_OR_RETURN(Value inputs, map.Require("inputs"));
  return reader.Error(
      inputs, absl::StrCat("calibration and evaluation use the same images (\"",
                           calibration,
                           "\"); calibrate on other data, e.g. the training "
                           "split, so that accuracy is not measured on the "
                           "calibration set"));
}

// `first_line` maps the model names seen so far to their 1-based lines.
absl::StatusOr<ModelConfig> ParseModel(const YamlReader& reader,
                                       const Value& v, const fs::path& base_dir,
                                       const ServerSection& server,
                                       std::map<std::string, int>* first_line) {
  ASSIGN_OR_RETURN(MapReader map,
                   MapReader::Create(reader, v,
                                     {"name", "path", "default_variant",
                                      "eval_batch_size", "evaluation",
                                      "calibration", "variants", "batching",
                                      "drift"},
                                     "a model"));
  ModelConfig model;
  ASSIGN_OR_RETURN(Value name, map.Require("name"));
  ASSIGN_OR_RETURN(model.name, ReadName(reader, name, "model name"));
  auto [seen, inserted] = first_line->emplace(model.name, name.mark.line + 1);
  if (!inserted) {
    return reader.Error(name, absl::StrCat("duplicate model name \"",
                                           model.name,
                                           "\" (first defined at line ",
                                           seen->second, ")"));
  }
  ASSIGN_OR_RETURN(Value path, map.Require("path"));
  ASSIGN_OR_RETURN(model.path, ReadPath(reader, path, base_dir));
  RETURN_IF_ERROR(CheckUnderRoots(reader, path, model.path, server.model_roots, "model"));
  RETURN_IF_ERROR(CheckModelFile(reader, path, model.path));
  RETURN_IF_ERROR(map.GetInt("eval_batch_size", 1, kMaxEvalBatchSize,
                             &model.eval_batch_size));
  if (auto b = FindSection(map, "batching")) {
    ASSIGN_OR_RETURN(model.batching, ParseBatching(reader, *b));
  }
  if (auto e = FindSection(map, "evaluation")) {
    ASSIGN_OR_RETURN(model.evaluation,
                     ParseDataset(reader, *e, base_dir, server.data_roots,
                                  /*labels_required=*/true));
  }
  const std::optional<Value> calibration = FindSection(map, "calibration");
  if (calibration) {
    ASSIGN_OR_RETURN(model.calibration,
                     ParseDataset(reader, *calibration, base_dir, server.data_roots,
                                  /*labels_required=*/false));
  }
  if (auto variants = FindSection(map, "variants")) {
    ASSIGN_OR_RETURN(model.variants, ParseVariants(reader, *variants));
  } else {
    model.variants.push_back(VariantConfig{"fp32"});
  }
  RETURN_IF_ERROR(CheckCalibration(reader, v, calibration, model));
  model.default_variant = model.variants.front().name;
  if (auto d = map.Find("default_variant")) {
    ASSIGN_OR_RETURN(model.default_variant, reader.ReadString(*d));
    bool found = false;
    std::vector<absl::string_view> names;
    for (const VariantConfig& variant : model.variants) {
      names.push_back(variant.name);
      found = found || variant.name == model.default_variant;
    }
    if (!found) {
      return reader.Error(
          *d, absl::StrCat("\"", model.default_variant,
                           "\" names no variant of model \"", model.name,
                           "\" (variants: ", absl::StrJoin(names, ", "), ")"));
    }
  }
  if (auto d = FindSection(map, "drift")) {
    ASSIGN_OR_RETURN(model.drift, ParseDrift(reader, *d, model.variants));
  }
  return model;
}

}  // namespace

const char* DriftModeName(DriftConfig::Mode mode) {
  return mode == DriftConfig::Mode::kMirror ? "mirror" : "shadow";
}

const char* DatasetFormatName(DatasetConfig::Format format) {
  switch (format) {
    case DatasetConfig::Format::kIdx:
      return "idx";
    case DatasetConfig::Format::kNpy:
      return "npy";
  }
  return "unknown";
}

const char* NanPolicyName(NanPolicy policy) {
  switch (policy) {
    case NanPolicy::kReject:
      return "reject";
    case NanPolicy::kAllow:
      return "allow";
  }
  return "unknown";
}

int EffectiveMaxConcurrentCalls(const ServerConfig& config, int cores) {
  if (config.server.max_concurrent_calls > 0) return config.server.max_concurrent_calls;
  int64_t calls = 64 + 4 * int64_t{std::max(cores, 1)};
  for (const ModelConfig& m : config.models) {
    if (m.batching.max_batch_size > 1) calls += m.batching.max_queue_rows;
  }
  return static_cast<int>(std::min<int64_t>(calls, kMaxConcurrentCalls));
}

absl::StatusOr<ServerConfig> ParseServerConfig(
    const std::string& yaml, const std::string& source,
    const std::string& base_dir, const ConfigOverrides& overrides) {
  std::error_code ec;
  const fs::path base = base_dir.empty() ? fs::current_path(ec)
                                         : fs::absolute(base_dir, ec);
  if (ec) {
    return absl::InvalidArgumentError(absl::StrCat(
        source, ": cannot resolve base directory \"", base_dir,
        "\": ", ec.message()));
  }
  YamlReader reader(source);
  ASSIGN_OR_RETURN(Value root, reader.ParseDocument(yaml));
  ASSIGN_OR_RETURN(std::vector<config_internal::OverrideValue> resolved,
                   config_internal::ResolveOverrides(root, overrides));
  reader.SetOverrides(std::move(resolved));
  ASSIGN_OR_RETURN(MapReader top,
                   MapReader::Create(reader, root, {"server", "models"},
                                     "the config"));
  ServerConfig config;
  config.source = source;
  if (auto server = top.Find("server")) {
    RETURN_IF_ERROR(
        ParseServerSection(reader, *server, base, &config.server));
  }
  ASSIGN_OR_RETURN(Value models, top.Require("models"));
  ASSIGN_OR_RETURN(std::vector<Value> items, reader.ReadList(models, "models"));
  if (items.empty()) {
    return reader.Error(models, "at least one model is required");
  }
  std::map<std::string, int> first_line;  // model name -> 1-based line
  for (const Value& item : items) {
    ASSIGN_OR_RETURN(ModelConfig model,
                     ParseModel(reader, item, base, config.server, &first_line));
    config.models.push_back(std::move(model));
  }
  RETURN_IF_ERROR(reader.CheckOverridesUsed());
  return config;
}

absl::StatusOr<ServerConfig> LoadServerConfig(
    const std::string& path, const ConfigOverrides& overrides) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (status.type() == fs::file_type::not_found) {
    return absl::NotFoundError(
        absl::StrCat(path, ": config file does not exist"));
  }
  if (ec) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": cannot access config file: ", ec.message()));
  }
  if (fs::is_directory(status)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": is a directory, not a config file"));
  }
  const YamlReader reader(path);
  const size_t limit = config_internal::kMaxConfigBytes;
  if (fs::is_regular_file(status)) {
    const uintmax_t size = fs::file_size(path, ec);
    if (!ec && size > limit) {
      return reader.Error(YAML::Mark(), "",
                          absl::StrCat("the config is ", size,
                                       " bytes; the limit is ", limit,
                                       " (16 MiB)"));
    }
  }
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": cannot open config file: ", std::strerror(errno)));
  }
  // Read at most limit + 1 bytes: the file may be a pipe or still growing.
  std::string text;
  char chunk[1 << 16];
  while (text.size() <= limit && in) {
    in.read(chunk, sizeof(chunk));
    text.append(chunk, static_cast<size_t>(in.gcount()));
  }
  if (in.bad()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": cannot read config file"));
  }
  if (text.size() > limit) {
    return reader.Error(YAML::Mark(), "",
                        absl::StrCat("the config is larger than the ", limit,
                                     "-byte (16 MiB) limit"));
  }
  const fs::path absolute = fs::absolute(path, ec);
  const std::string base_dir =
      ec ? std::string() : absolute.parent_path().string();
  return ParseServerConfig(text, path, base_dir, overrides);
}

}  // namespace qs

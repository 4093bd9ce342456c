// Quantization policy: enum names, layer matching, and the YAML readers for
// variants (weights, activations, optimize, auto, layers).
#include "config/quant_policy_config.h"

#include <fnmatch.h>

#include <algorithm>
#include <limits>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "config/quant_policy_reader.h"
#include "config/value_readers.h"
#include "config/yaml_reader.h"
#include "engine/status_macros.h"

namespace qs {

const char* WeightMethodConfigName(WeightMethodConfig method) {
  switch (method) {
    case WeightMethodConfig::kLinear:
      return "linear";
    case WeightMethodConfig::kLog2:
      return "log2";
    case WeightMethodConfig::kKMeans:
      return "kmeans";
    case WeightMethodConfig::kSign:
      return "sign";
  }
  return "unknown";
}

const char* CalibrationConfigName(CalibrationConfig calibration) {
  switch (calibration) {
    case CalibrationConfig::kMinMax:
      return "minmax";
    case CalibrationConfig::kPercentile:
      return "percentile";
    case CalibrationConfig::kMse:
      return "mse";
    case CalibrationConfig::kKl:
      return "kl";
  }
  return "unknown";
}

const char* OptimizerConfigName(OptimizerConfig algorithm) {
  switch (algorithm) {
    case OptimizerConfig::kGd:
      return "gd";
    case OptimizerConfig::kSgd:
      return "sgd";
    case OptimizerConfig::kAdam:
      return "adam";
  }
  return "unknown";
}

const char* LossConfigName(LossConfig loss) {
  switch (loss) {
    case LossConfig::kMse:
      return "mse";
    case LossConfig::kCrossEntropy:
      return "cross_entropy";
  }
  return "unknown";
}

bool MatchesLayer(const LayerOverrideConfig& layer, std::string_view op_type,
                  std::string_view node_name) {
  if (!layer.op.empty() && layer.op != op_type) return false;
  if (layer.name.empty()) return true;
  // No FNM_PATHNAME / FNM_PERIOD: '*' crosses '/' and a leading '.' is
  // ordinary. The config reader has rejected malformed patterns.
  const std::string name(node_name);
  return fnmatch(layer.name.c_str(), name.c_str(), 0) == 0;
}

namespace config_internal {
namespace {

// The order of these lists is the order of the enums.
const std::vector<absl::string_view> kWeightMethods = {"linear", "log2",
                                                       "kmeans", "sign"};
const std::vector<absl::string_view> kCalibrations = {"minmax", "percentile",
                                                      "mse", "kl"};
const std::vector<absl::string_view> kOptimizers = {"gd", "sgd", "adam"};
const std::vector<absl::string_view> kLosses = {"mse", "cross_entropy"};
const std::vector<absl::string_view> kLearnables = {"rounding", "scales"};

constexpr int64_t kMaxIterations = 100000;
constexpr int64_t kMaxBatchSize = 4096;
constexpr double kMaxLearningRate = 10.0;

// Where the settings being read come from, for defaults and messages.
enum class Scope {
  kVariant,   // a variant's own weights/activations: base = defaults
  kAuto,      // a variant's weights when it has `auto`: bits come from auto
  kOverride,  // a layer override: base = the variant's resolved settings
};

// Reads an enum key into its index in `allowed`.
absl::StatusOr<int> ReadEnumIndex(
    const YamlReader& reader, const Value& v,
    const std::vector<absl::string_view>& allowed) {
  ASSIGN_OR_RETURN(std::string text, reader.ReadEnum(v, allowed));
  return static_cast<int>(std::find(allowed.begin(), allowed.end(), text) -
                          allowed.begin());
}

// A double in (lo, hi]; `what` names the key in the range.
absl::StatusOr<double> ReadOpenClosed(const YamlReader& reader, const Value& v,
                                      double lo, double hi,
                                      absl::string_view what) {
  ASSIGN_OR_RETURN(double value, reader.ReadDouble(v));
  if (!(value > lo && value <= hi)) {
    return reader.Error(v, absl::StrCat("value ", v.node.Scalar(),
                                        " is out of range (allowed: ", lo,
                                        " < ", what, " <= ", hi, ")"));
  }
  return value;
}

absl::StatusOr<WeightQuantConfig> ReadWeights(const YamlReader& reader,
                                              const Value& v,
                                              const WeightQuantConfig& base,
                                              Scope scope) {
  ASSIGN_OR_RETURN(MapReader map,
                   MapReader::Create(reader, v,
                                     {"method", "bits", "symmetric",
                                      "per_channel"},
                                     "weight settings"));
  const std::optional<Value> method_v = map.Find("method");
  const std::optional<Value> bits_v = map.Find("bits");
  const std::optional<Value> symmetric_v = map.Find("symmetric");
  const bool inherits = scope == Scope::kOverride;
  WeightQuantConfig w = base;
  if (method_v) {
    ASSIGN_OR_RETURN(int method, ReadEnumIndex(reader, *method_v,
                                               kWeightMethods));
    w.method = static_cast<WeightMethodConfig>(method);
  }
  const std::string method_name = WeightMethodConfigName(w.method);
  if (scope == Scope::kAuto) {
    if (bits_v) {
      return reader.Error(*bits_v,
                          "the bits of an auto variant are chosen per layer "
                          "from auto.bits; remove this key");
    }
    if (w.method == WeightMethodConfig::kSign) {
      return reader.Error(*method_v,
                          "method sign has a single width (1 bit), so auto "
                          "has nothing to choose; use linear, log2 or kmeans "
                          "(a 1 in auto.bits already means sign)");
    }
  }
  if (bits_v) {
    ASSIGN_OR_RETURN(int64_t bits, reader.ReadInt(*bits_v, 1, 8));
    w.bits = static_cast<int>(bits);
  } else if (method_v && w.method == WeightMethodConfig::kSign) {
    w.bits = 1;  // sign's only (and default) width
  }
  if (symmetric_v) {
    ASSIGN_OR_RETURN(w.symmetric, reader.ReadBool(*symmetric_v));
    if (!w.symmetric && w.method != WeightMethodConfig::kLinear) {
      return reader.Error(
          *symmetric_v,
          absl::StrCat("symmetric: false applies only to method linear "
                       "(method is ", method_name,
                       method_v ? "" : ", inherited from the variant's weights",
                       ")"));
    }
  } else if (w.method != WeightMethodConfig::kLinear) {
    w.symmetric = true;  // meaningless for the other methods
  }
  RETURN_IF_ERROR(map.GetBool("per_channel", &w.per_channel));

  if (w.method == WeightMethodConfig::kSign && w.bits != 1) {
    // bits must have been given: sign without bits gets 1.
    if (method_v) {
      return reader.Error(*bits_v, absl::StrCat("method sign needs bits 1 "
                                                "(got ", w.bits, ")"));
    }
    return reader.Error(
        *bits_v,
        absl::StrCat("bits ", w.bits,
                     " does not work with method sign (inherited from the "
                     "variant's weights), which needs bits 1; set method "
                     "(linear, log2 or kmeans) here too"));
  }
  if (w.bits == 1 && w.method != WeightMethodConfig::kSign) {
    std::string problem =
        w.method == WeightMethodConfig::kLog2
            ? std::string("method log2 needs bits >= 2 (1 bit is only "
                          "possible with method sign)")
            : absl::StrCat("bits 1 requires method sign (method ", method_name,
                           " needs bits >= 2)");
    if (!bits_v) {
      // Only an override can inherit 1 bit (from a sign variant).
      absl::StrAppend(&problem,
                      "; bits 1 is inherited from the variant's weights, "
                      "set bits (2..8) here too");
      return reader.Error(*method_v, problem);
    }
    if (!method_v && inherits) {
      absl::StrAppend(&problem, "; method ", method_name,
                      " is inherited from the variant's weights, set "
                      "method: sign here too");
    }
    return reader.Error(*bits_v, problem);
  }
  return w;
}

absl::StatusOr<ActivationQuantConfig> ReadActivations(
    const YamlReader& reader, const Value& v,
    const ActivationQuantConfig& base, Scope scope) {
  ASSIGN_OR_RETURN(MapReader map,
                   MapReader::Create(reader, v,
                                     {"bits", "calibration", "percentile"},
                                     "activation settings"));
  ActivationQuantConfig a = base;
  RETURN_IF_ERROR(map.GetInt("bits", 2, 8, &a.bits));
  const std::optional<Value> calibration_v = map.Find("calibration");
  if (calibration_v) {
    ASSIGN_OR_RETURN(int calibration,
                     ReadEnumIndex(reader, *calibration_v, kCalibrations));
    a.calibration = static_cast<CalibrationConfig>(calibration);
  }
  if (a.calibration != CalibrationConfig::kPercentile) {
    a.percentile = ActivationQuantConfig().percentile;
  }
  if (std::optional<Value> p = map.Find("percentile")) {
    if (a.calibration != CalibrationConfig::kPercentile) {
      return reader.Error(
          *p, absl::StrCat("percentile applies only to calibration: "
                           "percentile (calibration is ",
                           CalibrationConfigName(a.calibration),
                           calibration_v || scope != Scope::kOverride
                               ? ""
                               : ", inherited from the variant's activations",
                           ")"));
    }
    ASSIGN_OR_RETURN(a.percentile,
                     ReadOpenClosed(reader, *p, 50, 100, "percentile"));
  }
  return a;
}

absl::StatusOr<OptimizeConfig> ReadOptimize(const YamlReader& reader,
                                            const Value& v) {
  ASSIGN_OR_RETURN(MapReader map,
                   MapReader::Create(reader, v,
                                     {"algorithm", "loss", "learn",
                                      "iterations", "learning_rate",
                                      "batch_size", "seed"},
                                     "optimizer settings"));
  OptimizeConfig o;
  if (std::optional<Value> a = map.Find("algorithm")) {
    ASSIGN_OR_RETURN(int algorithm, ReadEnumIndex(reader, *a, kOptimizers));
    o.algorithm = static_cast<OptimizerConfig>(algorithm);
  }
  if (std::optional<Value> l = map.Find("loss")) {
    ASSIGN_OR_RETURN(int loss, ReadEnumIndex(reader, *l, kLosses));
    o.loss = static_cast<LossConfig>(loss);
  }
  if (std::optional<Value> learn = map.Find("learn")) {
    ASSIGN_OR_RETURN(std::vector<Value> items,
                     reader.ReadList(*learn, "things to learn (rounding, "
                                             "scales)"));
    if (items.empty()) {
      return reader.Error(*learn,
                          "learn needs at least one of rounding, scales");
    }
    std::vector<std::string> seen;
    for (const Value& item : items) {
      ASSIGN_OR_RETURN(std::string what, reader.ReadEnum(item, kLearnables));
      if (std::find(seen.begin(), seen.end(), what) != seen.end()) {
        return reader.Error(item, absl::StrCat("\"", what,
                                               "\" is listed twice"));
      }
      seen.push_back(what);
    }
    auto listed = [&](absl::string_view what) {
      return std::find(seen.begin(), seen.end(), what) != seen.end();
    };
    o.learn_rounding = listed("rounding");
    o.learn_scales = listed("scales");
  }
  RETURN_IF_ERROR(map.GetInt("iterations", 1, kMaxIterations, &o.iterations));
  if (std::optional<Value> lr = map.Find("learning_rate")) {
    ASSIGN_OR_RETURN(o.learning_rate, ReadOpenClosed(reader, *lr, 0,
                                                     kMaxLearningRate,
                                                     "learning_rate"));
  }
  RETURN_IF_ERROR(map.GetInt("batch_size", 1, kMaxBatchSize, &o.batch_size));
  int64_t seed = o.seed;
  RETURN_IF_ERROR(map.GetInt("seed", 0, std::numeric_limits<uint32_t>::max(),
                             &seed));
  o.seed = static_cast<uint32_t>(seed);
  return o;
}

absl::StatusOr<AutoBitsConfig> ReadAuto(const YamlReader& reader,
                                        const Value& v) {
  ASSIGN_OR_RETURN(MapReader map,
                   MapReader::Create(reader, v, {"max_accuracy_drop", "bits"},
                                     "auto bit-width settings"));
  AutoBitsConfig a;
  if (std::optional<Value> d = map.Find("max_accuracy_drop")) {
    ASSIGN_OR_RETURN(a.max_accuracy_drop,
                     ReadOpenClosed(reader, *d, 0, 100, "max_accuracy_drop"));
  }
  if (std::optional<Value> bits = map.Find("bits")) {
    ASSIGN_OR_RETURN(std::vector<Value> items,
                     reader.ReadList(*bits, "bit widths"));
    if (items.size() < 2) {
      return reader.Error(*bits,
                          "auto needs at least two bit widths to choose "
                          "from (e.g. [2, 4, 8])");
    }
    a.candidate_bits.clear();
    for (const Value& item : items) {
      ASSIGN_OR_RETURN(int64_t b, reader.ReadInt(item, 1, 8));
      if (!a.candidate_bits.empty() && b == a.candidate_bits.back()) {
        return reader.Error(item, absl::StrCat("bit width ", b,
                                               " is listed twice"));
      }
      if (!a.candidate_bits.empty() && b < a.candidate_bits.back()) {
        return reader.Error(
            item, absl::StrCat("bit widths must be in ascending order (", b,
                               " comes after ", a.candidate_bits.back(), ")"));
      }
      a.candidate_bits.push_back(static_cast<int>(b));
    }
  }
  return a;
}

// Characters of an ONNX op type: an identifier.
bool IsOpType(absl::string_view op) {
  if (op.empty() || !absl::ascii_isalpha(static_cast<unsigned char>(op[0]))) {
    return false;
  }
  return std::all_of(op.begin(), op.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// An fnmatch pattern: every '[' closed, no trailing lone '\'.
absl::Status CheckGlob(const YamlReader& reader, const Value& v,
                       absl::string_view glob) {
  for (size_t i = 0; i < glob.size(); ++i) {
    if (glob[i] == '\\') {
      if (++i == glob.size()) {
        return reader.Error(v, "pattern ends with a lone '\\' (write \\\\ to "
                               "match a backslash)");
      }
    } else if (glob[i] == '[') {
      size_t j = i + 1;
      if (j < glob.size() && (glob[j] == '!' || glob[j] == '^')) ++j;
      if (j < glob.size() && glob[j] == ']') ++j;  // a literal ']' first
      while (j < glob.size() && glob[j] != ']') ++j;
      if (j == glob.size()) {
        return reader.Error(
            v, absl::StrCat("unterminated '[' at offset ", i, " of \"", glob,
                            "\" (write [[] or \\[ to match a literal '[')"));
      }
      i = j;
    }
  }
  return absl::OkStatus();
}

absl::Status ReadMatch(const YamlReader& reader, const Value& v,
                       LayerOverrideConfig* layer) {
  ASSIGN_OR_RETURN(MapReader map, MapReader::Create(reader, v, {"op", "name"},
                                                    "a layer match"));
  const std::optional<Value> op = map.Find("op");
  const std::optional<Value> name = map.Find("name");
  if (!op && !name) {
    return reader.Error(v, "a match needs op, name or both (allowed: op, "
                           "name)");
  }
  if (op) {
    ASSIGN_OR_RETURN(layer->op, reader.ReadString(*op));
    if (layer->op.empty()) {
      return reader.Error(*op, "op must not be empty; leave it out to match "
                               "every op type");
    }
    if (!IsOpType(layer->op)) {
      return reader.Error(*op, absl::StrCat("\"", layer->op,
                                            "\" is not an ONNX op type (e.g. "
                                            "Conv, Gemm, MatMul)"));
    }
  }
  if (name) {
    ASSIGN_OR_RETURN(layer->name, reader.ReadString(*name));
    if (layer->name.empty()) {
      return reader.Error(*name, "name must not be empty; leave it out to "
                                 "match every node name");
    }
    RETURN_IF_ERROR(CheckGlob(reader, *name, layer->name));
  }
  return absl::OkStatus();
}

absl::StatusOr<LayerOverrideConfig> ReadLayer(const YamlReader& reader,
                                              const Value& v,
                                              const VariantConfig& variant) {
  ASSIGN_OR_RETURN(MapReader map,
                   MapReader::Create(reader, v,
                                     {"match", "fp32", "weights",
                                      "activations"},
                                     "a layer override"));
  LayerOverrideConfig layer;
  layer.location = absl::StrCat(reader.Where(v.mark), ": ", v.path);
  ASSIGN_OR_RETURN(Value match, map.Require("match"));
  RETURN_IF_ERROR(ReadMatch(reader, match, &layer));
  RETURN_IF_ERROR(map.GetBool("fp32", &layer.fp32));
  const std::optional<Value> weights = map.Find("weights");
  const std::optional<Value> activations = map.Find("activations");
  if (layer.fp32) {
    for (const std::optional<Value>& set : {weights, activations}) {
      if (set) {
        return reader.Error(*set,
                            "cannot be combined with fp32: true (the matched "
                            "layers stay in fp32)");
      }
    }
    return layer;
  }
  if (weights && variant.auto_bits) {
    return reader.Error(*weights,
                        "auto chooses the weights of every layer; an override "
                        "in an auto variant may set only fp32 or activations");
  }
  layer.weights = *variant.weights;
  layer.activations = *variant.activations;
  if (weights) {
    ASSIGN_OR_RETURN(layer.weights, ReadWeights(reader, *weights,
                                                *variant.weights,
                                                Scope::kOverride));
  }
  if (activations) {
    ASSIGN_OR_RETURN(layer.activations,
                     ReadActivations(reader, *activations,
                                     *variant.activations, Scope::kOverride));
  }
  return layer;
}

absl::StatusOr<EmbeddingQuantConfig> ReadEmbeddings(const YamlReader& reader,
                                                    const Value& v) {
  ASSIGN_OR_RETURN(MapReader map,
                   MapReader::Create(reader, v, {"bits"}, "embedding settings"));
  EmbeddingQuantConfig e;
  if (std::optional<Value> b = map.Find("bits")) {
    ASSIGN_OR_RETURN(int64_t bits, reader.ReadInt(*b, 4, 8));
    if (bits != 4 && bits != 8) {
      return reader.Error(*b, absl::StrCat("embedding bits must be 8 or 4, not ", bits));
    }
    e.bits = static_cast<int>(bits);
  }
  return e;
}

absl::Status RequireQuantized(const YamlReader& reader, const Value& v,
                              const VariantConfig& variant,
                              absl::string_view key) {
  if (variant.quantized()) return absl::OkStatus();
  return reader.Error(
      v, absl::StrCat(key, " applies only to quantized variants; add weights, "
                           "activations or auto to this one"));
}

absl::StatusOr<TreesConfig> ReadTrees(const YamlReader& reader, const Value& v) {
  ASSIGN_OR_RETURN(MapReader map,
                   MapReader::Create(reader, v, {"thresholds", "leaves"},
                                     "tree ensemble quantization"));
  TreesConfig t;
  int64_t thresholds = t.threshold_bits, leaves = t.leaf_bits;
  RETURN_IF_ERROR(map.GetInt("thresholds", 8, 16, &thresholds));
  RETURN_IF_ERROR(map.GetInt("leaves", 8, 32, &leaves));
  if (thresholds != 8 && thresholds != 16) {
    return reader.Error(*map.Find("thresholds"), "thresholds must be 8 or 16 (bits per bin code)");
  }
  if (leaves != 8 && leaves != 16 && leaves != 32) {
    return reader.Error(*map.Find("leaves"), "leaves must be 8, 16 or 32 (32 = float)");
  }
  t.threshold_bits = static_cast<int>(thresholds);
  t.leaf_bits = static_cast<int>(leaves);
  return t;
}

}  // namespace

absl::StatusOr<VariantConfig> ParseVariant(const YamlReader& reader,
                                           const Value& v) {
  ASSIGN_OR_RETURN(MapReader map,
                   MapReader::Create(reader, v,
                                     {"name", "weights", "activations",
                                      "optimize", "layers", "auto", "embeddings", "trees"},
                                     "a variant"));
  VariantConfig variant;
  ASSIGN_OR_RETURN(Value name, map.Require("name"));
  ASSIGN_OR_RETURN(variant.name, ReadName(reader, name, "variant name"));
  variant.location = absl::StrCat(reader.Where(v.mark), ": ", v.path);

  if (std::optional<Value> a = map.Find("auto")) {
    ASSIGN_OR_RETURN(variant.auto_bits, ReadAuto(reader, *a));
  }
  if (std::optional<Value> t = map.Find("trees")) {
    ASSIGN_OR_RETURN(variant.trees, ReadTrees(reader, *t));
  }
  const Scope scope = variant.auto_bits ? Scope::kAuto : Scope::kVariant;
  if (std::optional<Value> w = map.Find("weights")) {
    ASSIGN_OR_RETURN(variant.weights,
                     ReadWeights(reader, *w, WeightQuantConfig(), scope));
  }
  if (std::optional<Value> a = map.Find("activations")) {
    ASSIGN_OR_RETURN(variant.activations,
                     ReadActivations(reader, *a, ActivationQuantConfig(),
                                     scope));
  }
  if (variant.quantized()) {
    if (!variant.weights) variant.weights = WeightQuantConfig();
    if (!variant.activations) variant.activations = ActivationQuantConfig();
    if (!variant.trees) variant.trees = TreesConfig();
    if (variant.auto_bits) {
      variant.weights->bits = variant.auto_bits->candidate_bits.back();
    }
  }

  if (std::optional<Value> e = map.Find("embeddings")) {
    ASSIGN_OR_RETURN(variant.embeddings, ReadEmbeddings(reader, *e));
  }
  if (std::optional<Value> o = map.Find("optimize")) {
    RETURN_IF_ERROR(RequireQuantized(reader, *o, variant, "optimize"));
    ASSIGN_OR_RETURN(variant.optimize, ReadOptimize(reader, *o));
  }
  std::optional<Value> layers = map.Find("layers");
  if (layers && !layers->node.IsNull()) {
    RETURN_IF_ERROR(RequireQuantized(reader, *layers, variant, "layers"));
    ASSIGN_OR_RETURN(std::vector<Value> items,
                     reader.ReadList(*layers, "layer overrides"));
    for (const Value& item : items) {
      ASSIGN_OR_RETURN(LayerOverrideConfig layer,
                       ReadLayer(reader, item, variant));
      variant.layers.push_back(std::move(layer));
    }
  }
  return variant;
}

}  // namespace config_internal
}  // namespace qs

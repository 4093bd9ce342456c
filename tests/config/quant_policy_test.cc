// The quantization policy part of the config: variants' weights,
// activations, optimize, layers and auto keys, and the model's calibration
// data. See docs/POLICY.md.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <initializer_list>
#include <random>
#include <sstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "config/quant_policy_config.h"
#include "config/server_config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace qs {
namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::MatchesRegex;

void WriteFile(const fs::path& path, const std::string& contents) {
  fs::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary);
  out << contents;
  ASSERT_TRUE(out.good()) << path;
}

// Joins lines with '\n' so that line N of the document is element N-1.
std::string Lines(std::initializer_list<const char*> lines) {
  return absl::StrCat(absl::StrJoin(lines, "\n"), "\n");
}

// Lines 1-6 of every Variant() document; the variant's own keys start on
// line 7, indented by 8 spaces.
constexpr const char* kVariantPrefix[] = {
    "models:",                              // 1
    "  - name: m",                          // 2
    "    path: model.onnx",                 // 3
    "    calibration: {inputs: train.gz}",  // 4
    "    variants:",                        // 5
    "      - name: v",                      // 6
};

class QuantPolicyConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = fs::path(::testing::TempDir()) /
           absl::StrCat("quant_policy_test_", getpid(), "_", info->name());
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    WriteFile(dir_ / "model.onnx", "not really onnx");
  }
  void TearDown() override {
    std::error_code ec;
    fs::remove_all(dir_, ec);
  }

  absl::StatusOr<ServerConfig> Parse(const std::string& yaml) {
    return ParseServerConfig(yaml, "test.yaml", dir_.string());
  }

  // The error message of a config that must fail with InvalidArgument.
  std::string Error(const std::string& yaml) {
    absl::StatusOr<ServerConfig> config = Parse(yaml);
    EXPECT_FALSE(config.ok()) << "parsed unexpectedly:\n" << yaml;
    if (config.ok()) return "";
    EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument)
        << config.status();
    const std::string message(config.status().message());
    EXPECT_THAT(message, MatchesRegex("test\\.yaml:[0-9]+:[0-9]+: .+"));
    return message;
  }

  // A model with calibration data and one variant named "v" whose further
  // keys are `extra` (starting on line 7).
  static std::string Variant(std::initializer_list<const char*> extra) {
    std::string yaml;
    for (const char* line : kVariantPrefix) absl::StrAppend(&yaml, line, "\n");
    for (const char* line : extra) absl::StrAppend(&yaml, line, "\n");
    return yaml;
  }

  // Parses Variant(extra) and returns the variant (a default one on error).
  VariantConfig ParseVariant(std::initializer_list<const char*> extra) {
    absl::StatusOr<ServerConfig> config = Parse(Variant(extra));
    EXPECT_TRUE(config.ok()) << config.status();
    if (!config.ok()) return VariantConfig{"error"};
    EXPECT_EQ(config->models.size(), 1u);
    EXPECT_EQ(config->models[0].variants.size(), 1u);
    return config->models[0].variants[0];
  }

  std::string VariantError(std::initializer_list<const char*> extra) {
    return Error(Variant(extra));
  }

  fs::path dir_;
};

void ExpectWeights(const std::optional<WeightQuantConfig>& w,
                   WeightMethodConfig method, int bits, bool symmetric,
                   bool per_channel) {
  ASSERT_TRUE(w.has_value());
  EXPECT_EQ(w->method, method);
  EXPECT_EQ(w->bits, bits);
  EXPECT_EQ(w->symmetric, symmetric);
  EXPECT_EQ(w->per_channel, per_channel);
}

void ExpectActivations(const std::optional<ActivationQuantConfig>& a, int bits,
                       CalibrationConfig calibration, double percentile) {
  ASSERT_TRUE(a.has_value());
  EXPECT_EQ(a->bits, bits);
  EXPECT_EQ(a->calibration, calibration);
  EXPECT_DOUBLE_EQ(a->percentile, percentile);
}

// ---------------------------------------------------------------------------
// Defaults

TEST_F(QuantPolicyConfigTest, VariantWithOnlyANameIsFp32) {
  const VariantConfig v = ParseVariant({});
  EXPECT_EQ(v.name, "v");
  EXPECT_FALSE(v.quantized());
  EXPECT_FALSE(v.weights.has_value());
  EXPECT_FALSE(v.activations.has_value());
  EXPECT_FALSE(v.optimize.has_value());
  EXPECT_FALSE(v.auto_bits.has_value());
  EXPECT_TRUE(v.layers.empty());
  EXPECT_EQ(v.location, "test.yaml:6:9: models[0].variants[0]");
}

TEST_F(QuantPolicyConfigTest, WeightsOnlyVariantGets8BitMinMaxActivations) {
  const VariantConfig v = ParseVariant({"        weights: {bits: 4}"});
  EXPECT_TRUE(v.quantized());
  ExpectWeights(v.weights, WeightMethodConfig::kLinear, 4, true, true);
  ExpectActivations(v.activations, 8, CalibrationConfig::kMinMax, 99.99);
  EXPECT_FALSE(v.optimize.has_value());
}

TEST_F(QuantPolicyConfigTest, ActivationsOnlyVariantGets8BitLinearWeights) {
  const VariantConfig v =
      ParseVariant({"        activations: {bits: 6, calibration: kl}"});
  EXPECT_TRUE(v.quantized());
  ExpectWeights(v.weights, WeightMethodConfig::kLinear, 8, true, true);
  ExpectActivations(v.activations, 6, CalibrationConfig::kKl, 99.99);
}

TEST_F(QuantPolicyConfigTest, EmptySectionsArePresentWithDefaults) {
  // `weights:` with nothing under it quantizes with every default, like
  // `weights: {}`; likewise `optimize:` and `auto:`.
  VariantConfig v = ParseVariant({"        weights:", "        optimize:"});
  EXPECT_TRUE(v.quantized());
  ExpectWeights(v.weights, WeightMethodConfig::kLinear, 8, true, true);
  ExpectActivations(v.activations, 8, CalibrationConfig::kMinMax, 99.99);
  ASSERT_TRUE(v.optimize.has_value());
  EXPECT_EQ(v.optimize->algorithm, OptimizerConfig::kAdam);
  EXPECT_EQ(v.optimize->loss, LossConfig::kMse);
  EXPECT_TRUE(v.optimize->learn_rounding);
  EXPECT_FALSE(v.optimize->learn_scales);
  EXPECT_EQ(v.optimize->iterations, 300);
  EXPECT_DOUBLE_EQ(v.optimize->learning_rate, 0.01);
  EXPECT_EQ(v.optimize->batch_size, 64);
  EXPECT_EQ(v.optimize->seed, 0u);

  v = ParseVariant({"        activations: {}"});
  ExpectWeights(v.weights, WeightMethodConfig::kLinear, 8, true, true);

  v = ParseVariant({"        auto:"});
  ASSERT_TRUE(v.auto_bits.has_value());
  EXPECT_DOUBLE_EQ(v.auto_bits->max_accuracy_drop, 0.5);
  EXPECT_THAT(v.auto_bits->candidate_bits, ElementsAre(2, 4, 8));

  // An empty layers list is no overrides.
  v = ParseVariant({"        weights: {}", "        layers:"});
  EXPECT_TRUE(v.layers.empty());
}

TEST_F(QuantPolicyConfigTest, TreesKeyQuantizesAndDefaults) {
  const VariantConfig v = ParseVariant({"        trees: {thresholds: 8, leaves: 32}"});
  EXPECT_TRUE(v.quantized());
  ASSERT_TRUE(v.trees.has_value());
  EXPECT_EQ(v.trees->threshold_bits, 8);
  EXPECT_EQ(v.trees->leaf_bits, 32);
  ExpectWeights(v.weights, WeightMethodConfig::kLinear, 8, true, true);
  const VariantConfig w = ParseVariant({"        weights: {bits: 8}"});
  ASSERT_TRUE(w.trees.has_value());
  EXPECT_EQ(w.trees->threshold_bits, 16);
  EXPECT_EQ(w.trees->leaf_bits, 16);
  EXPECT_FALSE(ParseVariant({}).trees.has_value());
  EXPECT_THAT(VariantError({"        trees: {thresholds: 12}"}),
              HasSubstr("trees.thresholds: thresholds must be 8 or 16"));
  EXPECT_THAT(VariantError({"        trees: {leaves: 4}"}), HasSubstr("trees.leaves"));
  EXPECT_THAT(VariantError({"        trees: {leafs: 8}"}),
              HasSubstr("unknown key (allowed: thresholds, leaves)"));
}

TEST_F(QuantPolicyConfigTest, SignDefaultsTo1Bit) {
  const VariantConfig v = ParseVariant({"        weights: {method: sign}"});
  ExpectWeights(v.weights, WeightMethodConfig::kSign, 1, true, true);
}

TEST_F(QuantPolicyConfigTest, ReadsEveryKey) {
  const VariantConfig v = ParseVariant({
      "        weights:",                                     // 7
      "          method: linear",                             // 8
      "          bits: 3",                                    // 9
      "          symmetric: false",                           // 10
      "          per_channel: False",                         // 11
      "        activations:",                                 // 12
      "          bits: 7",                                    // 13
      "          calibration: percentile",                    // 14
      "          percentile: 99.9",                           // 15
      "        optimize:",                                    // 16
      "          algorithm: sgd",                             // 17
      "          loss: cross_entropy",                        // 18
      "          learn: [scales]",                            // 19
      "          iterations: 100000",                         // 20
      "          learning_rate: 1e-3",                        // 21
      "          batch_size: 4096",                           // 22
      "          seed: 4294967295",                           // 23
  });
  ExpectWeights(v.weights, WeightMethodConfig::kLinear, 3, false, false);
  ExpectActivations(v.activations, 7, CalibrationConfig::kPercentile, 99.9);
  ASSERT_TRUE(v.optimize.has_value());
  EXPECT_EQ(v.optimize->algorithm, OptimizerConfig::kSgd);
  EXPECT_EQ(v.optimize->loss, LossConfig::kCrossEntropy);
  EXPECT_FALSE(v.optimize->learn_rounding);
  EXPECT_TRUE(v.optimize->learn_scales);
  EXPECT_EQ(v.optimize->iterations, 100000);
  EXPECT_DOUBLE_EQ(v.optimize->learning_rate, 1e-3);
  EXPECT_EQ(v.optimize->batch_size, 4096);
  EXPECT_EQ(v.optimize->seed, 4294967295u);
}

TEST_F(QuantPolicyConfigTest, EnumNames) {
  EXPECT_STREQ(WeightMethodConfigName(WeightMethodConfig::kLinear), "linear");
  EXPECT_STREQ(WeightMethodConfigName(WeightMethodConfig::kLog2), "log2");
  EXPECT_STREQ(WeightMethodConfigName(WeightMethodConfig::kKMeans), "kmeans");
  EXPECT_STREQ(WeightMethodConfigName(WeightMethodConfig::kSign), "sign");
  EXPECT_STREQ(CalibrationConfigName(CalibrationConfig::kMinMax), "minmax");
  EXPECT_STREQ(CalibrationConfigName(CalibrationConfig::kPercentile),
               "percentile");
  EXPECT_STREQ(CalibrationConfigName(CalibrationConfig::kMse), "mse");
  EXPECT_STREQ(CalibrationConfigName(CalibrationConfig::kKl), "kl");
  EXPECT_STREQ(OptimizerConfigName(OptimizerConfig::kGd), "gd");
  EXPECT_STREQ(OptimizerConfigName(OptimizerConfig::kSgd), "sgd");
  EXPECT_STREQ(OptimizerConfigName(OptimizerConfig::kAdam), "adam");
  EXPECT_STREQ(LossConfigName(LossConfig::kMse), "mse");
  EXPECT_STREQ(LossConfigName(LossConfig::kCrossEntropy), "cross_entropy");
}

// ---------------------------------------------------------------------------
// Unknown keys, types, ranges

TEST_F(QuantPolicyConfigTest, UnknownKeysAtEveryLevelListTheAllowedOnes) {
  EXPECT_EQ(VariantError({"        weight: {bits: 4}"}),
            "test.yaml:7:9: models[0].variants[0].weight: unknown key "
            "(allowed: name, weights, activations, optimize, layers, auto, embeddings, trees); "
            "did you mean \"weights\"?");
  EXPECT_EQ(VariantError({"        weights: {bit: 4}"}),
            "test.yaml:7:19: models[0].variants[0].weights.bit: unknown key "
            "(allowed: method, bits, symmetric, per_channel); did you mean "
            "\"bits\"?");
  EXPECT_THAT(VariantError({"        activations: {bits: 8, method: kl}"}),
              HasSubstr("test.yaml:7:32: models[0].variants[0].activations."
                        "method: unknown key (allowed: bits, calibration, "
                        "percentile)"));
  EXPECT_THAT(VariantError({"        weights: {}", "        optimize:",
                            "          lr: 0.1"}),
              HasSubstr("test.yaml:9:11: models[0].variants[0].optimize.lr: "
                        "unknown key (allowed: algorithm, loss, learn, "
                        "iterations, learning_rate, batch_size, seed)"));
  EXPECT_THAT(VariantError({"        auto: {max_drop: 1}"}),
              HasSubstr("test.yaml:7:16: models[0].variants[0].auto.max_drop: "
                        "unknown key (allowed: max_accuracy_drop, bits)"));
  EXPECT_THAT(VariantError({"        weights: {}", "        layers:",
                            "          - match: {op: Conv}",
                            "            bits: 8"}),
              HasSubstr("test.yaml:10:13: models[0].variants[0].layers[0]."
                        "bits: unknown key (allowed: match, fp32, weights, "
                        "activations)"));
  EXPECT_THAT(VariantError({"        weights: {}", "        layers:",
                            "          - match: {op_type: Conv}"}),
              HasSubstr("test.yaml:9:21: models[0].variants[0].layers[0]."
                        "match.op_type: unknown key (allowed: op, name)"));
  EXPECT_THAT(VariantError({"        weights: {}", "        layers:",
                            "          - match: {op: Conv}",
                            "            weights: {bitz: 8}"}),
              HasSubstr("test.yaml:10:23: models[0].variants[0].layers[0]."
                        "weights.bitz: unknown key (allowed: method, bits, "
                        "symmetric, per_channel)"));
  EXPECT_THAT(VariantError({"        weights: {}", "        layers:",
                            "          - match: {op: Conv}",
                            "            activations: {percentil: 99}"}),
              HasSubstr("test.yaml:10:27: models[0].variants[0].layers[0]."
                        "activations.percentil: unknown key (allowed: bits, "
                        "calibration, percentile)"));
}

TEST_F(QuantPolicyConfigTest, BitsOutOfRange) {
  EXPECT_EQ(VariantError({"        weights: {bits: 9}"}),
            "test.yaml:7:25: models[0].variants[0].weights.bits: value 9 is "
            "out of range (allowed: 1..8)");
  EXPECT_THAT(VariantError({"        weights: {bits: 0}"}),
              HasSubstr("test.yaml:7:25: models[0].variants[0].weights.bits: "
                        "value 0 is out of range (allowed: 1..8)"));
  EXPECT_THAT(VariantError({"        activations: {bits: 1}"}),
              HasSubstr("test.yaml:7:29: models[0].variants[0].activations."
                        "bits: value 1 is out of range (allowed: 2..8)"));
  EXPECT_THAT(VariantError({"        activations: {bits: 16}"}),
              HasSubstr("test.yaml:7:29: models[0].variants[0].activations."
                        "bits: value 16 is out of range (allowed: 2..8)"));
  EXPECT_THAT(VariantError({"        weights: {bits: four}"}),
              HasSubstr("test.yaml:7:25: models[0].variants[0].weights.bits: "
                        "expected an integer, got \"four\""));
  EXPECT_THAT(VariantError({"        auto: {bits: [2, 9]}"}),
              HasSubstr("test.yaml:7:26: models[0].variants[0].auto.bits[1]: "
                        "value 9 is out of range (allowed: 1..8)"));
  EXPECT_THAT(VariantError({"        auto: {bits: [0, 8]}"}),
              HasSubstr("test.yaml:7:23: models[0].variants[0].auto.bits[0]: "
                        "value 0 is out of range (allowed: 1..8)"));
}

TEST_F(QuantPolicyConfigTest, OptimizeRanges) {
  auto optimize = [&](const char* line) {
    return VariantError({"        weights: {bits: 4}", "        optimize:",
                         line});
  };
  EXPECT_EQ(optimize("          iterations: 0"),
            "test.yaml:9:23: models[0].variants[0].optimize.iterations: value "
            "0 is out of range (allowed: 1..100000)");
  EXPECT_THAT(optimize("          iterations: 100001"),
              HasSubstr("(allowed: 1..100000)"));
  EXPECT_EQ(optimize("          learning_rate: 0"),
            "test.yaml:9:26: models[0].variants[0].optimize.learning_rate: "
            "value 0 is out of range (allowed: 0 < learning_rate <= 10)");
  EXPECT_THAT(optimize("          learning_rate: -0.1"),
              HasSubstr("value -0.1 is out of range (allowed: 0 < "
                        "learning_rate <= 10)"));
  EXPECT_THAT(optimize("          learning_rate: 10.5"),
              HasSubstr("value 10.5 is out of range"));
  EXPECT_THAT(optimize("          learning_rate: .nan"),
              HasSubstr("optimize.learning_rate: value .nan is not a finite "
                        "number"));
  EXPECT_THAT(optimize("          batch_size: 0"),
              HasSubstr("test.yaml:9:23: models[0].variants[0].optimize."
                        "batch_size: value 0 is out of range (allowed: "
                        "1..4096)"));
  EXPECT_THAT(optimize("          batch_size: 4097"),
              HasSubstr("(allowed: 1..4096)"));
  EXPECT_THAT(optimize("          seed: -1"),
              HasSubstr("test.yaml:9:17: models[0].variants[0].optimize.seed: "
                        "value -1 is out of range (allowed: 0..4294967295)"));
  EXPECT_THAT(optimize("          seed: 4294967296"),
              HasSubstr("(allowed: 0..4294967295)"));
  // learning_rate 10 is the upper bound, inclusive.
  EXPECT_TRUE(Parse(Variant({"        weights: {bits: 4}",
                             "        optimize: {learning_rate: 10}"}))
                  .ok());
}

TEST_F(QuantPolicyConfigTest, UnknownEnumValuesListTheAllowedOnes) {
  EXPECT_EQ(VariantError({"        weights: {method: uniform}"}),
            "test.yaml:7:27: models[0].variants[0].weights.method: value "
            "\"uniform\" is not allowed (allowed: linear, log2, kmeans, sign)");
  EXPECT_THAT(VariantError({"        activations: {calibration: entropy}"}),
              HasSubstr("test.yaml:7:36: models[0].variants[0].activations."
                        "calibration: value \"entropy\" is not allowed "
                        "(allowed: minmax, percentile, mse, kl)"));
  EXPECT_THAT(VariantError({"        weights: {}",
                            "        optimize: {algorithm: lbfgs}"}),
              HasSubstr("test.yaml:8:31: models[0].variants[0].optimize."
                        "algorithm: value \"lbfgs\" is not allowed (allowed: "
                        "gd, sgd, adam)"));
  EXPECT_THAT(VariantError({"        weights: {}",
                            "        optimize: {loss: l1}"}),
              HasSubstr("test.yaml:8:26: models[0].variants[0].optimize.loss: "
                        "value \"l1\" is not allowed (allowed: mse, "
                        "cross_entropy)"));
  EXPECT_THAT(VariantError({"        weights: {}",
                            "        optimize: {learn: [rounding, biases]}"}),
              HasSubstr("test.yaml:8:38: models[0].variants[0].optimize."
                        "learn[1]: value \"biases\" is not allowed (allowed: "
                        "rounding, scales)"));
  EXPECT_THAT(VariantError({"        weights: {}",
                            "        optimize: {learn: rounding}"}),
              HasSubstr("test.yaml:8:27: models[0].variants[0].optimize.learn: "
                        "expected a list of things to learn (rounding, "
                        "scales), got a scalar"));
}

TEST_F(QuantPolicyConfigTest, LearnListMustBeNonEmptyAndUnique) {
  EXPECT_EQ(VariantError({"        weights: {}",
                          "        optimize: {learn: []}"}),
            "test.yaml:8:27: models[0].variants[0].optimize.learn: learn "
            "needs at least one of rounding, scales");
  EXPECT_EQ(VariantError({"        weights: {}",
                          "        optimize: {learn: [scales, rounding, "
                          "scales]}"}),
            "test.yaml:8:46: models[0].variants[0].optimize.learn[2]: "
            "\"scales\" is listed twice");
  const VariantConfig v = ParseVariant(
      {"        weights: {}", "        optimize: {learn: [scales, rounding]}"});
  ASSERT_TRUE(v.optimize.has_value());
  EXPECT_TRUE(v.optimize->learn_rounding);
  EXPECT_TRUE(v.optimize->learn_scales);
}

TEST_F(QuantPolicyConfigTest, BoolsAreTrueOrFalse) {
  EXPECT_EQ(VariantError({"        weights: {per_channel: yes}"}),
            "test.yaml:7:32: models[0].variants[0].weights.per_channel: "
            "expected true or false, got \"yes\"");
  EXPECT_THAT(VariantError({"        weights: {symmetric: 1}"}),
              HasSubstr("weights.symmetric: expected true or false, got "
                        "\"1\""));
  EXPECT_THAT(VariantError({"        weights: {}", "        layers:",
                            "          - {match: {op: Conv}, fp32: [true]}"}),
              HasSubstr("test.yaml:9:39: models[0].variants[0].layers[0].fp32: "
                        "expected true or false, got a list"));
}

// ---------------------------------------------------------------------------
// Method / bits combinations

TEST_F(QuantPolicyConfigTest, SignNeedsOneBit) {
  EXPECT_EQ(VariantError({"        weights: {method: sign, bits: 4}"}),
            "test.yaml:7:39: models[0].variants[0].weights.bits: method sign "
            "needs bits 1 (got 4)");
  const VariantConfig v =
      ParseVariant({"        weights: {method: sign, bits: 1}"});
  ExpectWeights(v.weights, WeightMethodConfig::kSign, 1, true, true);
}

TEST_F(QuantPolicyConfigTest, OneBitNeedsSign) {
  EXPECT_EQ(VariantError({"        weights: {bits: 1}"}),
            "test.yaml:7:25: models[0].variants[0].weights.bits: bits 1 "
            "requires method sign (method linear needs bits >= 2)");
  EXPECT_THAT(VariantError({"        weights: {method: kmeans, bits: 1}"}),
              HasSubstr("test.yaml:7:41: models[0].variants[0].weights.bits: "
                        "bits 1 requires method sign (method kmeans needs "
                        "bits >= 2)"));
}

TEST_F(QuantPolicyConfigTest, Log2NeedsTwoBits) {
  EXPECT_EQ(VariantError({"        weights: {method: log2, bits: 1}"}),
            "test.yaml:7:39: models[0].variants[0].weights.bits: method log2 "
            "needs bits >= 2 (1 bit is only possible with method sign)");
  const VariantConfig v =
      ParseVariant({"        weights: {method: log2, bits: 2}"});
  ExpectWeights(v.weights, WeightMethodConfig::kLog2, 2, true, true);
}

TEST_F(QuantPolicyConfigTest, AsymmetricIsLinearOnly) {
  EXPECT_EQ(VariantError({"        weights: {method: kmeans, symmetric: "
                          "false}"}),
            "test.yaml:7:46: models[0].variants[0].weights.symmetric: "
            "symmetric: false applies only to method linear (method is "
            "kmeans)");
  EXPECT_THAT(VariantError({"        weights: {method: log2, symmetric: "
                            "false}"}),
              HasSubstr("(method is log2)"));
  // symmetric: true is harmless for any method.
  VariantConfig v =
      ParseVariant({"        weights: {method: kmeans, symmetric: true}"});
  ExpectWeights(v.weights, WeightMethodConfig::kKMeans, 8, true, true);
  v = ParseVariant({"        weights: {symmetric: false, per_channel: false}"});
  ExpectWeights(v.weights, WeightMethodConfig::kLinear, 8, false, false);
}

TEST_F(QuantPolicyConfigTest, PercentileOnlyWithPercentileCalibration) {
  EXPECT_EQ(VariantError({"        activations: {percentile: 99.9}"}),
            "test.yaml:7:35: models[0].variants[0].activations.percentile: "
            "percentile applies only to calibration: percentile (calibration "
            "is minmax)");
  EXPECT_THAT(VariantError({"        activations: {calibration: mse, "
                            "percentile: 99.9}"}),
              HasSubstr("(calibration is mse)"));
  EXPECT_EQ(VariantError({"        activations: {calibration: percentile, "
                          "percentile: 50}"}),
            "test.yaml:7:60: models[0].variants[0].activations.percentile: "
            "value 50 is out of range (allowed: 50 < percentile <= 100)");
  EXPECT_THAT(VariantError({"        activations: {calibration: percentile, "
                            "percentile: 100.01}"}),
              HasSubstr("value 100.01 is out of range (allowed: 50 < "
                        "percentile <= 100)"));
  EXPECT_THAT(VariantError({"        activations: {calibration: percentile, "
                            "percentile: high}"}),
              HasSubstr("activations.percentile: expected a number, got "
                        "\"high\""));
  VariantConfig v = ParseVariant(
      {"        activations: {calibration: percentile, percentile: 100}"});
  ExpectActivations(v.activations, 8, CalibrationConfig::kPercentile, 100);
  v = ParseVariant({"        activations: {calibration: percentile}"});
  ExpectActivations(v.activations, 8, CalibrationConfig::kPercentile, 99.99);
}

// ---------------------------------------------------------------------------
// Keys that need a quantized variant

TEST_F(QuantPolicyConfigTest, OptimizeAndLayersNeedAQuantizedVariant) {
  EXPECT_EQ(VariantError({"        optimize: {algorithm: adam}"}),
            "test.yaml:7:19: models[0].variants[0].optimize: optimize "
            "applies only to quantized variants; add weights, activations or "
            "auto to this one");
  EXPECT_THAT(VariantError({"        optimize:"}),
              HasSubstr("test.yaml:7:9: models[0].variants[0].optimize: "
                        "optimize applies only to quantized variants"));
  EXPECT_EQ(VariantError({"        layers:", "          - match: {op: Conv}",
                          "            fp32: true"}),
            "test.yaml:8:11: models[0].variants[0].layers: layers applies "
            "only to quantized variants; add weights, activations or auto to "
            "this one");
  // The order of the keys does not matter.
  const VariantConfig v = ParseVariant(
      {"        optimize: {iterations: 5}", "        activations: {bits: 8}"});
  ASSERT_TRUE(v.optimize.has_value());
  EXPECT_EQ(v.optimize->iterations, 5);
}

// ---------------------------------------------------------------------------
// Layer overrides

TEST_F(QuantPolicyConfigTest, OverridesInheritUnsetFieldsFromTheVariant) {
  const VariantConfig v = ParseVariant({
      "        weights: {method: log2, bits: 4, per_channel: false}",  // 7
      "        activations: {calibration: percentile, percentile: 99.9}",
      "        layers:",                                               // 9
      "          - match: {op: Conv}",                                 // 10
      "            weights: {bits: 8}",                                // 11
      "          - match: {name: '/9/*'}",                             // 12
      "            activations: {bits: 4}",                            // 13
      "          - match: {op: Gemm, name: '/7/Gemm'}",                // 14
      "            weights: {method: linear, symmetric: false}",       // 15
      "            activations: {calibration: mse}",                   // 16
      "          - match: {name: '/3/*'}",                             // 17
      "            fp32: true",                                        // 18
      "          - match: {name: '/0/*'}",                             // 19
      "            fp32: false",                                       // 20
  });
  ASSERT_EQ(v.layers.size(), 5u);
  // Only bits given: method and per_channel come from the variant.
  const LayerOverrideConfig& conv = v.layers[0];
  EXPECT_EQ(conv.op, "Conv");
  EXPECT_EQ(conv.name, "");
  EXPECT_FALSE(conv.fp32);
  EXPECT_EQ(conv.location, "test.yaml:10:13: models[0].variants[0].layers[0]");
  ExpectWeights(conv.weights, WeightMethodConfig::kLog2, 8, true, false);
  ExpectActivations(conv.activations, 8, CalibrationConfig::kPercentile, 99.9);
  // Activations partly given; weights all inherited.
  const LayerOverrideConfig& head = v.layers[1];
  EXPECT_EQ(head.op, "");
  EXPECT_EQ(head.name, "/9/*");
  ExpectWeights(head.weights, WeightMethodConfig::kLog2, 4, true, false);
  ExpectActivations(head.activations, 4, CalibrationConfig::kPercentile, 99.9);
  EXPECT_EQ(head.location, "test.yaml:12:13: models[0].variants[0].layers[1]");
  // A method change keeps the inherited bits; the percentile is dropped with
  // the percentile calibration.
  const LayerOverrideConfig& fc1 = v.layers[2];
  EXPECT_EQ(fc1.op, "Gemm");
  EXPECT_EQ(fc1.name, "/7/Gemm");
  ExpectWeights(fc1.weights, WeightMethodConfig::kLinear, 4, false, false);
  ExpectActivations(fc1.activations, 8, CalibrationConfig::kMse, 99.99);
  // fp32: true carries no settings.
  EXPECT_TRUE(v.layers[3].fp32);
  EXPECT_FALSE(v.layers[3].weights.has_value());
  EXPECT_FALSE(v.layers[3].activations.has_value());
  // fp32: false alone resets the layers to the variant's settings.
  EXPECT_FALSE(v.layers[4].fp32);
  ExpectWeights(v.layers[4].weights, WeightMethodConfig::kLog2, 4, true,
                false);
  ExpectActivations(v.layers[4].activations, 8, CalibrationConfig::kPercentile,
                    99.9);
}

TEST_F(QuantPolicyConfigTest, OverrideSignMethodDefaultsTo1Bit) {
  const VariantConfig v = ParseVariant({
      "        weights: {bits: 4, symmetric: false}",
      "        layers:",
      "          - {match: {op: Gemm}, weights: {method: sign}}",
  });
  ExpectWeights(v.layers[0].weights, WeightMethodConfig::kSign, 1, true, true);
}

TEST_F(QuantPolicyConfigTest, InheritedCombinationsAreValidated) {
  // The variant is sign (1 bit); an override giving only bits keeps sign.
  EXPECT_EQ(VariantError({"        weights: {method: sign}", "        layers:",
                          "          - match: {op: Conv}",
                          "            weights: {bits: 4}"}),
            "test.yaml:10:29: models[0].variants[0].layers[0].weights.bits: "
            "bits 4 does not work with method sign (inherited from the "
            "variant's weights), which needs bits 1; set method (linear, log2 "
            "or kmeans) here too");
  // ... and one giving only a method keeps bits 1.
  EXPECT_EQ(VariantError({"        weights: {method: sign}", "        layers:",
                          "          - match: {op: Conv}",
                          "            weights: {method: linear}"}),
            "test.yaml:10:31: models[0].variants[0].layers[0].weights.method: "
            "bits 1 requires method sign (method linear needs bits >= 2); bits "
            "1 is inherited from the variant's weights, set bits (2..8) here "
            "too");
  EXPECT_THAT(VariantError({"        weights: {method: sign}",
                            "        layers:", "          - match: {op: Conv}",
                            "            weights: {method: log2}"}),
              HasSubstr("weights.method: method log2 needs bits >= 2"));
  // A 1-bit override of a linear variant must say sign.
  EXPECT_EQ(VariantError({"        weights: {bits: 4}", "        layers:",
                          "          - match: {op: Conv}",
                          "            weights: {bits: 1}"}),
            "test.yaml:10:29: models[0].variants[0].layers[0].weights.bits: "
            "bits 1 requires method sign (method linear needs bits >= 2); "
            "method linear is inherited from the variant's weights, set "
            "method: sign here too");
  // symmetric: false needs linear, also when the method is inherited.
  EXPECT_THAT(VariantError({"        weights: {method: kmeans, bits: 4}",
                            "        layers:",
                            "          - match: {op: Conv}",
                            "            weights: {symmetric: false}"}),
              HasSubstr("test.yaml:10:34: models[0].variants[0].layers[0]."
                        "weights.symmetric: symmetric: false applies only to "
                        "method linear (method is kmeans, inherited from the "
                        "variant's weights)"));
  EXPECT_THAT(VariantError({"        activations: {calibration: kl}",
                            "        layers:",
                            "          - match: {op: Conv}",
                            "            activations: {percentile: 99}"}),
              HasSubstr("test.yaml:10:39: models[0].variants[0].layers[0]."
                        "activations.percentile: percentile applies only to "
                        "calibration: percentile (calibration is kl, "
                        "inherited from the variant's activations)"));
  // Ranges apply to overrides too.
  EXPECT_THAT(VariantError({"        weights: {}", "        layers:",
                            "          - match: {op: Conv}",
                            "            activations: {bits: 9}"}),
              HasSubstr("test.yaml:10:33: models[0].variants[0].layers[0]."
                        "activations.bits: value 9 is out of range (allowed: "
                        "2..8)"));
  // A symmetric: false variant switched to kmeans by an override is fine.
  const VariantConfig v = ParseVariant({
      "        weights: {symmetric: false}",
      "        layers:",
      "          - {match: {op: Conv}, weights: {method: kmeans}}",
  });
  ExpectWeights(v.layers[0].weights, WeightMethodConfig::kKMeans, 8, true,
                true);
}

TEST_F(QuantPolicyConfigTest, Fp32OverrideTakesNoSettings) {
  EXPECT_EQ(VariantError({"        weights: {bits: 4}", "        layers:",
                          "          - match: {name: '/9/*'}",
                          "            fp32: true",
                          "            weights: {bits: 8}"}),
            "test.yaml:11:22: models[0].variants[0].layers[0].weights: cannot "
            "be combined with fp32: true (the matched layers stay in fp32)");
  EXPECT_THAT(VariantError({"        weights: {bits: 4}", "        layers:",
                            "          - match: {name: '/9/*'}",
                            "            activations: {bits: 8}",
                            "            fp32: true"}),
              HasSubstr("test.yaml:10:26: models[0].variants[0].layers[0]."
                        "activations: cannot be combined with fp32: true"));
}

TEST_F(QuantPolicyConfigTest, OverrideMatchNeedsOpOrName) {
  EXPECT_EQ(VariantError({"        weights: {}", "        layers:",
                          "          - match: {}", "            fp32: true"}),
            "test.yaml:9:20: models[0].variants[0].layers[0].match: a match "
            "needs op, name or both (allowed: op, name)");
  EXPECT_THAT(VariantError({"        weights: {}", "        layers:",
                            "          - match:", "            fp32: true"}),
              HasSubstr("test.yaml:9:13: models[0].variants[0].layers[0]."
                        "match: a match needs op, name or both"));
  EXPECT_EQ(VariantError({"        weights: {}", "        layers:",
                          "          - fp32: true"}),
            "test.yaml:9:13: models[0].variants[0].layers[0].match: required "
            "key is missing");
  EXPECT_THAT(VariantError({"        weights: {}", "        layers:",
                            "          - match: {op: ''}"}),
              HasSubstr("test.yaml:9:25: models[0].variants[0].layers[0].match."
                        "op: op must not be empty; leave it out to match "
                        "every op type"));
  EXPECT_THAT(VariantError({"        weights: {}", "        layers:",
                            "          - match: {name: ''}"}),
              HasSubstr("layers[0].match.name: name must not be empty"));
  EXPECT_THAT(VariantError({"        weights: {}", "        layers:",
                            "          - match: {op: '/0/Conv'}"}),
              HasSubstr("test.yaml:9:25: models[0].variants[0].layers[0].match."
                        "op: \"/0/Conv\" is not an ONNX op type (e.g. Conv, "
                        "Gemm, MatMul)"));
  EXPECT_THAT(VariantError({"        weights: {}", "        layers:",
                            "          - match: {name: '/conv[12/*'}"}),
              HasSubstr("test.yaml:9:27: models[0].variants[0].layers[0].match."
                        "name: unterminated '[' at offset 5 of "
                        "\"/conv[12/*\""));
  EXPECT_THAT(VariantError({"        weights: {}", "        layers:",
                            "          - match: {name: 'a\\'}"}),
              HasSubstr("pattern ends with a lone '\\'"));
  EXPECT_THAT(VariantError({"        weights: {}",
                            "        layers: {op: Conv}"}),
              HasSubstr("test.yaml:8:17: models[0].variants[0].layers: "
                        "expected a list of layer overrides, got a map"));
  EXPECT_THAT(VariantError({"        weights: {}", "        layers: [Conv]"}),
              HasSubstr("test.yaml:8:18: models[0].variants[0].layers[0]: "
                        "expected a layer override (a map), got a scalar"));
}

TEST_F(QuantPolicyConfigTest, MatchesLayer) {
  LayerOverrideConfig layer;
  layer.op = "Conv";
  EXPECT_TRUE(MatchesLayer(layer, "Conv", "/0/Conv"));
  EXPECT_FALSE(MatchesLayer(layer, "Gemm", "/7/Gemm"));
  EXPECT_FALSE(MatchesLayer(layer, "conv", "/0/Conv"));  // case-sensitive
  layer.name = "/3/*";
  EXPECT_TRUE(MatchesLayer(layer, "Conv", "/3/Conv"));
  EXPECT_FALSE(MatchesLayer(layer, "Conv", "/0/Conv"));
  layer.op = "";
  layer.name = "*";  // '*' crosses '/'
  EXPECT_TRUE(MatchesLayer(layer, "Relu", "/features/1/Relu"));
  layer.name = "/[0-3]/?onv";
  EXPECT_TRUE(MatchesLayer(layer, "Conv", "/3/Conv"));
  EXPECT_FALSE(MatchesLayer(layer, "Conv", "/5/Conv"));
  layer.name = "/[!0]/*";
  EXPECT_FALSE(MatchesLayer(layer, "Conv", "/0/Conv"));
  EXPECT_TRUE(MatchesLayer(layer, "Conv", "/3/Conv"));
  layer.name = "/7/Gemm";  // whole-name match, not a substring
  EXPECT_TRUE(MatchesLayer(layer, "Gemm", "/7/Gemm"));
  EXPECT_FALSE(MatchesLayer(layer, "Gemm", "/17/Gemm"));
  EXPECT_FALSE(MatchesLayer(layer, "Gemm", "/7/Gemm_1"));
  layer.name = "\\[x]";
  EXPECT_TRUE(MatchesLayer(layer, "Gemm", "[x]"));
}

// ---------------------------------------------------------------------------
// auto

TEST_F(QuantPolicyConfigTest, AutoImpliesLinearWeights) {
  VariantConfig v =
      ParseVariant({"        auto: {max_accuracy_drop: 1.5, bits: [1, 3, 6]}"});
  EXPECT_TRUE(v.quantized());
  ASSERT_TRUE(v.auto_bits.has_value());
  EXPECT_DOUBLE_EQ(v.auto_bits->max_accuracy_drop, 1.5);
  EXPECT_THAT(v.auto_bits->candidate_bits, ElementsAre(1, 3, 6));
  // bits holds the largest candidate.
  ExpectWeights(v.weights, WeightMethodConfig::kLinear, 6, true, true);
  ExpectActivations(v.activations, 8, CalibrationConfig::kMinMax, 99.99);

  // The weights' other fields may be set; their bits may not.
  v = ParseVariant({"        auto: {}",
                    "        weights: {method: log2, per_channel: false}",
                    "        activations: {bits: 6}",
                    "        layers:",
                    "          - {match: {name: '/9/*'}, fp32: true}",
                    "          - {match: {op: Conv}, activations: {bits: 8}}"});
  ExpectWeights(v.weights, WeightMethodConfig::kLog2, 8, true, false);
  ASSERT_EQ(v.layers.size(), 2u);
  ExpectActivations(v.layers[1].activations, 8, CalibrationConfig::kMinMax,
                    99.99);
  EXPECT_EQ(VariantError({"        auto: {}", "        weights: {bits: 4}"}),
            "test.yaml:8:25: models[0].variants[0].weights.bits: the bits of "
            "an auto variant are chosen per layer from auto.bits; remove this "
            "key");
  EXPECT_THAT(VariantError({"        auto: {}",
                            "        weights: {method: sign}"}),
              HasSubstr("test.yaml:8:27: models[0].variants[0].weights.method: "
                        "method sign has a single width (1 bit)"));
  EXPECT_THAT(VariantError({"        auto: {}", "        layers:",
                            "          - match: {op: Conv}",
                            "            weights: {bits: 8}"}),
              HasSubstr("test.yaml:10:22: models[0].variants[0].layers[0]."
                        "weights: auto chooses the weights of every layer; an "
                        "override in an auto variant may set only fp32 or "
                        "activations"));
}

TEST_F(QuantPolicyConfigTest, AutoBitsAscendingUniqueAndSeveral) {
  EXPECT_EQ(VariantError({"        auto: {bits: [2, 8, 4]}"}),
            "test.yaml:7:29: models[0].variants[0].auto.bits[2]: bit widths "
            "must be in ascending order (4 comes after 8)");
  EXPECT_EQ(VariantError({"        auto: {bits: [2, 4, 4]}"}),
            "test.yaml:7:29: models[0].variants[0].auto.bits[2]: bit width 4 "
            "is listed twice");
  EXPECT_EQ(VariantError({"        auto: {bits: [4]}"}),
            "test.yaml:7:22: models[0].variants[0].auto.bits: auto needs at "
            "least two bit widths to choose from (e.g. [2, 4, 8])");
  EXPECT_THAT(VariantError({"        auto: {bits: []}"}),
              HasSubstr("auto.bits: auto needs at least two bit widths"));
  EXPECT_THAT(VariantError({"        auto: {bits: 4}"}),
              HasSubstr("test.yaml:7:22: models[0].variants[0].auto.bits: "
                        "expected a list of bit widths, got a scalar"));
}

TEST_F(QuantPolicyConfigTest, AutoMaxAccuracyDropRange) {
  EXPECT_EQ(VariantError({"        auto: {max_accuracy_drop: 0}"}),
            "test.yaml:7:35: models[0].variants[0].auto.max_accuracy_drop: "
            "value 0 is out of range (allowed: 0 < max_accuracy_drop <= 100)");
  EXPECT_THAT(VariantError({"        auto: {max_accuracy_drop: -0.5}"}),
              HasSubstr("value -0.5 is out of range (allowed: 0 < "
                        "max_accuracy_drop <= 100)"));
  EXPECT_THAT(VariantError({"        auto: {max_accuracy_drop: 101}"}),
              HasSubstr("value 101 is out of range"));
  const VariantConfig v =
      ParseVariant({"        auto: {max_accuracy_drop: 100}"});
  EXPECT_DOUBLE_EQ(v.auto_bits->max_accuracy_drop, 100);
}

// ---------------------------------------------------------------------------
// Calibration data

TEST_F(QuantPolicyConfigTest, QuantizedVariantNeedsCalibration) {
  EXPECT_EQ(Error(Lines({
                "models:",
                "  - name: m",
                "    path: model.onnx",
                "    variants:",
                "      - name: fp32",
                "      - name: w8a8",
                "        weights: {bits: 8}",
            })),
            "test.yaml:2:5: models[0].calibration: required by quantized "
            "variant \"w8a8\" (models[0].variants[1]); add a calibration "
            "dataset, e.g. the training split");
  // An empty calibration section is no calibration.
  EXPECT_THAT(Error(Lines({
                  "models:",
                  "  - name: m",
                  "    path: model.onnx",
                  "    calibration:",
                  "    variants: [{name: a, auto: {}}]",
              })),
              HasSubstr("test.yaml:2:5: models[0].calibration: required by "
                        "quantized variant \"a\""));
  // fp32-only models need none.
  EXPECT_TRUE(Parse(Lines({"models:", "  - name: m", "    path: model.onnx",
                           "    variants: [{name: a}, {name: b}]"}))
                  .ok());
}

TEST_F(QuantPolicyConfigTest, CalibrationIsADatasetWithOptionalLabels) {
  absl::StatusOr<ServerConfig> config = Parse(Lines({
      "models:",
      "  - name: m",
      "    path: model.onnx",
      "    calibration:",
      "      format: npy",
      "      inputs: data/train.npy",
      "      scale: 0.5",
      "      offset: -1",
      "      limit: 1000",
  }));
  ASSERT_TRUE(config.ok()) << config.status();
  const ModelConfig& m = config->models[0];
  ASSERT_TRUE(m.calibration.has_value());
  EXPECT_EQ(m.calibration->format, DatasetConfig::Format::kNpy);
  EXPECT_EQ(m.calibration->inputs, (dir_ / "data" / "train.npy").string());
  EXPECT_EQ(m.calibration->labels, "");
  EXPECT_FLOAT_EQ(m.calibration->scale, 0.5f);
  EXPECT_FLOAT_EQ(m.calibration->offset, -1.0f);
  EXPECT_EQ(m.calibration->limit, 1000);
  EXPECT_THAT(Error(Lines({"models:", "  - name: m", "    path: model.onnx",
                           "    calibration: {inputs: a, samples: 10}"})),
              HasSubstr("test.yaml:4:30: models[0].calibration.samples: "
                        "unknown key (allowed: format, inputs, labels, scale, "
                        "offset, limit)"));
  EXPECT_THAT(Error(Lines({"models:", "  - name: m", "    path: model.onnx",
                           "    calibration: {limit: 10}"})),
              HasSubstr("test.yaml:4:18: models[0].calibration.inputs: "
                        "required key is missing"));
}

TEST_F(QuantPolicyConfigTest, CalibrationAndEvaluationMustDiffer) {
  const std::string resolved = (dir_ / "data" / "test.gz").string();
  EXPECT_EQ(Error(Lines({
                "models:",
                "  - name: m",
                "    path: model.onnx",
                "    evaluation: {inputs: data/test.gz, labels: y.gz}",
                "    calibration:",
                "      inputs: ./data/../data/test.gz",
                "      limit: 100",
                "    variants: [{name: w8, weights: {}}]",
            })),
            absl::StrCat("test.yaml:6:15: models[0].calibration.inputs: "
                         "calibration and evaluation use the same images (\"",
                         resolved,
                         "\"); calibrate on other data, e.g. the training "
                         "split, so that accuracy is not measured on the "
                         "calibration set"));
  // The same file under another name (a symlink) counts too.
  WriteFile(dir_ / "test.gz", "x");
  fs::create_symlink(dir_ / "test.gz", dir_ / "link.gz");
  EXPECT_THAT(Error(Lines({"models:", "  - name: m", "    path: model.onnx",
                           "    evaluation: {inputs: test.gz, labels: y.gz}",
                           "    calibration: {inputs: link.gz}"})),
              HasSubstr("test.yaml:5:27: models[0].calibration.inputs: "
                        "calibration and evaluation use the same images"));
  // Same labels but other images is fine.
  EXPECT_TRUE(Parse(Lines({"models:", "  - name: m", "    path: model.onnx",
                           "    evaluation: {inputs: test.gz, labels: y.gz}",
                           "    calibration: {inputs: train.gz, labels: y.gz}",
                           "    variants: [{name: w8, weights: {}}]"}))
                  .ok());
}

// ---------------------------------------------------------------------------
// The shipped config

std::string ReadShippedConfig() {
  std::ifstream in(std::string(QS_SOURCE_DIR) + "/config/quantserve.yaml");
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// The node names and op types of models/fmnist_cnn.onnx (torch export of an
// nn.Sequential), for checking that the shipped overrides match real layers.
const std::vector<std::pair<std::string, std::string>> kBundledNodes = {
    {"/0/Conv", "Conv"},       {"/1/Relu", "Relu"},   {"/2/MaxPool", "MaxPool"},
    {"/3/Conv", "Conv"},       {"/4/Relu", "Relu"},   {"/5/MaxPool", "MaxPool"},
    {"/6/Flatten", "Flatten"}, {"/7/Gemm", "Gemm"},   {"/8/Relu", "Relu"},
    {"/9/Gemm", "Gemm"},
};

void ExpectShippedPolicy(const ModelConfig& m) {
  EXPECT_EQ(m.default_variant, "w8a8");
  ASSERT_TRUE(m.calibration.has_value());
  EXPECT_EQ(m.calibration->format, DatasetConfig::Format::kIdx);
  EXPECT_EQ(m.calibration->inputs,
            "/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz");
  EXPECT_EQ(m.calibration->labels,
            "/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz");
  EXPECT_EQ(m.calibration->limit, 1000);
  EXPECT_FLOAT_EQ(m.calibration->scale, 1.0f / 255.0f);

  std::vector<std::string> names;
  for (const VariantConfig& v : m.variants) names.push_back(v.name);
  ASSERT_THAT(names, ElementsAre("fp32", "w8a8", "w4a8", "w2a8", "w1a8",
                                 "kmeans4", "log2_4", "w8a4", "mixed", "auto"));
  const auto& v = m.variants;
  EXPECT_FALSE(v[0].quantized());

  ExpectWeights(v[1].weights, WeightMethodConfig::kLinear, 8, true, true);
  ExpectActivations(v[1].activations, 8, CalibrationConfig::kMinMax, 99.99);
  EXPECT_FALSE(v[1].optimize.has_value());

  ExpectWeights(v[2].weights, WeightMethodConfig::kLinear, 4, true, true);
  ExpectActivations(v[2].activations, 8, CalibrationConfig::kMinMax, 99.99);
  ASSERT_TRUE(v[2].optimize.has_value());
  EXPECT_EQ(v[2].optimize->algorithm, OptimizerConfig::kAdam);
  EXPECT_EQ(v[2].optimize->loss, LossConfig::kMse);
  EXPECT_TRUE(v[2].optimize->learn_rounding);
  EXPECT_TRUE(v[2].optimize->learn_scales);
  EXPECT_EQ(v[2].optimize->iterations, 300);
  EXPECT_DOUBLE_EQ(v[2].optimize->learning_rate, 0.01);
  EXPECT_EQ(v[2].optimize->batch_size, 64);
  EXPECT_EQ(v[2].optimize->seed, 0u);

  ExpectWeights(v[3].weights, WeightMethodConfig::kLinear, 2, true, true);
  ASSERT_TRUE(v[3].optimize.has_value());
  EXPECT_TRUE(v[3].optimize->learn_scales);

  ExpectWeights(v[4].weights, WeightMethodConfig::kSign, 1, true, true);
  ASSERT_TRUE(v[4].optimize.has_value());
  EXPECT_FALSE(v[4].optimize->learn_rounding);
  EXPECT_TRUE(v[4].optimize->learn_scales);

  ExpectWeights(v[5].weights, WeightMethodConfig::kKMeans, 4, true, true);
  ExpectWeights(v[6].weights, WeightMethodConfig::kLog2, 4, true, true);
  ExpectWeights(v[7].weights, WeightMethodConfig::kLinear, 8, true, true);
  ExpectActivations(v[7].activations, 4, CalibrationConfig::kMse, 99.99);

  const VariantConfig& mixed = v[8];
  ExpectWeights(mixed.weights, WeightMethodConfig::kLinear, 4, true, true);
  ASSERT_EQ(mixed.layers.size(), 2u);
  EXPECT_EQ(mixed.layers[0].op, "Conv");
  ExpectWeights(mixed.layers[0].weights, WeightMethodConfig::kLinear, 8, true,
                true);
  EXPECT_TRUE(mixed.layers[1].fp32);
  // Every override matches a layer of the bundled model.
  for (const LayerOverrideConfig& layer : mixed.layers) {
    int matched = 0;
    for (const auto& [name, op] : kBundledNodes) {
      matched += MatchesLayer(layer, op, name) ? 1 : 0;
    }
    EXPECT_GT(matched, 0) << layer.location << " matches nothing";
  }
  EXPECT_TRUE(MatchesLayer(mixed.layers[1], "Gemm", "/9/Gemm"));
  EXPECT_FALSE(MatchesLayer(mixed.layers[1], "Gemm", "/7/Gemm"));

  const VariantConfig& autobits = v[9];
  ASSERT_TRUE(autobits.auto_bits.has_value());
  EXPECT_DOUBLE_EQ(autobits.auto_bits->max_accuracy_drop, 0.5);
  EXPECT_THAT(autobits.auto_bits->candidate_bits, ElementsAre(2, 4, 8));
  ExpectWeights(autobits.weights, WeightMethodConfig::kLinear, 8, true, true);
}

// With the model mocked up, so that it runs without the trained model.
TEST_F(QuantPolicyConfigTest, ShippedConfigParses) {
  const std::string text = ReadShippedConfig();
  ASSERT_FALSE(text.empty());
  WriteFile(dir_ / "models" / "fmnist_cnn.onnx", "x");
  absl::StatusOr<ServerConfig> config = ParseServerConfig(
      text, "config/quantserve.yaml", (dir_ / "config").string());
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->models.size(), 1u);
  ExpectShippedPolicy(config->models[0]);
  EXPECT_THAT(config->models[0].variants[8].layers[1].location,
              MatchesRegex("config/quantserve\\.yaml:[0-9]+:[0-9]+: "
                           "models\\[0\\]\\.variants\\[8\\]\\.layers\\[1\\]"));
}

TEST_F(QuantPolicyConfigTest, ShippedConfigLoads) {
  const fs::path model = fs::path(QS_SOURCE_DIR) / "models" / "fmnist_cnn.onnx";
  if (!fs::exists(model)) {
    GTEST_SKIP() << model << " does not exist yet";
  }
  absl::StatusOr<ServerConfig> config =
      LoadServerConfig(std::string(QS_SOURCE_DIR) + "/config/quantserve.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  ExpectShippedPolicy(config->models[0]);
}

// Every prefix of the shipped policy, and random corruptions of it, either
// parse or fail with a well-formed InvalidArgument; none may crash.
TEST_F(QuantPolicyConfigTest, TruncatedAndCorruptedPoliciesNeverCrash) {
  const std::string full = ReadShippedConfig();
  ASSERT_FALSE(full.empty());
  WriteFile(dir_ / "models" / "fmnist_cnn.onnx", "x");
  const std::string base = (dir_ / "config").string();
  auto check = [&](const std::string& text) {
    absl::StatusOr<ServerConfig> config =
        ParseServerConfig(text, "test.yaml", base);
    if (!config.ok()) {
      EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(std::string(config.status().message()),
                  MatchesRegex("test\\.yaml:[0-9]+:[0-9]+: .+"))
          << text;
    }
  };
  for (size_t n = 0; n <= full.size(); n += 7) check(full.substr(0, n));
  std::mt19937 rng(4321);
  const std::string alphabet = "{}[]:,-?&*!|>'\"#%@` \n0189aZ.\\";
  for (int i = 0; i < 1000; ++i) {
    std::string text = full;
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      text[rng() % text.size()] = alphabet[rng() % alphabet.size()];
    }
    check(text);
  }
}

}  // namespace
}  // namespace qs

namespace qs {
namespace {

// ---------------------------------------------------------------------------
// embeddings (row-wise embedding-table quantization)

class EmbeddingsConfigTest : public QuantPolicyConfigTest {};

TEST_F(EmbeddingsConfigTest, AloneItIsNotALayerQuantizedVariant) {
  const VariantConfig v = ParseVariant({"        embeddings: {bits: 4}"});
  ASSERT_TRUE(v.embeddings.has_value());
  EXPECT_EQ(v.embeddings->bits, 4);
  EXPECT_FALSE(v.quantized());     // layers stay fp32, no weights/activations
  EXPECT_FALSE(v.unquantized());   // but it is no fp32 reference either
  EXPECT_FALSE(v.weights.has_value());
  EXPECT_EQ(ParseVariant({"        embeddings: {}"}).embeddings->bits, 8);
}

TEST_F(EmbeddingsConfigTest, CombinesWithLayerQuantization) {
  const VariantConfig v =
      ParseVariant({"        weights: {bits: 8}", "        embeddings: {bits: 8}"});
  EXPECT_TRUE(v.quantized());
  ASSERT_TRUE(v.embeddings.has_value());
  EXPECT_EQ(v.embeddings->bits, 8);
}

TEST_F(EmbeddingsConfigTest, BitsMustBe8Or4AndKeysAreChecked) {
  EXPECT_THAT(VariantError({"        embeddings: {bits: 6}"}),
              HasSubstr("models[0].variants[0].embeddings.bits: embedding bits must be 8 or 4"));
  EXPECT_THAT(VariantError({"        embeddings: {bits: 2}"}),
              HasSubstr("out of range (allowed: 4..8)"));
  EXPECT_THAT(VariantError({"        embeddings: {bitz: 4}"}),
              HasSubstr("models[0].variants[0].embeddings"));
}

TEST_F(EmbeddingsConfigTest, AnEmbeddingsVariantIsNotADriftReference) {
  const std::string yaml = Lines({
      "models:",
      "  - name: m",
      "    path: model.onnx",
      "    drift: {sample_rate: 0.1, reference: e4}",
      "    variants:",
      "      - name: fp32",
      "      - name: e4",
      "        embeddings: {bits: 4}",
  });
  EXPECT_THAT(Error(yaml), HasSubstr("\"e4\" is quantized"));
}

}  // namespace
}  // namespace qs

// ONNX operator conformance: every libonnx-testdata node test whose ops the
// engine claims must pass, or be listed with a reason in skips.txt. A listed
// test that starts passing fails too, so the list stays true.
#include <gtest/gtest.h>

#include "tests/conformance/conformance_cases.h"

namespace qs::conformance {
namespace {

class OnnxNodeTest : public ::testing::TestWithParam<Case> {};

TEST_P(OnnxNodeTest, MatchesReference) {
  const Case& c = GetParam();
  absl::Status result = RunCase(c);
  auto skip = KnownSkips().find(c.name);
  if (skip != KnownSkips().end()) {
    EXPECT_FALSE(result.ok()) << c.name << " passes now: remove it from skips.txt";
    if (!result.ok()) GTEST_SKIP() << skip->second << " [" << result.message() << "]";
    return;
  }
  EXPECT_TRUE(result.ok()) << c.name << ": " << result;
}

INSTANTIATE_TEST_SUITE_P(Onnx, OnnxNodeTest, ::testing::ValuesIn(ClaimedCases()),
                         [](const auto& info) { return info.param.name; });
GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(OnnxNodeTest);

// Runs every case in one process and prints the totals recorded in README.
TEST(OnnxConformanceSummary, CountsPassedAndSkipped) {
  auto cases = ClaimedCases();
  if (cases.empty()) GTEST_SKIP() << "libonnx-testdata is not installed";
  int passed = 0, skipped = 0, failed = 0;
  for (const auto& c : cases) {
    const bool ok = RunCase(c).ok();
    const bool listed = KnownSkips().count(c.name) > 0;
    if (ok && !listed) ++passed;
    else if (!ok && listed) ++skipped;
    else ++failed;
  }
  std::printf("ONNX conformance: %zu cases of claimed ops: %d passed, %d skipped (listed), "
              "%d unexpected\n", cases.size(), passed, skipped, failed);
  EXPECT_EQ(failed, 0);
  EXPECT_GT(passed, 100);
}

}  // namespace
}  // namespace qs::conformance

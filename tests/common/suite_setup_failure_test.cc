// Run by the ctest `StrictGtestMainFailsASuiteSetUp` (never directly): its
// SetUpTestSuite fails, which qs_gtest_main must turn into an abort (a
// failed ctest) rather than skipped tests.
#include <gtest/gtest.h>

namespace {

class BrokenSuite : public testing::Test {
 protected:
  static void SetUpTestSuite() { FAIL() << "the suite's server did not start"; }
};

TEST_F(BrokenSuite, NeverRuns) { SUCCEED(); }

}  // namespace

// The gtest main of every test binary. It differs from GTest::gtest_main in
// one way: a failure outside a test (a fatal assertion or an exception in a
// fixture's SetUpTestSuite/TearDownTestSuite) aborts the process at once.
//
// Why: googletest then marks the suite's tests "[  SKIPPED ]", and the ctest
// entries gtest_discover_tests creates treat that text as a skip, so a
// server that failed to start in SetUpTestSuite showed up as skipped tests
// in a green CI run. An abort is a failure ctest cannot mistake.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>

namespace {

// Tracks whether a test is running itself: UnitTest::current_test_info()
// takes the lock gtest holds while it reports a result (a deadlock here).
class AbortOnFailureOutsideTests : public testing::EmptyTestEventListener {
  void OnTestStart(const testing::TestInfo&) override { in_test_ = true; }
  void OnTestEnd(const testing::TestInfo&) override { in_test_ = false; }
  void OnTestPartResult(const testing::TestPartResult& result) override {
    if (!result.failed() || in_test_) return;
    std::fprintf(stderr,
                 "%s:%d: failure outside any test (suite set-up or tear-down):\n%s\n"
                 "aborting so that the suite's tests fail instead of being skipped\n",
                 result.file_name() ? result.file_name() : "unknown file",
                 result.line_number(), result.message());
    std::fflush(stderr);
    std::abort();
  }
  // Read from any thread that fails an assertion (test helpers' threads).
  std::atomic<bool> in_test_{false};
};

}  // namespace

int main(int argc, char** argv) {
  testing::InitGoogleTest(&argc, argv);
  testing::UnitTest::GetInstance()->listeners().Append(new AbortOnFailureOutsideTests);
  return RUN_ALL_TESTS();
}

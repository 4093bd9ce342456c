// The bounded memory of recent answers that Feedback scores.
#include "server/feedback_store.h"

#include <gtest/gtest.h>

namespace qs {
namespace {

using Outcome = FeedbackStore::Taken::Outcome;

TEST(FeedbackStoreTest, KeepsTheServedAnswerAndReplayedOnesUntilTaken) {
  FeedbackStore store(10, 3);
  store.Record("r1", 1, {4, 5});
  store.Add("r1", 0, {4, 6});
  store.Add("r1", 2, {1});  // wrong sample count: not this request's answer
  FeedbackStore::Taken t = store.Take("r1", 2);
  ASSERT_EQ(t.outcome, Outcome::kTaken);
  EXPECT_EQ(t.predictions[0], (std::vector<int32_t>{4, 6}));
  EXPECT_EQ(t.predictions[1], (std::vector<int32_t>{4, 5}));
  EXPECT_TRUE(t.predictions[2].empty());
  EXPECT_EQ(store.Take("r1", 2).outcome, Outcome::kUnknown);  // scored once
}

TEST(FeedbackStoreTest, AWrongLabelCountKeepsTheEntry) {
  FeedbackStore store(10, 1);
  store.Record("r", 0, {1, 2, 3});
  FeedbackStore::Taken t = store.Take("r", 2);
  EXPECT_EQ(t.outcome, Outcome::kWrongCount);
  EXPECT_EQ(t.samples, 3u);
  EXPECT_EQ(store.Take("r", 3).outcome, Outcome::kTaken);
}

TEST(FeedbackStoreTest, ForgetsTheOldestWhenFull) {
  FeedbackStore store(2, 1);
  store.Record("a", 0, {1});
  store.Record("b", 0, {1});
  store.Record("a", 0, {2});  // reuse: "a" is now the newest
  store.Record("c", 0, {1});  // evicts "b"
  EXPECT_EQ(store.size(), 2u);
  EXPECT_EQ(store.Take("b", 1).outcome, Outcome::kUnknown);
  FeedbackStore::Taken a = store.Take("a", 1);
  ASSERT_EQ(a.outcome, Outcome::kTaken);
  EXPECT_EQ(a.predictions[0], std::vector<int32_t>{2});
  EXPECT_EQ(store.Take("c", 1).outcome, Outcome::kTaken);
}

TEST(FeedbackStoreTest, AddForAForgottenRequestIsIgnored) {
  FeedbackStore store(1, 2);
  store.Add("gone", 1, {3});
  EXPECT_EQ(store.size(), 0u);
}

TEST(FeedbackStoreTest, ZeroCapacityKeepsNothing) {
  FeedbackStore store(0, 1);
  store.Record("r", 0, {1});
  EXPECT_EQ(store.Take("r", 1).outcome, Outcome::kUnknown);
}

}  // namespace
}  // namespace qs

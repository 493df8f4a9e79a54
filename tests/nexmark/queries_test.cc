// Nexmark queries (q0, q1, q2, q14, q21, q22) against PostgreSQL: the generated bids are loaded with
// COPY into a server the test starts, the equivalent SQL runs there, and a
// bounded run of each query at parallelism 1 and 2 must produce exactly
// its rows (differences are listed row by row).
#include <freshet/freshet.h>
#include <freshet/nexmark.h>
#include <freshet/nexmark_queries.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "support/postgres.h"

namespace freshet::nexmark {
namespace {

using Rows = test_support::PostgresServer::Rows;

constexpr int64_t kEvents = 200000;

class NexmarkQueriesTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    server_ = std::make_unique<test_support::PostgresServer>();
    LoadBids("bid", GeneratorConfig{});
  }
  static void TearDownTestSuite() { server_.reset(); }

  /// Creates `table` with the bids of the first kEvents events of `config`.
  static void LoadBids(const std::string& table, const GeneratorConfig& config) {
    server_->Query("CREATE TABLE " + table +
                   " (auction BIGINT, bidder BIGINT, price BIGINT, channel TEXT, url TEXT, "
                   "date_time BIGINT, extra TEXT)");
    Generator gen(config);
    std::string text;
    for (int64_t n = 0; n < kEvents; ++n) {
      Event e = gen.At(n);
      if (e.type != Event::kBid) continue;
      const Bid& b = e.bid;
      text += std::to_string(b.auction) + '\t' + std::to_string(b.bidder) + '\t' + std::to_string(b.price) + '\t' +
              b.channel + '\t' + b.url + '\t' + std::to_string(b.date_time) + '\t' + b.extra + '\n';
    }
    server_->Copy(table, text);
  }

  /// The first kEvents events of `config`, as a bounded source.
  static DataStream<Event> Events(StreamExecutionEnvironment& env, const GeneratorConfig& config = {}) {
    Generator gen(config);
    return env.FromGenerator([gen](int64_t n) { return gen.At(n); }, kEvents).Name("nexmark");
  }

  /// Expects equal row sets; lists the first differences.
  static void ExpectSameRows(Rows actual, Rows expected) {
    std::sort(actual.begin(), actual.end());
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(actual.size(), expected.size());
    std::vector<std::vector<std::string>> missing, extra;
    std::set_difference(expected.begin(), expected.end(), actual.begin(), actual.end(), std::back_inserter(missing));
    std::set_difference(actual.begin(), actual.end(), expected.begin(), expected.end(), std::back_inserter(extra));
    auto show = [](const std::vector<std::string>& row) {
      std::string s;
      for (const std::string& f : row) s += (s.empty() ? "" : " | ") + f;
      return s;
    };
    for (size_t i = 0; i < missing.size() && i < 10; ++i) ADD_FAILURE() << "missing row: " << show(missing[i]);
    for (size_t i = 0; i < extra.size() && i < 10; ++i) ADD_FAILURE() << "unexpected row: " << show(extra[i]);
  }

  /// Runs `query` over the events of `config` at parallelism 1 and 2 and
  /// expects the rows `to_row` makes of its output to be `expected`.
  template <class Query, class ToRow>
  static void ExpectQueryRows(Query query, ToRow to_row, const Rows& expected, const GeneratorConfig& config = {}) {
    for (int parallelism : {1, 2}) {
      SCOPED_TRACE("parallelism " + std::to_string(parallelism));
      auto env = StreamExecutionEnvironment::Create();
      env->SetParallelism(parallelism);
      Rows actual;
      for (const auto& r : query(Events(*env, config)).ExecuteAndCollect()) actual.push_back(to_row(r));
      ExpectSameRows(std::move(actual), expected);
    }
  }

  static std::unique_ptr<test_support::PostgresServer> server_;
};

/// A price in euros as PostgreSQL prints 0.908 * price.
std::string Euros(double price) {
  char text[64];
  std::snprintf(text, sizeof(text), "%.3f", price);
  return text;
}

std::unique_ptr<test_support::PostgresServer> NexmarkQueriesTest::server_;

TEST_F(NexmarkQueriesTest, Q0PassesEveryBidThrough) {
  Rows expected = server_->Query("SELECT auction, bidder, price, channel, url, date_time, extra FROM bid");
  ASSERT_GT(expected.size(), 150000u);
  ExpectQueryRows(Query0, [](const Bid& b) -> std::vector<std::string> {
    return {std::to_string(b.auction), std::to_string(b.bidder), std::to_string(b.price), b.channel, b.url,
            std::to_string(b.date_time), b.extra};
  }, expected);
}

TEST_F(NexmarkQueriesTest, Q1ConvertsPricesToEuros) {
  Rows expected = server_->Query("SELECT auction, bidder, 0.908 * price, date_time FROM bid");
  ExpectQueryRows(Query1, [](const EuroBid& b) -> std::vector<std::string> {
    return {std::to_string(b.auction), std::to_string(b.bidder), Euros(b.price), std::to_string(b.date_time)};
  }, expected);
}

TEST_F(NexmarkQueriesTest, Q2SelectsTheBidsOfEvery123rdAuction) {
  Rows expected = server_->Query("SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0");
  ASSERT_GT(expected.size(), 100u);
  ExpectQueryRows(Query2, [](const AuctionPrice& r) -> std::vector<std::string> {
    return {std::to_string(r.auction), std::to_string(r.price)};
  }, expected);
}

TEST_F(NexmarkQueriesTest, Q14BucketsExpensiveBidsByTimeOfDayWithAUserFunction) {
  // Five events per second: the run spans 11 hours, night, other and day.
  GeneratorConfig slow;
  slow.first_event_rate = 5;
  LoadBids("slow_bid", slow);
  Rows expected = server_->Query(
      "SELECT auction, bidder, 0.908 * price, CASE "
      "WHEN h >= 8 AND h <= 18 THEN 'dayTime' WHEN h <= 6 OR h >= 20 THEN 'nightTime' ELSE 'otherTime' END, "
      "date_time, extra, length(extra) - length(replace(extra, 'c', '')) FROM "
      "(SELECT *, extract(hour from to_timestamp(date_time / 1000.0) at time zone 'UTC') AS h FROM slow_bid) b "
      "WHERE 0.908 * price > 1000000 AND 0.908 * price < 50000000");
  ASSERT_GT(expected.size(), 1000u);
  std::set<std::string> types;
  for (const auto& row : expected) types.insert(row[3]);
  EXPECT_EQ(types, (std::set<std::string>{"dayTime", "nightTime", "otherTime"}));
  ExpectQueryRows(Query14, [](const BidTimeType& r) -> std::vector<std::string> {
    return {std::to_string(r.auction), std::to_string(r.bidder), Euros(r.price), r.bid_time_type,
            std::to_string(r.date_time), r.extra, std::to_string(r.c_counts)};
  }, expected, slow);
}

TEST_F(NexmarkQueriesTest, Q21ExtractsChannelIds) {
  Rows expected = server_->Query(
      "SELECT auction, bidder, price, channel, CASE WHEN lower(channel) = 'apple' THEN '0' "
      "WHEN lower(channel) = 'google' THEN '1' WHEN lower(channel) = 'facebook' THEN '2' "
      "WHEN lower(channel) = 'baidu' THEN '3' ELSE substring(url from '(?:&|^)channel_id=([^&]*)') END "
      "FROM bid WHERE substring(url from '(?:&|^)channel_id=([^&]*)') IS NOT NULL "
      "OR lower(channel) IN ('apple', 'google', 'facebook', 'baidu')");
  ASSERT_GT(expected.size(), 100000u);
  ExpectQueryRows(Query21, [](const ChannelBid& r) -> std::vector<std::string> {
    return {std::to_string(r.auction), std::to_string(r.bidder), std::to_string(r.price), r.channel, r.channel_id};
  }, expected);
}

TEST_F(NexmarkQueriesTest, Q22SplitsUrlsIntoDirectories) {
  Rows expected = server_->Query(
      "SELECT auction, bidder, price, channel, split_part(url, '/', 4), split_part(url, '/', 5), "
      "split_part(url, '/', 6) FROM bid");
  ExpectQueryRows(Query22, [](const UrlDirectories& r) -> std::vector<std::string> {
    return {std::to_string(r.auction), std::to_string(r.bidder), std::to_string(r.price), r.channel,
            r.dir1, r.dir2, r.dir3};
  }, expected);
}

}  // namespace
}  // namespace freshet::nexmark

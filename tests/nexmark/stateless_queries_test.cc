// The stateless Nexmark queries (q0, q1, q2, q14, q21, q22) against
// PostgreSQL: the generated events are loaded with COPY into a server the
// test starts, the equivalent SQL runs there, and a bounded run of each
// query at parallelism 1 and 2 must produce exactly its rows (differences
// are listed row by row).
#include <freshet/nexmark_queries.h>

#include <set>

#include "support/nexmark_oracle.h"

namespace freshet::nexmark {
namespace {

constexpr int64_t kEvents = 200000;

class NexmarkQueriesTest : public test_support::NexmarkOracleTest {
 protected:
  static void SetUpTestSuite() {
    NexmarkOracleTest::SetUpTestSuite();
    LoadEvents("", GeneratorConfig{}, kEvents);
  }

  template <class Query, class ToRow>
  static void ExpectQueryRows(Query query, ToRow to_row, const Rows& expected, const GeneratorConfig& config = {}) {
    NexmarkOracleTest::ExpectQueryRows(query, to_row, expected, config, kEvents);
  }
};

/// A price in euros as PostgreSQL prints 0.908 * price.
std::string Euros(double price) { return test_support::NexmarkOracleTest::Fixed(price, 3); }

TEST_F(NexmarkQueriesTest, Q0PassesEveryBidThrough) {
  Rows expected = Sql("SELECT auction, bidder, price, channel, url, date_time, extra FROM bid");
  ASSERT_GT(expected.size(), 150000u);
  ExpectQueryRows(Query0, [](const Bid& b) -> std::vector<std::string> {
    return {std::to_string(b.auction), std::to_string(b.bidder), std::to_string(b.price), b.channel, b.url,
            std::to_string(b.date_time), b.extra};
  }, expected);
}

TEST_F(NexmarkQueriesTest, Q1ConvertsPricesToEuros) {
  Rows expected = Sql("SELECT auction, bidder, 0.908 * price, date_time FROM bid");
  ExpectQueryRows(Query1, [](const EuroBid& b) -> std::vector<std::string> {
    return {std::to_string(b.auction), std::to_string(b.bidder), Euros(b.price), std::to_string(b.date_time)};
  }, expected);
}

TEST_F(NexmarkQueriesTest, Q2SelectsTheBidsOfEvery123rdAuction) {
  Rows expected = Sql("SELECT auction, price FROM bid WHERE MOD(auction, 123) = 0");
  ASSERT_GT(expected.size(), 100u);
  ExpectQueryRows(Query2, [](const AuctionPrice& r) -> std::vector<std::string> {
    return {std::to_string(r.auction), std::to_string(r.price)};
  }, expected);
}

TEST_F(NexmarkQueriesTest, Q14BucketsExpensiveBidsByTimeOfDayWithAUserFunction) {
  // Five events per second: the run spans 11 hours, night, other and day.
  GeneratorConfig slow;
  slow.first_event_rate = 5;
  LoadEvents("slow_", slow, kEvents);
  Rows expected = Sql(
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
  Rows expected = Sql(
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
  Rows expected = Sql(
      "SELECT auction, bidder, price, channel, split_part(url, '/', 4), split_part(url, '/', 5), "
      "split_part(url, '/', 6) FROM bid");
  ExpectQueryRows(Query22, [](const UrlDirectories& r) -> std::vector<std::string> {
    return {std::to_string(r.auction), std::to_string(r.bidder), std::to_string(r.price), r.channel,
            r.dir1, r.dir2, r.dir3};
  }, expected);
}

}  // namespace
}  // namespace freshet::nexmark

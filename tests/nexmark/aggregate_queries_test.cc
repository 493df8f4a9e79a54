// The updating Nexmark queries (q15..q19) against PostgreSQL. Their output
// is a stream of upserts; a bounded run at parallelism 1 and 2 keeps the
// last row of each key, which must be exactly the rows of the equivalent
// SQL over the same events (differences are listed row by row). The runs
// advance the watermark (event time - 4 s, as the reference's) with every
// event rather than periodically, so keys emit along the way and the last
// row is not the only one. The emission discipline is checked on the rows'
// timestamps (the times of the timers that emitted them): each is the last
// millisecond of an emission period, and the rows of a key have increasing
// ones, so a key emits at most once per period.
#include <freshet/nexmark_aggregates.h>
#include <freshet/nexmark_source.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "support/nexmark_oracle.h"

namespace freshet::nexmark {
namespace {

// Two data sets. "slow_": at half an event per second of event time,
// 200,000 events span 4.6 days (2015-07-15 to 2015-07-19), for the
// grouping by day of q15..q17. The default rate: 20 s of event time, ten
// events per millisecond, so many bids per key and second (and bids of one
// bidder on one auction in one millisecond, for q18's tie rule).
constexpr int64_t kSlowEvents = 200000;
GeneratorConfig SlowConfig() {
  GeneratorConfig config;
  config.first_event_rate = 0.5;
  return config;
}
constexpr int64_t kEvents = 200000;

/// A loaded data set: the prefix of its tables and its generator.
struct DataSet {
  std::string prefix;
  GeneratorConfig config;
  int64_t events;
};
const DataSet kSlow{"slow_", SlowConfig(), kSlowEvents};
const DataSet kDefaultRate{"", GeneratorConfig{}, kEvents};

// The UTC day and minute of a bid's time in PostgreSQL.
const std::string kDay = "to_char(to_timestamp(date_time / 1000) AT TIME ZONE 'UTC', 'YYYY-MM-DD')";
const std::string kMinute = "to_char(to_timestamp(date_time / 1000) AT TIME ZONE 'UTC', 'HH24:MI')";
// The price ranks as SQL conditions.
const std::string kRanks[3] = {"price < 10000", "price >= 10000 AND price < 1000000", "price >= 1000000"};

// q15's and q16's twelve measures in SQL, in BidCounts's order.
std::string BidCountsSql() {
  std::string sql = "count(*)";
  for (const std::string& rank : kRanks) sql += ", count(*) FILTER (WHERE " + rank + ")";
  for (const char* column : {"bidder", "auction"}) {
    sql += std::string(", count(DISTINCT ") + column + ")";
    for (const std::string& rank : kRanks) {
      sql += std::string(", count(DISTINCT ") + column + ") FILTER (WHERE " + rank + ")";
    }
  }
  return sql;
}

std::vector<std::string> BidCountsRow(const BidCounts& c) {
  std::vector<std::string> row;
  for (int64_t v : {c.total_bids, c.rank1_bids, c.rank2_bids, c.rank3_bids, c.total_bidders, c.rank1_bidders,
                    c.rank2_bidders, c.rank3_bidders, c.total_auctions, c.rank1_auctions, c.rank2_auctions,
                    c.rank3_auctions}) {
    row.push_back(std::to_string(v));
  }
  return row;
}

std::vector<std::string> BidRow(const Bid& b) {
  return {std::to_string(b.auction), std::to_string(b.bidder), std::to_string(b.price), b.channel, b.url,
          std::to_string(b.date_time), b.extra};
}

/// The reference watermark, event time - 4 s, emitted with every event
/// that advances it. A periodic generator asked every 200 ms (or even every
/// millisecond) of processing time advances it only a few times during
/// these sub-second runs, after which keys would emit once, at the end.
class EveryEventWatermarks final : public WatermarkGenerator<Event> {
 public:
  void OnEvent(const Event&, Timestamp timestamp, WatermarkOutput& output) override {
    output.EmitWatermark(timestamp - 4000 - 1);  // the operator drops watermarks that do not advance
  }
  void OnPeriodicEmit(WatermarkOutput&) override {}
};

/// Pairs each row with its timestamp, the time of the timer that emitted it.
template <class R>
class WithEmissionTime final : public ProcessFunction<R, std::pair<R, Timestamp>> {
 public:
  using Context = typename ProcessFunction<R, std::pair<R, Timestamp>>::Context;
  void ProcessElement(const R& row, Context& ctx, Collector<std::pair<R, Timestamp>>& out) override {
    out.Collect({row, ctx.GetTimestamp()});
  }
};

class NexmarkAggregateQueriesTest : public test_support::NexmarkOracleTest {
 protected:
  static void SetUpTestSuite() {
    NexmarkOracleTest::SetUpTestSuite();
    for (const DataSet& data : {kSlow, kDefaultRate}) LoadEvents(data.prefix, data.config, data.events);
  }

  static int64_t Count(const std::string& sql) { return std::stoll(Sql(sql).at(0).at(0)); }

  /// Runs `query` over `data` at parallelism 1 and 2 with the heap state
  /// backend, and at parallelism 2 with RocksDB; expects every row
  /// at the end of an emission period, the rows of each key (`key_of(row)`;
  /// they come in the order they were emitted) in increasing periods, some
  /// key to emit more than once, and the last row of each key made into
  /// text by `to_row` to be `expected`.
  template <class Query, class KeyOf, class ToRow>
  static void ExpectFinalRows(Query query, KeyOf key_of, ToRow to_row, const Rows& expected, const DataSet& data) {
    using Backend = StateBackendOptions::Type;
    for (auto [parallelism, backend] : {std::pair{1, Backend::kHeap}, {2, Backend::kHeap}, {2, Backend::kRocksDB}}) {
      SCOPED_TRACE("parallelism " + std::to_string(parallelism) + (backend == Backend::kRocksDB ? ", RocksDB" : "") +
                   ", data set '" + data.prefix + "'");
      auto env = StreamExecutionEnvironment::Create();
      env->SetParallelism(parallelism);
      StateBackendOptions state;
      state.type = backend;
      env->SetStateBackend(state);
      // The Nexmark source interleaves event numbers over its subtasks, so
      // each covers the whole span of event time: watermarks advance through
      // it however the subtasks are scheduled (with contiguous ranges, one
      // subtask could run to its end first and the other's watermark then
      // jump, leaving one emission per key).
      GeneratorConfig config = data.config;
      config.events = data.events;
      DataStream<Event> events = env->FromSource(
          NexmarkSource(config),
          WatermarkStrategy<Event>::ForGenerator([] { return std::make_unique<EveryEventWatermarks>(); })
              .WithTimestampAssigner([](const Event& e) { return e.EventTime(); }),
          "nexmark");
      auto results = query(events);
      using Result = typename decltype(results)::ValueType;
      const auto rows = results.Process(WithEmissionTime<Result>()).ExecuteAndCollect();
      // Rows of one key come from one subtask, in the order it emitted them.
      std::map<Row, std::pair<Row, Timestamp>> last;
      int64_t off_period = 0, not_increasing = 0;
      for (const auto& [r, time] : rows) {
        if (time % kAggregateEmissionPeriod.count() != kAggregateEmissionPeriod.count() - 1) ++off_period;
        auto [it, added] = last.try_emplace(key_of(r), to_row(r), time);
        if (added) continue;
        if (time <= it->second.second) ++not_increasing;
        it->second = {to_row(r), time};
      }
      EXPECT_EQ(off_period, 0) << "rows emitted off the end of an emission period";
      EXPECT_EQ(not_increasing, 0) << "rows of a key emitted twice in a period or out of order";
      EXPECT_GT(rows.size(), last.size()) << "no key emitted more than once: the run did not exercise upserts";
      Rows actual;
      for (auto& [key, row_and_time] : last) actual.push_back(std::move(row_and_time.first));
      ExpectSameRows(std::move(actual), expected);
    }
  }

  /// Bids of `data` with their UTC day as `day`, as a FROM item.
  static std::string BidsWithDay(const DataSet& data) {
    return "(SELECT *, " + kDay + " AS day FROM " + data.prefix + "bid) b";
  }
};

TEST_F(NexmarkAggregateQueriesTest, Q15CountsBidsBiddersAndAuctionsPerDay) {
  for (const DataSet& data : {kSlow, kDefaultRate}) {
    const std::string bids = BidsWithDay(data);
    Rows expected = Sql("SELECT day, " + BidCountsSql() + " FROM " + bids + " GROUP BY day");
    ASSERT_GE(expected.size(), data.prefix == kSlow.prefix ? 5u : 1u);
    ExpectFinalRows(
        Query15, [](const DailyBidStats& r) -> Row { return {r.day}; },
        [](const DailyBidStats& r) {
          Row row{r.day};
          for (std::string& v : BidCountsRow(r.counts)) row.push_back(std::move(v));
          return row;
        },
        expected, data);
  }
}

TEST_F(NexmarkAggregateQueriesTest, Q16CountsPerChannelAndDayWithTheLatestMinute) {
  // Channels have bids on several days.
  ASSERT_GT(Count("SELECT count(*) FROM (SELECT channel FROM " + BidsWithDay(kSlow) +
                  " GROUP BY channel HAVING count(DISTINCT day) > 1) c"),
            1000);
  for (const DataSet& data : {kSlow, kDefaultRate}) {
    const std::string bids = BidsWithDay(data);
    Rows expected = Sql("SELECT channel, day, max(" + kMinute + "), " + BidCountsSql() + " FROM " + bids +
                        " GROUP BY channel, day");
    ASSERT_GT(expected.size(), 5000u);
    ExpectFinalRows(
        Query16, [](const ChannelDailyBidStats& r) -> Row { return {r.channel, r.day}; },
        [](const ChannelDailyBidStats& r) {
          Row row{r.channel, r.day, r.minute};
          for (std::string& v : BidCountsRow(r.counts)) row.push_back(std::move(v));
          return row;
        },
        expected, data);
  }
}

TEST_F(NexmarkAggregateQueriesTest, Q17AggregatesPricesPerAuctionAndDay) {
  std::string measures = "count(*)";
  for (const std::string& rank : kRanks) measures += ", count(*) FILTER (WHERE " + rank + ")";
  // AVG truncated to an integer, as Flink's AVG of a BIGINT.
  measures += ", min(price), max(price), trunc(avg(price))::bigint, sum(price)";
  // Auctions take bids on two days.
  ASSERT_GT(Count("SELECT count(*) FROM (SELECT auction FROM " + BidsWithDay(kSlow) +
                  " GROUP BY auction HAVING count(DISTINCT day) > 1) a"),
            10);
  for (const DataSet& data : {kSlow, kDefaultRate}) {
    const std::string bids = BidsWithDay(data);
    Rows expected = Sql("SELECT auction, day, " + measures + " FROM " + bids + " GROUP BY auction, day");
    ASSERT_GT(expected.size(), 5000u);
    ExpectFinalRows(
        Query17, [](const AuctionDailyBidStats& r) -> Row { return {std::to_string(r.auction), r.day}; },
        [](const AuctionDailyBidStats& r) -> Row {
          return {std::to_string(r.auction),    r.day,
                  std::to_string(r.total_bids), std::to_string(r.rank1_bids),
                  std::to_string(r.rank2_bids), std::to_string(r.rank3_bids),
                  std::to_string(r.min_price),  std::to_string(r.max_price),
                  std::to_string(r.avg_price),  std::to_string(r.sum_price)};
        },
        expected, data);
  }
}

TEST_F(NexmarkAggregateQueriesTest, Q18KeepsTheLatestBidOfEachBidderAndAuction) {
  Rows expected = Sql(
      "SELECT auction, bidder, price, channel, url, date_time, extra FROM (SELECT *, ROW_NUMBER() OVER ("
      "PARTITION BY bidder, auction ORDER BY date_time DESC, price DESC, channel COLLATE \"C\" DESC, "
      "url COLLATE \"C\" DESC, extra COLLATE \"C\" DESC) AS rank_number FROM bid) b WHERE rank_number = 1");
  // Deduplication matters: far fewer pairs than bids.
  ASSERT_GT(expected.size(), 10000u);
  ASSERT_LT(static_cast<int64_t>(expected.size()) * 2, Count("SELECT count(*) FROM bid"));
  // The tie rule matters: the latest millisecond of many pairs holds more
  // than one of their bids.
  ASSERT_GT(Count("SELECT count(*) FROM (SELECT date_time, count(*) AS n, "
                  "max(date_time) OVER (PARTITION BY bidder, auction) AS latest "
                  "FROM bid GROUP BY bidder, auction, date_time) t WHERE n > 1 AND date_time = latest"),
            10);
  ExpectFinalRows(
      Query18, [](const Bid& b) -> Row { return {std::to_string(b.bidder), std::to_string(b.auction)}; }, BidRow,
      expected, kDefaultRate);
}

TEST_F(NexmarkAggregateQueriesTest, Q19RanksTheTenHighestBidsOfEachAuction) {
  Rows expected = Sql(
      "SELECT auction, bidder, price, channel, url, date_time, extra, rank_number FROM (SELECT *, ROW_NUMBER() "
      "OVER (PARTITION BY auction ORDER BY price DESC, date_time, bidder, channel COLLATE \"C\", "
      "url COLLATE \"C\", extra COLLATE \"C\") AS rank_number FROM bid) b WHERE rank_number <= 10");
  ASSERT_GT(expected.size(), 10000u);
  // The cut matters: many auctions have more than ten bids.
  ASSERT_GT(Count("SELECT count(*) FROM (SELECT auction FROM bid GROUP BY auction HAVING count(*) > 10) a"), 100);
  ExpectFinalRows(
      Query19, [](const AuctionTopBid& r) -> Row { return {std::to_string(r.bid.auction), std::to_string(r.rank)}; },
      [](const AuctionTopBid& r) {
        Row row = BidRow(r.bid);
        row.push_back(std::to_string(r.rank));
        return row;
      },
      expected, kDefaultRate);
}

}  // namespace
}  // namespace freshet::nexmark

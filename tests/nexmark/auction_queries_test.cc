// The Nexmark queries over closed auctions (q9 winning bids, q4 average
// winning price per category, q6 average selling price per seller over
// their last 10 auctions) against PostgreSQL: the generated events are
// loaded into a server the test starts, SQL written from the queries'
// definitions runs there, and bounded runs of the queries at parallelism 1
// and 2 must produce its rows (differences are listed row by row). The
// final watermark of the bounded input closes every auction, so the SQL
// joins all auctions with all bids.
#include <freshet/nexmark_auctions.h>

#include <algorithm>
#include <map>
#include <random>
#include <set>
#include <string>
#include <tuple>
#include <vector>

#include "support/nexmark_oracle.h"

namespace freshet::nexmark {
namespace {

// 300,000 events: about 18,000 auctions (3 in 50 events) and 276,000 bids.
constexpr int64_t kEvents = 300000;

/// The default rate, 10,000 events per second: 30 s of event time, each
/// auction open for up to about a third of a second.
GeneratorConfig DefaultConfig() { return GeneratorConfig{}; }

/// 100,000 events per second: 100 events per millisecond, so that some
/// bids on auctions a few ids ahead of the last one share their auction's
/// date_time, fall inside its lifetime and win although the generator
/// makes them before the auction (none win at the default rate).
GeneratorConfig BusyConfig() {
  GeneratorConfig config;
  config.first_event_rate = 100000;
  return config;
}

using BackendType = StateBackendOptions::Type;

/// The bids inside their auction's lifetime, each with its auction's
/// fields, from the tables of `prefix`.
std::string AuctionBids(const std::string& prefix) {
  return prefix + "auction a JOIN " + prefix + "bid b ON b.auction = a.id AND b.date_time BETWEEN a.date_time AND a.expires";
}

/// Each auction's winning price (the maximum; ties do not matter here).
std::string FinalPrices(const std::string& prefix) {
  return "SELECT a.id, a.seller, a.category, a.expires, MAX(b.price) AS final FROM " + AuctionBids(prefix) +
         " GROUP BY a.id, a.seller, a.category, a.expires";
}

/// Events made for the corners the generator rarely reaches: prices from
/// {100, 200, 300} and bid times within a few milliseconds, so that bids
/// tie on price and on price and date_time (the tie rules decide); bids
/// just inside and just outside each lifetime, auctions whose lifetime is
/// a single millisecond, few sellers (auctions of a seller expiring at the
/// same time), and a stream order that moves every event up to 0.5 s from
/// its event time, so that many bids come before their auction. No event
/// is late for watermarks of event time - 4 s. No two bids on an auction
/// share price, date_time and bidder.
std::vector<Event> CraftedEvents() {
  std::mt19937_64 random(20240601);
  auto uniform = [&](int64_t low, int64_t high) { return std::uniform_int_distribution<int64_t>(low, high)(random); };
  constexpr Timestamp kBase = 1'000'000;
  std::vector<std::pair<Timestamp, Event>> placed;  // (stream position, event)
  for (int64_t i = 0; i < 3000; ++i) {
    Event a;
    a.type = Event::kAuction;
    Auction& x = a.auction;
    x.id = 1 + i;
    x.item_name = "item " + std::to_string(x.id);
    x.description = "description " + std::to_string(uniform(0, 999));
    x.initial_bid = uniform(1, 100);
    x.reserve = x.initial_bid + uniform(0, 100);
    x.date_time = kBase + i * 5;
    x.expires = x.date_time + uniform(0, 40);
    x.seller = uniform(1, 4);
    x.category = uniform(1, 3);
    x.extra = "auction extra " + std::to_string(uniform(0, 1 << 20));
    Timestamp at = x.date_time + uniform(-500, 500);
    std::set<std::tuple<int64_t, Timestamp, int64_t>> taken;
    for (int64_t n = uniform(0, 8), j = 0; j < n; ++j) {
      Event b;
      b.type = Event::kBid;
      Bid& y = b.bid;
      y.auction = x.id;
      y.bidder = uniform(1, 50);
      y.price = 100 * uniform(1, 3);
      y.date_time = uniform(x.date_time - 3, x.expires + 3);
      if (!taken.emplace(y.price, y.date_time, y.bidder).second) continue;
      y.channel = "channel";
      y.url = "https://example.com/" + std::to_string(j);
      y.extra = "bid extra " + std::to_string(uniform(0, 1 << 20));
      placed.emplace_back(y.date_time + uniform(-500, 500), std::move(b));
    }
    placed.emplace_back(at, std::move(a));
  }
  std::stable_sort(placed.begin(), placed.end(), [](const auto& l, const auto& r) { return l.first < r.first; });
  std::vector<Event> events;
  events.reserve(placed.size());
  for (auto& [at, e] : placed) events.push_back(std::move(e));
  return events;
}

class NexmarkAuctionQueriesTest : public test_support::NexmarkOracleTest {
 protected:
  static void SetUpTestSuite() {
    NexmarkOracleTest::SetUpTestSuite();
    LoadEvents("", DefaultConfig(), kEvents);
    LoadEvents("busy_", BusyConfig(), kEvents);
    LoadCraftedEvents("crafted_", CraftedEvents());
  }

  /// The output of `query` over the first kEvents events of `config`, run
  /// at `parallelism` with keyed state on `backend`.
  template <class Query>
  static auto Run(Query query, const GeneratorConfig& config, int parallelism, BackendType backend) {
    auto env = StreamExecutionEnvironment::Create();
    env->SetParallelism(parallelism);
    StateBackendOptions options;
    options.type = backend;
    env->SetStateBackend(options);
    return query(Events(*env, config, kEvents)).ExecuteAndCollect();
  }

  /// Creates `<prefix>auction` and `<prefix>bid` holding the auctions and
  /// bids of `events` (the columns of LoadEvents).
  static void LoadCraftedEvents(const std::string& prefix, const std::vector<Event>& events) {
    Sql("CREATE TABLE " + prefix +
        "auction (id BIGINT, item_name TEXT, description TEXT, initial_bid BIGINT, reserve BIGINT, "
        "date_time BIGINT, expires BIGINT, seller BIGINT, category BIGINT, extra TEXT)");
    Sql("CREATE TABLE " + prefix +
        "bid (auction BIGINT, bidder BIGINT, price BIGINT, channel TEXT, url TEXT, date_time BIGINT, extra TEXT)");
    std::string auctions, bids;
    auto line = [](std::string& text, const std::vector<std::string>& fields) {
      for (size_t i = 0; i < fields.size(); ++i) text += (i == 0 ? "" : "\t") + fields[i];
      text += '\n';
    };
    for (const Event& e : events) {
      if (e.type == Event::kAuction) {
        const Auction& a = e.auction;
        line(auctions, {ToText(a.id), a.item_name, a.description, ToText(a.initial_bid), ToText(a.reserve),
                        ToText(a.date_time), ToText(a.expires), ToText(a.seller), ToText(a.category), a.extra});
      } else if (e.type == Event::kBid) {
        const Bid& b = e.bid;
        line(bids, {ToText(b.auction), ToText(b.bidder), ToText(b.price), b.channel, b.url, ToText(b.date_time),
                    b.extra});
      }
    }
    Server().Copy(prefix + "auction", auctions);
    Server().Copy(prefix + "bid", bids);
  }

  /// The output of `query` over `events` in their order, with watermarks of
  /// event time - 4 s, run at `parallelism` with keyed state on `backend`.
  template <class Query>
  static auto RunOn(Query query, const std::vector<Event>& events, int parallelism, BackendType backend) {
    auto env = StreamExecutionEnvironment::Create();
    env->SetParallelism(parallelism);
    StateBackendOptions options;
    options.type = backend;
    env->SetStateBackend(options);
    auto source = env->FromCollection(events).AssignTimestampsAndWatermarks(
        WatermarkStrategy<Event>::ForBoundedOutOfOrderness(Duration(4000)).WithTimestampAssigner([](const Event& e) {
          return e.EventTime();
        }));
    return query(source).ExecuteAndCollect();
  }

  /// A single number a query returns.
  static int64_t Count(const std::string& query) {
    Rows rows = Sql(query);
    EXPECT_EQ(rows.size(), 1u) << query;
    return rows.size() == 1 ? std::stoll(rows[0][0]) : -1;
  }

  static Row Q9Row(const AuctionWinningBid& r) {
    return {std::to_string(r.id),       r.item_name,
            r.description,              std::to_string(r.initial_bid),
            std::to_string(r.reserve),  std::to_string(r.date_time),
            std::to_string(r.expires),  std::to_string(r.seller),
            std::to_string(r.category), r.extra,
            std::to_string(r.auction),  std::to_string(r.bidder),
            std::to_string(r.price),    std::to_string(r.bid_date_time),
            r.bid_extra};
  }
  static Row Q6Row(const SellerAverage& r) {
    return {std::to_string(r.seller), std::to_string(r.auction), std::to_string(r.average)};
  }

  /// q9's rows by SQL: per auction, the first of its bids in its lifetime
  /// by price (descending), date_time, bidder.
  static Rows Query9Sql(const std::string& prefix) {
    return Sql(
        "SELECT id, item_name, description, initial_bid, reserve, date_time, expires, seller, category, extra, "
        "auction, bidder, price, bid_date_time, bid_extra FROM ("
        "SELECT a.*, b.auction, b.bidder, b.price, b.date_time AS bid_date_time, b.extra AS bid_extra, "
        "ROW_NUMBER() OVER (PARTITION BY a.id ORDER BY b.price DESC, b.date_time ASC, b.bidder ASC) AS rownum "
        "FROM " + AuctionBids(prefix) + ") ranked WHERE rownum = 1");
  }

  /// q6's rows by SQL.
  static Rows Query6Sql(const std::string& prefix) {
    return Sql(
        "SELECT seller, id, TRUNC(AVG(final) OVER (PARTITION BY seller ORDER BY expires, id "
        "ROWS BETWEEN 9 PRECEDING AND CURRENT ROW))::BIGINT FROM (" + FinalPrices(prefix) + ") q");
  }
};

/// (auction, bidder, price, date_time) of the bids that the generator
/// makes before the auction they bid on.
std::set<std::tuple<int64_t, int64_t, int64_t, Timestamp>> BidsBeforeTheirAuction(const GeneratorConfig& config) {
  Generator gen(config);
  std::set<int64_t> auctions;
  std::set<std::tuple<int64_t, int64_t, int64_t, Timestamp>> early;
  Event e;
  for (int64_t n = 0; n < kEvents; ++n) {
    gen.Fill(n, &e);
    if (e.type == Event::kAuction) auctions.insert(e.auction.id);
    if (e.type == Event::kBid && !auctions.contains(e.bid.auction)) {
      early.emplace(e.bid.auction, e.bid.bidder, e.bid.price, e.bid.date_time);
    }
  }
  return early;
}

TEST_F(NexmarkAuctionQueriesTest, Q9EmitsTheWinningBidOfEveryClosedAuction) {
  Rows expected = Query9Sql("busy_");
  int64_t auctions = Count("SELECT COUNT(*) FROM busy_auction");
  int64_t without_bids = Count(
      "SELECT COUNT(*) FROM busy_auction a WHERE NOT EXISTS (SELECT 1 FROM busy_bid b WHERE b.auction = a.id "
      "AND b.date_time BETWEEN a.date_time AND a.expires)");
  // Many auctions close with a winner, many without a bid in their lifetime.
  EXPECT_GT(expected.size(), 10000u);
  EXPECT_GT(without_bids, 1000);
  EXPECT_EQ(static_cast<int64_t>(expected.size()) + without_bids, auctions);
  // The order (price, date_time, bidder) determines every winner: no
  // auction has two bids tied for first.
  EXPECT_EQ(Count("SELECT COUNT(*) FROM (SELECT id FROM (SELECT a.id, RANK() OVER (PARTITION BY a.id "
                  "ORDER BY b.price DESC, b.date_time, b.bidder) AS r FROM " +
                  AuctionBids("busy_") + ") ranked WHERE r = 1 GROUP BY id HAVING COUNT(*) > 1) tied"),
            0);
  // Some winners come before their auction in the event sequence: in any
  // order of the operator's two inputs they wait as early bids.
  auto early = BidsBeforeTheirAuction(BusyConfig());
  int64_t early_winners = 0;
  for (const Row& r : expected) {
    early_winners += early.contains({std::stoll(r[10]), std::stoll(r[11]), std::stoll(r[12]), std::stoll(r[13])});
  }
  EXPECT_GT(early_winners, 100);

  ExpectQueryRows(Query9, Q9Row, expected, BusyConfig(), kEvents);
}

TEST_F(NexmarkAuctionQueriesTest, Q9WithoutRememberingClosedAuctionsGivesTheSameRows) {
  // Bids on closed auctions then wait as early bids until the watermark
  // passes them, rather than being dropped on arrival.
  Rows expected = Query9Sql("");
  ASSERT_GT(expected.size(), 10000u);
  auto forget_closed = [](DataStream<Event> events) {
    return WinningBids(Query9Auctions(events), Query9Bids(events), MakeAuctionWinningBid{}, Duration(0));
  };
  ExpectQueryRows(forget_closed, Q9Row, expected, DefaultConfig(), kEvents);
}

TEST_F(NexmarkAuctionQueriesTest, Q4AveragesWinningPricesPerCategory) {
  Rows expected = Sql("SELECT category, TRUNC(AVG(final))::BIGINT FROM (" + FinalPrices("") + ") q GROUP BY category");
  ASSERT_EQ(expected.size(), 5u);
  for (const Row& r : Sql("SELECT COUNT(*) FROM (" + FinalPrices("") + ") q GROUP BY category")) {
    EXPECT_GT(std::stoll(r[0]), 1000);
  }
  // An update per category at most once per second of event time: no more
  // rows per category than seconds from the first to the last close.
  Rows span = Sql("SELECT MIN(expires) / 1000, MAX(expires) / 1000 FROM auction");
  ASSERT_EQ(span.size(), 1u);
  int64_t seconds = std::stoll(span[0][1]) - std::stoll(span[0][0]) + 1;
  ASSERT_GT(seconds, 20);

  for (int parallelism : {1, 2}) {
    SCOPED_TRACE("parallelism " + std::to_string(parallelism));
    std::map<int64_t, int64_t> last, updates;
    for (const CategoryAverage& r : Run(Query4, DefaultConfig(), parallelism, BackendType::kHeap)) {
      last[r.category] = r.average;
      ++updates[r.category];
    }
    Rows actual;
    for (const auto& [category, average] : last) actual.push_back({std::to_string(category), std::to_string(average)});
    ExpectSameRows(actual, expected);
    for (const auto& [category, n] : updates) {
      EXPECT_GT(n, seconds / 2) << "category " << category;
      EXPECT_LE(n, seconds) << "category " << category;
    }
  }
}

TEST_F(NexmarkAuctionQueriesTest, Q6AveragesEachSellersLastTenClosedAuctions) {
  Rows expected = Query6Sql("");
  EXPECT_GT(expected.size(), 10000u);
  // Sellers with more than ten closed auctions, whose window slides.
  EXPECT_GT(Count("SELECT COUNT(*) FROM (SELECT ROW_NUMBER() OVER (PARTITION BY seller ORDER BY expires, id) AS n "
                  "FROM (" + FinalPrices("") + ") q) numbered WHERE n > 10"),
            500);
  // Auctions of one seller closing at the same time, ordered by id.
  EXPECT_GT(Count("SELECT COUNT(*) FROM (SELECT seller, expires FROM (" + FinalPrices("") +
                  ") q GROUP BY seller, expires HAVING COUNT(*) > 1) same"),
            10);
  ExpectQueryRows(Query6, Q6Row, expected, DefaultConfig(), kEvents);
}

TEST_F(NexmarkAuctionQueriesTest, Q9RunsOnTheRocksDBBackend) {
  Rows expected = Query9Sql("busy_");
  ASSERT_GT(expected.size(), 10000u);
  for (int parallelism : {1, 2}) {
    SCOPED_TRACE("parallelism " + std::to_string(parallelism));
    Rows actual;
    for (const auto& r : Run(Query9, BusyConfig(), parallelism, BackendType::kRocksDB)) actual.push_back(Q9Row(r));
    ExpectSameRows(actual, expected);
  }
}

TEST_F(NexmarkAuctionQueriesTest, Q6RunsOnTheRocksDBBackend) {
  Rows expected = Query6Sql("");
  ASSERT_GT(expected.size(), 10000u);
  for (int parallelism : {1, 2}) {
    SCOPED_TRACE("parallelism " + std::to_string(parallelism));
    Rows actual;
    for (const auto& r : Run(Query6, DefaultConfig(), parallelism, BackendType::kRocksDB)) actual.push_back(Q6Row(r));
    ExpectSameRows(actual, expected);
  }
}

TEST_F(NexmarkAuctionQueriesTest, CraftedTiesBoundariesAndEarlyBids) {
  std::vector<Event> events = CraftedEvents();
  Rows q9_expected = Query9Sql("crafted_");
  Rows q6_expected = Query6Sql("crafted_");
  Rows q4_expected =
      Sql("SELECT category, TRUNC(AVG(final))::BIGINT FROM (" + FinalPrices("crafted_") + ") q GROUP BY category");
  EXPECT_GT(q9_expected.size(), 2000u);
  EXPECT_EQ(q4_expected.size(), 3u);
  // The best two bids of an auction tie on price, and on price and
  // date_time: the second and third rules decide.
  std::string top_two =
      "SELECT a.id, b.price, b.date_time, ROW_NUMBER() OVER (PARTITION BY a.id ORDER BY b.price DESC, b.date_time, "
      "b.bidder) AS r FROM " + AuctionBids("crafted_");
  std::string ties = "SELECT COUNT(*) FROM (" + top_two + ") x JOIN (" + top_two +
                     ") y ON x.id = y.id AND x.r = 1 AND y.r = 2 AND x.price = y.price";
  EXPECT_GT(Count(ties), 200);
  EXPECT_GT(Count(ties + " AND x.date_time = y.date_time"), 20);
  // Winners on the lifetime's bounds, and bids just outside it.
  EXPECT_GT(Count("SELECT COUNT(*) FROM (" + top_two + ") w JOIN crafted_auction a ON a.id = w.id "
                  "WHERE w.r = 1 AND w.date_time = a.expires AND a.expires > a.date_time"),
            20);
  EXPECT_GT(Count("SELECT COUNT(*) FROM (" + top_two + ") w JOIN crafted_auction a ON a.id = w.id "
                  "WHERE w.r = 1 AND w.date_time = a.date_time AND a.expires > a.date_time"),
            20);
  EXPECT_GT(Count("SELECT COUNT(*) FROM crafted_bid b JOIN crafted_auction a ON a.id = b.auction "
                  "WHERE b.date_time = a.expires + 1 OR b.date_time = a.date_time - 1"),
            200);
  // Auctions of one seller closing at the same time.
  EXPECT_GT(Count("SELECT COUNT(*) FROM (SELECT seller, expires FROM (" + FinalPrices("crafted_") +
                  ") q GROUP BY seller, expires HAVING COUNT(*) > 1) same"),
            20);
  // Bids that come before their auction in the stream.
  std::set<int64_t> seen;
  int64_t early = 0;
  for (const Event& e : events) {
    if (e.type == Event::kAuction) seen.insert(e.auction.id);
    if (e.type == Event::kBid) early += seen.contains(e.bid.auction) ? 0 : 1;
  }
  EXPECT_GT(early, 1000);

  for (auto [parallelism, backend] : {std::pair{1, BackendType::kHeap}, std::pair{2, BackendType::kHeap},
                                      std::pair{1, BackendType::kRocksDB}, std::pair{2, BackendType::kRocksDB}}) {
    SCOPED_TRACE("parallelism " + std::to_string(parallelism) +
                 (backend == BackendType::kHeap ? ", heap" : ", RocksDB"));
    Rows q9_actual, q6_actual, q4_actual;
    for (const auto& r : RunOn(Query9, events, parallelism, backend)) q9_actual.push_back(Q9Row(r));
    for (const auto& r : RunOn(Query6, events, parallelism, backend)) q6_actual.push_back(Q6Row(r));
    std::map<int64_t, int64_t> last;
    for (const auto& r : RunOn(Query4, events, parallelism, backend)) last[r.category] = r.average;
    for (const auto& [category, average] : last) q4_actual.push_back({std::to_string(category), std::to_string(average)});
    ExpectSameRows(q9_actual, q9_expected);
    ExpectSameRows(q6_actual, q6_expected);
    ExpectSameRows(q4_actual, q4_expected);
  }
}

}  // namespace
}  // namespace freshet::nexmark

// The Nexmark join queries (q3, q8, q13, q20) against PostgreSQL: the
// generated events are loaded with COPY into a server the suite starts, the
// equivalent SQL joins run there, and bounded runs of each query at
// parallelism 1 and 2 must produce exactly its rows (differences are listed
// row by row). The regular joins also run over the events in reverse order,
// so that every auction arrives before its seller and every bid before its
// auction.
#include <freshet/nexmark_joins.h>

#include <set>
#include <string>
#include <vector>

#include "support/nexmark_oracle.h"
#include "support/temp_dir.h"

namespace freshet::nexmark {
namespace {

// 4,000 people, 12,000 auctions (about 2,400 of category 10) and 184,000
// bids over 20 s of event time.
constexpr int64_t kEvents = 200000;

// q8's events: 1,000 per second, so 400,000 events span 400 s, 40 windows
// of 10 s with about 200 new people and 600 auctions each.
constexpr int64_t kQ8Events = 400000;
constexpr double kQ8Rate = 1000;

class NexmarkJoinQueriesTest : public test_support::NexmarkOracleTest {
 protected:
  static void SetUpTestSuite() {
    NexmarkOracleTest::SetUpTestSuite();
    LoadEvents("", GeneratorConfig{}, kEvents);
  }

  template <class Query, class ToRow>
  static void ExpectQueryRows(Query query, ToRow to_row, const Rows& expected, const GeneratorConfig& config = {},
                              int64_t events = kEvents) {
    NexmarkOracleTest::ExpectQueryRows(query, to_row, expected, config, events);
  }

  /// As ExpectQueryRows, over the first kEvents events of the default
  /// configuration in reverse order (no watermarks: for the regular joins).
  template <class Query, class ToRow>
  static void ExpectReversedQueryRows(Query query, ToRow to_row, const Rows& expected) {
    Generator gen{GeneratorConfig{}};
    for (int parallelism : {1, 2}) {
      SCOPED_TRACE("reversed, parallelism " + std::to_string(parallelism));
      auto env = StreamExecutionEnvironment::Create();
      env->SetParallelism(parallelism);
      auto events = env->FromGenerator([gen](int64_t n) { return gen.At(kEvents - 1 - n); }, kEvents);
      Rows actual;
      for (const auto& r : query(events).ExecuteAndCollect()) actual.push_back(to_row(r));
      ExpectSameRows(std::move(actual), expected);
    }
  }

  static int64_t Count(const std::string& sql) { return std::stoll(Sql(sql).at(0).at(0)); }
};

std::string Str(int64_t v) { return std::to_string(v); }

// ---- q3 -------------------------------------------------------------------------

const char* const kQ3Sql =
    "SELECT p.name, p.city, p.state, a.id FROM auction a JOIN person p ON a.seller = p.id "
    "WHERE a.category = 10 AND p.state IN ('OR', 'ID', 'CA')";

std::vector<std::string> Q3Row(const LocalItemSuggestion& r) { return {r.name, r.city, r.state, Str(r.id)}; }

TEST_F(NexmarkJoinQueriesTest, Q3JoinsAuctionsOfCategory10WithSellersInThreeStates) {
  Rows expected = Sql(kQ3Sql);
  ASSERT_GT(expected.size(), 500u);
  std::set<std::string> states;
  for (const auto& row : expected) states.insert(row[2]);
  EXPECT_EQ(states, (std::set<std::string>{"CA", "ID", "OR"}));
  // The generator lets auctions name sellers a few ids ahead: some
  // auctions come before their seller even in event order.
  EXPECT_GT(Count("SELECT count(*) FROM auction a JOIN person p ON a.seller = p.id WHERE a.date_time < p.date_time"),
            0);
  ExpectQueryRows(Query3, Q3Row, expected);
}

TEST_F(NexmarkJoinQueriesTest, Q3JoinsAuctionsThatArriveBeforeTheirSeller) {
  ExpectReversedQueryRows(Query3, Q3Row, Sql(kQ3Sql));
}

// ---- q8 -------------------------------------------------------------------------

TEST_F(NexmarkJoinQueriesTest, Q8FindsPeopleWhoOpenAnAuctionInTheWindowTheyRegisterIn) {
  GeneratorConfig config;
  config.first_event_rate = kQ8Rate;
  LoadEvents("q8_", config, kQ8Events);
  const std::string people =
      "(SELECT id, name, date_time - date_time % 10000 AS ws FROM q8_person "
      "GROUP BY id, name, date_time - date_time % 10000) p";
  const std::string sellers =
      "(SELECT seller, date_time - date_time % 10000 AS ws, count(*) AS n FROM q8_auction "
      "GROUP BY seller, date_time - date_time % 10000) a";
  Rows expected = Sql("SELECT p.id, p.name, p.ws FROM " + people + " JOIN " + sellers +
                      " ON p.id = a.seller AND p.ws = a.ws");
  ASSERT_GT(expected.size(), 500u);
  std::set<std::string> windows;
  for (const auto& row : expected) windows.insert(row[2]);
  EXPECT_GE(windows.size(), 35u);
  // Some new people open several auctions in their window (one row each
  // all the same), and some sellers open auctions in a later window only.
  EXPECT_GT(Count("SELECT count(*) FROM " + people + " JOIN " + sellers + " ON p.id = a.seller AND p.ws = a.ws "
                  "WHERE a.n > 1"),
            10);
  EXPECT_GT(Count("SELECT count(*) FROM " + people + " JOIN " + sellers + " ON p.id = a.seller AND p.ws < a.ws"),
            10);
  ExpectQueryRows(
      Query8,
      [](const NewUser& r) -> std::vector<std::string> { return {Str(r.id), r.name, Str(r.window_start)}; },
      expected, config, kQ8Events);
}

// ---- q13 ------------------------------------------------------------------------

/// A side input of `keys` (each key for which `keep` holds) with values of
/// varying length; the same rows go into table `table`.
template <class Keep>
std::string WriteSideInput(const test_support::TempDir& dir, const std::string& table, Keep keep) {
  std::string file, copy;
  for (int64_t key = 0; key < kQuery13SideInputKeys; ++key) {
    if (!keep(key)) continue;
    std::string value = "value " + Str(key * 7919 % 10007) + std::string(static_cast<size_t>(key % 5), '#');
    file += Str(key) + "," + value + "\n";
    copy += Str(key) + "\t" + value + "\n";
  }
  std::string path = dir / (table + ".csv");
  test_support::WriteFile(path, file);
  test_support::NexmarkOracleTest::Sql("CREATE TABLE " + table + " (key BIGINT, value TEXT)");
  test_support::NexmarkOracleTest::Server().Copy(table, copy);
  return path;
}

std::vector<std::string> Q13Row(const BidWithSideInput& r) {
  return {Str(r.auction), Str(r.bidder), Str(r.price), Str(r.date_time), r.value};
}

TEST_F(NexmarkJoinQueriesTest, Q13JoinsEveryBidWithTheSideInput) {
  test_support::TempDir dir("freshet-q13");
  std::string path = WriteSideInput(dir, "side_input", [](int64_t) { return true; });
  Rows expected = Sql(
      "SELECT b.auction, b.bidder, b.price, b.date_time, s.value FROM bid b "
      "JOIN side_input s ON b.auction % 10000 = s.key");
  ASSERT_EQ(expected.size(), static_cast<size_t>(Count("SELECT count(*) FROM bid")));
  ExpectQueryRows([path](DataStream<Event> events) { return Query13(events, path); }, Q13Row, expected);
}

TEST_F(NexmarkJoinQueriesTest, Q13DropsBidsWhoseKeyTheSideInputLacks) {
  test_support::TempDir dir("freshet-q13");
  std::string path = WriteSideInput(dir, "side_input_thirds", [](int64_t key) { return key % 3 == 0; });
  Rows expected = Sql(
      "SELECT b.auction, b.bidder, b.price, b.date_time, s.value FROM bid b "
      "JOIN side_input_thirds s ON b.auction % 10000 = s.key");
  ASSERT_GT(expected.size(), 10000u);
  ASSERT_LT(expected.size(), static_cast<size_t>(Count("SELECT count(*) FROM bid")));
  ExpectQueryRows([path](DataStream<Event> events) { return Query13(events, path); }, Q13Row, expected);
}

/// The message of the failure of q13 over a few events with the side
/// input at `path` (empty when the job does not fail).
std::string Q13Failure(const std::string& path) {
  auto env = StreamExecutionEnvironment::Create();
  env->SetParallelism(2);
  try {
    Query13(test_support::NexmarkOracleTest::Events(*env, GeneratorConfig{}, 1000), path).ExecuteAndCollect();
  } catch (const JobFailedError& e) {
    return e.what();
  }
  return "";
}

TEST_F(NexmarkJoinQueriesTest, Q13FailsOnAMissingSideInputNamingTheFile) {
  test_support::TempDir dir("freshet-q13");
  std::string path = dir / "no-such-file.csv";
  std::string message = Q13Failure(path);
  EXPECT_NE(message.find("side input file '" + path + "': cannot open"), std::string::npos) << message;
}

TEST_F(NexmarkJoinQueriesTest, Q13FailsOnAMalformedSideInputNamingTheFileAndLine) {
  test_support::TempDir dir("freshet-q13");
  struct Case {
    std::string text;
    std::string error;
  };
  for (const Case& c : std::vector<Case>{
           {"0,a\n1,b\nseven\n3,d\n", "line 3: expected 'key,value', got 'seven'"},
           {"0,a\n1x,b\n", "line 2: the key is not an integer: '1x'"},
           {"0,a\n1,b\n2,c\n,d\n", "line 4: the key is not an integer: ''"},
           {"0,a\n99999999999999999999,b\n", "line 2: the key is out of range"},
           {"0,a\n1,b\r\n0,c\n", "line 3: key 0 appears again"},
       }) {
    SCOPED_TRACE(c.text);
    std::string path = dir / "side.csv";
    test_support::WriteFile(path, c.text);
    std::string message = Q13Failure(path);
    EXPECT_NE(message.find("side input file '" + path + "' " + c.error), std::string::npos) << message;
  }
}

TEST_F(NexmarkJoinQueriesTest, Q13ReadsTheSideInputFormat) {
  test_support::TempDir dir("freshet-q13");
  std::string path = dir / "side.csv";
  test_support::WriteFile(path, "1,plain\r\n-2,with,commas\n+3,\n4,last line without newline");
  SideInput table = LoadSideInput(path);
  EXPECT_EQ(table, (SideInput{{1, "plain"}, {-2, "with,commas"}, {3, ""}, {4, "last line without newline"}}));
}

// ---- q20 ------------------------------------------------------------------------

const char* const kQ20Sql =
    "SELECT b.auction, b.bidder, b.price, b.channel, b.url, b.date_time, b.extra, a.item_name, a.description, "
    "a.initial_bid, a.reserve, a.date_time, a.expires, a.seller, a.category, a.extra "
    "FROM bid b JOIN auction a ON b.auction = a.id WHERE a.category = 10";

std::vector<std::string> Q20Row(const BidWithAuction& r) {
  return {Str(r.auction), Str(r.bidder), Str(r.price), r.channel, r.url, Str(r.bid_date_time), r.bid_extra,
          r.item_name, r.description, Str(r.initial_bid), Str(r.reserve), Str(r.auction_date_time),
          Str(r.expires), Str(r.seller), Str(r.category), r.auction_extra};
}

TEST_F(NexmarkJoinQueriesTest, Q20ExpandsBidsOfCategory10WithTheirAuction) {
  Rows expected = Sql(kQ20Sql);
  ASSERT_GT(expected.size(), 20000u);
  // Bids may name auctions a little ahead: many come before their auction
  // even in event order (and the join's inputs are not ordered anyway).
  EXPECT_GT(Count("SELECT count(*) FROM bid b JOIN auction a ON b.auction = a.id "
                  "WHERE a.category = 10 AND b.date_time < a.date_time"),
            100);
  ExpectQueryRows(Query20, Q20Row, expected);
}

TEST_F(NexmarkJoinQueriesTest, Q20JoinsBidsThatArriveBeforeTheirAuction) {
  ExpectReversedQueryRows(Query20, Q20Row, Sql(kQ20Sql));
}

}  // namespace
}  // namespace freshet::nexmark

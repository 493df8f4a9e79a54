#pragma once
// PostgreSQL as the oracle of the Nexmark queries: a test suite derived
// from NexmarkOracleTest gets one server for all its tests, loads the
// events of a generator configuration into tables `<prefix>person`,
// `<prefix>auction` and `<prefix>bid` with COPY (columns named as the
// structs' fields, times in milliseconds as BIGINT), and compares a bounded
// run of a query at parallelism 1 and 2 with the rows of the equivalent
// SQL, listing differences row by row.
#include <freshet/freshet.h>
#include <freshet/nexmark.h>
#include <freshet/nexmark_source.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include "support/postgres.h"

namespace freshet::test_support {

class NexmarkOracleTest : public ::testing::Test {
 public:
  using Rows = PostgresServer::Rows;
  using Row = std::vector<std::string>;

  static void SetUpTestSuite() { server_ = std::make_unique<PostgresServer>(); }
  static void TearDownTestSuite() { server_.reset(); }

  static PostgresServer& Server() { return *server_; }
  static Rows Sql(const std::string& query) { return server_->Query(query); }

  /// Creates `<prefix>person`, `<prefix>auction` and `<prefix>bid` holding
  /// the first `events` events of `config`.
  static void LoadEvents(const std::string& prefix, const nexmark::GeneratorConfig& config, int64_t events) {
    server_->Query("CREATE TABLE " + prefix +
                   "person (id BIGINT, name TEXT, email_address TEXT, credit_card TEXT, city TEXT, state TEXT, "
                   "date_time BIGINT, extra TEXT)");
    server_->Query("CREATE TABLE " + prefix +
                   "auction (id BIGINT, item_name TEXT, description TEXT, initial_bid BIGINT, reserve BIGINT, "
                   "date_time BIGINT, expires BIGINT, seller BIGINT, category BIGINT, extra TEXT)");
    server_->Query("CREATE TABLE " + prefix +
                   "bid (auction BIGINT, bidder BIGINT, price BIGINT, channel TEXT, url TEXT, date_time BIGINT, "
                   "extra TEXT)");
    nexmark::Generator gen(config);
    std::string people, auctions, bids;
    auto add = [](std::string& text, auto... fields) {
      bool first = true;
      ((text += (first ? "" : "\t"), text += ToText(fields), first = false), ...);
      text += '\n';
    };
    nexmark::Event e;
    for (int64_t n = 0; n < events; ++n) {
      gen.Fill(n, &e);
      if (e.type == nexmark::Event::kPerson) {
        const nexmark::Person& p = e.person;
        add(people, p.id, p.name, p.email_address, p.credit_card, p.city, p.state, p.date_time, p.extra);
      } else if (e.type == nexmark::Event::kAuction) {
        const nexmark::Auction& a = e.auction;
        add(auctions, a.id, a.item_name, a.description, a.initial_bid, a.reserve, a.date_time, a.expires, a.seller,
            a.category, a.extra);
      } else {
        const nexmark::Bid& b = e.bid;
        add(bids, b.auction, b.bidder, b.price, b.channel, b.url, b.date_time, b.extra);
      }
    }
    server_->Copy(prefix + "person", people);
    server_->Copy(prefix + "auction", auctions);
    server_->Copy(prefix + "bid", bids);
  }

  /// The first `events` events of `config` as a bounded Nexmark source
  /// with the reference queries' watermarks: event time - 4 s.
  static DataStream<nexmark::Event> Events(StreamExecutionEnvironment& env, nexmark::GeneratorConfig config,
                                           int64_t events) {
    config.events = events;
    return nexmark::Events(env, config);
  }

  /// Expects equal row multisets; lists the first differences.
  static void ExpectSameRows(Rows actual, Rows expected) {
    std::sort(actual.begin(), actual.end());
    std::sort(expected.begin(), expected.end());
    EXPECT_EQ(actual.size(), expected.size());
    Rows missing, extra;
    std::set_difference(expected.begin(), expected.end(), actual.begin(), actual.end(), std::back_inserter(missing));
    std::set_difference(actual.begin(), actual.end(), expected.begin(), expected.end(), std::back_inserter(extra));
    for (size_t i = 0; i < missing.size() && i < 10; ++i) ADD_FAILURE() << "missing row: " << Show(missing[i]);
    for (size_t i = 0; i < extra.size() && i < 10; ++i) ADD_FAILURE() << "unexpected row: " << Show(extra[i]);
  }

  /// Runs `query` over the first `events` events of `config` at parallelism
  /// 1 and 2 and expects the rows `to_row` makes of its output to be
  /// `expected`. `query` takes a DataStream<Event> (with watermarks) and
  /// returns the stream of its results.
  template <class Query, class ToRow>
  static void ExpectQueryRows(Query query, ToRow to_row, const Rows& expected, const nexmark::GeneratorConfig& config,
                              int64_t events) {
    for (int parallelism : {1, 2}) {
      SCOPED_TRACE("parallelism " + std::to_string(parallelism));
      auto env = StreamExecutionEnvironment::Create();
      env->SetParallelism(parallelism);
      Rows actual;
      for (const auto& r : query(Events(*env, config, events)).ExecuteAndCollect()) actual.push_back(to_row(r));
      ExpectSameRows(std::move(actual), expected);
    }
  }

  static std::string ToText(const std::string& s) { return s; }
  static std::string ToText(int64_t v) { return std::to_string(v); }
  /// A double as PostgreSQL prints a NUMERIC rounded to `decimals` places.
  static std::string Fixed(double v, int decimals) {
    char text[64];
    std::snprintf(text, sizeof(text), "%.*f", decimals, v);
    return text;
  }
  static std::string Show(const Row& row) {
    std::string s;
    for (const std::string& f : row) s += (s.empty() ? "" : " | ") + f;
    return s;
  }

 private:
  static inline std::unique_ptr<PostgresServer> server_;
};

}  // namespace freshet::test_support

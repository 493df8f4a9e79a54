// The Nexmark generator against the reference generator's rules: the mix of
// event kinds, ids, event times, hot items, prices, channels, record sizes;
// determinism per event number, so that a source at any parallelism emits
// the same events; clear errors for unusable options.
#include <freshet/freshet.h>
#include <freshet/nexmark.h>
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

namespace freshet::nexmark {
namespace {

using ::testing::HasSubstr;

TEST(NexmarkGeneratorTest, KindsFollowTheEventNumberModuloFifty) {
  Generator gen{GeneratorConfig{}};
  int counts[3] = {0, 0, 0};
  for (int64_t n = 0; n < 50000; ++n) {
    Event e = gen.At(n);
    ASSERT_EQ(e.type, gen.TypeOf(n));
    int64_t r = n % 50;
    ASSERT_EQ(e.type, r == 0 ? Event::kPerson : r <= 3 ? Event::kAuction : Event::kBid) << n;
    ++counts[e.type];
  }
  EXPECT_EQ(counts[Event::kPerson], 1000);
  EXPECT_EQ(counts[Event::kAuction], 3000);
  EXPECT_EQ(counts[Event::kBid], 46000);
}

TEST(NexmarkGeneratorTest, IdsAreConsecutiveAndReferencesPointAtExistingOrUpcomingOnes) {
  Generator gen{GeneratorConfig{}};
  int64_t next_person = Generator::kFirstPersonId, next_auction = Generator::kFirstAuctionId;
  int64_t hot_auction_bids = 0, hot_bidder_bids = 0, bids = 0, hot_sellers = 0, auctions = 0;
  for (int64_t n = 0; n < 200000; ++n) {
    Event e = gen.At(n);
    if (e.type == Event::kPerson) {
      ASSERT_EQ(e.person.id, next_person++);
    } else if (e.type == Event::kAuction) {
      ASSERT_EQ(e.auction.id, next_auction++);
      // Sellers: people seen so far, or up to 10 ahead (the reference's lead).
      ASSERT_GE(e.auction.seller, Generator::kFirstPersonId);
      ASSERT_LT(e.auction.seller, next_person + 10);
      ASSERT_GE(e.auction.category, 10);
      ASSERT_LT(e.auction.category, 15);
      ASSERT_GT(e.auction.expires, e.auction.date_time);
      ASSERT_GT(e.auction.reserve, e.auction.initial_bid);
      ++auctions;
      hot_sellers += (e.auction.seller - Generator::kFirstPersonId) % 100 == 0 ? 1 : 0;
    } else {
      ++bids;
      ASSERT_GE(e.bid.auction, Generator::kFirstAuctionId);
      ASSERT_LT(e.bid.auction, next_auction + 10);
      // Random auctions are among the last 100 in flight.
      ASSERT_GE(e.bid.auction, next_auction - 1 - 100 - 1);
      ASSERT_GE(e.bid.bidder, Generator::kFirstPersonId);
      ASSERT_LT(e.bid.bidder, next_person + 10);
      ASSERT_GE(e.bid.price, 100);
      ASSERT_LE(e.bid.price, 100000000);
      hot_auction_bids += (e.bid.auction - Generator::kFirstAuctionId) % 100 == 0 ? 1 : 0;
      hot_bidder_bids += (e.bid.bidder - Generator::kFirstPersonId) % 100 == 1 ? 1 : 0;
    }
  }
  // Hot auction with probability 1/2, hot bidder and seller with 3/4 (plus
  // the random picks that happen to land on them).
  EXPECT_NEAR(static_cast<double>(hot_auction_bids) / static_cast<double>(bids), 0.5, 0.03);
  EXPECT_NEAR(static_cast<double>(hot_bidder_bids) / static_cast<double>(bids), 0.75, 0.03);
  EXPECT_NEAR(static_cast<double>(hot_sellers) / static_cast<double>(auctions), 0.75, 0.03);
}

TEST(NexmarkGeneratorTest, EventTimesFollowTheRate) {
  GeneratorConfig config;
  config.first_event_rate = 1000;  // one event per millisecond
  Generator gen(config);
  for (int64_t n : {0, 1, 999, 123456}) {
    EXPECT_EQ(gen.At(n).EventTime(), config.base_time + n);
    EXPECT_EQ(gen.TimestampOf(n), config.base_time + n);
  }
  Generator fast{GeneratorConfig{}};  // 10,000 per second
  EXPECT_EQ(fast.TimestampOf(10000) - fast.TimestampOf(0), 1000);
  EXPECT_EQ(fast.TimestampOf(5), config.base_time);
}

// With a next rate, event time alternates: the first rate for half the
// rate period, the next rate for the other half.
TEST(NexmarkGeneratorTest, EventTimesAlternateBetweenTheFirstAndNextRates) {
  GeneratorConfig config;
  config.first_event_rate = 1000;  // 5,000 events in the first 5 s
  config.next_event_rate = 100;    // 500 events in the next 5 s
  config.rate_period_sec = 10;
  Generator gen(config);
  const Timestamp base = config.base_time;
  EXPECT_EQ(gen.TimestampOf(0), base);
  EXPECT_EQ(gen.TimestampOf(4999), base + 4999);
  EXPECT_EQ(gen.TimestampOf(5000), base + 5000);
  EXPECT_EQ(gen.TimestampOf(5001), base + 5010);
  EXPECT_EQ(gen.TimestampOf(5499), base + 9990);
  EXPECT_EQ(gen.TimestampOf(5500), base + 10000);
  EXPECT_EQ(gen.TimestampOf(5500 * 3 + 5002), base + 30000 + 5020);
  for (int64_t n = 1; n < 20000; ++n) ASSERT_LE(gen.TimestampOf(n - 1), gen.TimestampOf(n)) << n;
  EXPECT_EQ(gen.At(5001).EventTime(), base + 5010);
  // The same next rate as the first, or none: one rate.
  config.next_event_rate = 1000;
  EXPECT_EQ(Generator(config).TimestampOf(5001), base + 5001);
}

TEST(NexmarkGeneratorTest, RecordsArePaddedToTheAverageSizes) {
  Generator gen{GeneratorConfig{}};
  double sizes[3] = {0, 0, 0};
  int counts[3] = {0, 0, 0};
  for (int64_t n = 0; n < 100000; ++n) {
    Event e = gen.At(n);
    size_t size = 0;
    if (e.type == Event::kPerson) {
      const Person& p = e.person;
      size = 8 + p.name.size() + p.email_address.size() + p.credit_card.size() + p.city.size() + p.state.size() +
             p.extra.size();
      ASSERT_THAT(p.email_address, ::testing::MatchesRegex("[a-z ]+@[a-z ]+\\.com"));
      ASSERT_THAT(p.credit_card, ::testing::MatchesRegex("[0-9]{4} [0-9]{4} [0-9]{4} [0-9]{4}"));
      ASSERT_THAT((std::vector<std::string>{"AZ", "CA", "ID", "OR", "WA", "WY"}), ::testing::Contains(p.state));
    } else if (e.type == Event::kAuction) {
      const Auction& a = e.auction;
      size = 8 + a.item_name.size() + a.description.size() + 40 + a.extra.size();
    } else {
      size = 32 + e.bid.extra.size();
    }
    sizes[e.type] += static_cast<double>(size);
    ++counts[e.type];
  }
  EXPECT_NEAR(sizes[Event::kPerson] / counts[Event::kPerson], 200, 10);
  EXPECT_NEAR(sizes[Event::kAuction] / counts[Event::kAuction], 500, 25);
  EXPECT_NEAR(sizes[Event::kBid] / counts[Event::kBid], 100, 5);
}

TEST(NexmarkGeneratorTest, ChannelsAreHalfHotAndUrlsCarryTheChannelIdMostly) {
  Generator gen{GeneratorConfig{}};
  int64_t bids = 0, hot = 0, cold = 0, with_id = 0;
  std::set<std::string> hot_names;
  for (int64_t n = 0; n < 100000; ++n) {
    Event e = gen.At(n);
    if (e.type != Event::kBid) continue;
    ++bids;
    ASSERT_THAT(e.bid.url, ::testing::StartsWith("https://www.nexmark.com/"));
    if (e.bid.channel.rfind("channel-", 0) == 0) {
      ++cold;
      with_id += e.bid.url.find("&channel_id=") != std::string::npos ? 1 : 0;
    } else {
      ++hot;
      hot_names.insert(e.bid.channel);
    }
  }
  EXPECT_EQ(hot_names, (std::set<std::string>{"Apple", "Baidu", "Facebook", "Google"}));
  EXPECT_NEAR(static_cast<double>(hot) / static_cast<double>(bids), 0.5, 0.02);
  EXPECT_NEAR(static_cast<double>(with_id) / static_cast<double>(cold), 0.9, 0.02);
}

TEST(NexmarkGeneratorTest, EveryEventDependsOnItsNumberAlone) {
  Generator a{GeneratorConfig{}}, b{GeneratorConfig{}};
  // In any order, from any instance, reusing buffers or not.
  Event reused;
  for (int64_t n : {77, 3, 50, 1000000007, 0, 77}) {
    Event fresh = a.At(n);
    b.Fill(n, &reused);
    ASSERT_EQ(fresh.type, reused.type);
    ASSERT_EQ(fresh.EventTime(), reused.EventTime());
    if (fresh.type == Event::kBid) {
      ASSERT_EQ(fresh.bid, reused.bid);
    } else if (fresh.type == Event::kAuction) {
      ASSERT_EQ(fresh.auction, reused.auction);
    } else {
      ASSERT_EQ(fresh.person, reused.person);
    }
  }
  EXPECT_NE(a.At(4).bid, a.At(5).bid);
}

// A source at parallelism 1 and 3 emits the same events.
TEST(NexmarkGeneratorTest, ParallelSourcesEmitTheSameEvents) {
  Generator gen{GeneratorConfig{}};
  auto run = [&gen](int parallelism) {
    auto env = StreamExecutionEnvironment::Create();
    env->SetParallelism(parallelism);
    auto out = env->FromGenerator([gen](int64_t n) { return gen.At(n); }, 20000)
                   .Map([](const Event& e) {
                     return std::make_tuple(e.EventTime(), static_cast<int>(e.type), e.person.id, e.auction.id,
                                            e.bid.auction, e.bid.bidder, e.bid.price, e.bid.extra);
                   })
                   .ExecuteAndCollect();
    std::sort(out.begin(), out.end());
    return out;
  };
  auto one = run(1);
  ASSERT_EQ(one.size(), 20000u);
  EXPECT_EQ(run(3), one);
}

TEST(NexmarkGeneratorTest, UnusableOptionsAreRejectedByName) {
  auto error = [](auto change) {
    GeneratorConfig config;
    change(config);
    try {
      Generator gen(config);
    } catch (const std::invalid_argument& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_THAT(error([](GeneratorConfig& c) { c.first_event_rate = 0; }), HasSubstr("first-event-rate"));
  EXPECT_THAT(error([](GeneratorConfig& c) { c.person_proportion = 0; }), HasSubstr("person-proportion"));
  EXPECT_THAT(error([](GeneratorConfig& c) { c.hot_auction_ratio = 0; }), HasSubstr("hot ratios"));
  EXPECT_THAT(error([](GeneratorConfig& c) { c.num_active_people = 0; }), HasSubstr("num-active-people"));
  EXPECT_THAT(error([](GeneratorConfig& c) { c.auction_proportion = 0; }), HasSubstr("auction-proportion"));
  EXPECT_THAT(error([](GeneratorConfig& c) { c.next_event_rate = -1; }), HasSubstr("next-event-rate"));
  EXPECT_THAT(error([](GeneratorConfig& c) {
                c.next_event_rate = 1;
                c.first_event_rate = 0.1;
                c.rate_period_sec = 4;
              }),
              HasSubstr("rate-period"));
}

}  // namespace
}  // namespace freshet::nexmark

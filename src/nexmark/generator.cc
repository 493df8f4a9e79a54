// The Nexmark event generator (see include/freshet/nexmark.h).

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

#include "freshet/nexmark.h"

namespace freshet::nexmark {
namespace {

/// java.util.Random: the reference draws every field of event n from
/// `new Random(n)`, in a fixed order.
class JavaRandom {
 public:
  explicit JavaRandom(int64_t seed) : seed_((static_cast<uint64_t>(seed) ^ kMultiplier) & kMask) {}
  int32_t NextInt(int32_t bound) {
    if ((bound & -bound) == bound) {  // a power of two
      return static_cast<int32_t>((static_cast<int64_t>(bound) * Next(31)) >> 31);
    }
    // Java's int arithmetic wraps, and the rejection test relies on it:
    // unsigned here, as signed overflow is undefined in C++.
    int32_t bits, value;
    do {
      bits = Next(31);
      value = bits % bound;
    } while (static_cast<int32_t>(static_cast<uint32_t>(bits - value) + static_cast<uint32_t>(bound - 1)) < 0);
    return value;
  }
  int64_t NextLong() {
    int64_t high = static_cast<int64_t>(Next(32));
    return static_cast<int64_t>((static_cast<uint64_t>(high) << 32) + static_cast<uint64_t>(static_cast<int64_t>(Next(32))));
  }
  double NextDouble() {
    return static_cast<double>((static_cast<int64_t>(Next(26)) << 27) + Next(27)) * 0x1.0p-53;
  }
  /// The reference's nextLong(random, n): uniform in [0, n).
  int64_t NextLong(int64_t n) {
    if (n < 2147483647) return NextInt(static_cast<int32_t>(n));
    int64_t v = NextLong() % n;
    return v < 0 ? -v : v;
  }

 private:
  static constexpr uint64_t kMultiplier = 0x5DEECE66DULL;
  static constexpr uint64_t kMask = (uint64_t{1} << 48) - 1;
  int32_t Next(int bits) {
    seed_ = (seed_ * kMultiplier + 0xBULL) & kMask;
    return static_cast<int32_t>(static_cast<int64_t>(seed_) >> (48 - bits));
  }
  uint64_t seed_;
};

constexpr int kMinStringLength = 3;
constexpr int64_t kPersonIdLead = 10;
constexpr int64_t kAuctionIdLead = 10;
constexpr int64_t kHotSellerRatio = 100;
constexpr int64_t kHotAuctionRatio = 100;
constexpr int64_t kHotBidderRatio = 100;
constexpr int kHotChannelsRatio = 2;
constexpr int kChannels = 10000;

constexpr std::array<std::string_view, 10> kCities = {"Phoenix", "Los Angeles", "San Francisco", "Boise",
                                                      "Portland", "Bend",        "Redmond",       "Seattle",
                                                      "Kent",    "Cheyenne"};
constexpr std::array<std::string_view, 6> kStates = {"AZ", "CA", "ID", "OR", "WA", "WY"};
constexpr std::array<std::string_view, 11> kFirstNames = {"Peter", "Paul",  "Luke", "John",  "Saul", "Vicky",
                                                          "Kate",  "Julie", "Sarah", "Deiter", "Walter"};
constexpr std::array<std::string_view, 9> kLastNames = {"Shultz", "Abrams", "Spencer", "White", "Bartels",
                                                        "Walton", "Smith",  "Jones",   "Noris"};
constexpr std::array<std::string_view, 4> kHotChannels = {"Google", "Facebook", "Baidu", "Apple"};

/// Letters and, one time in 13, a space; 3 to max_length - 1 characters
/// before trailing and leading spaces are trimmed.
void AppendString(JavaRandom& random, int max_length, std::string* out, char space = ' ') {
  int length = kMinStringLength + random.NextInt(max_length - kMinStringLength);
  size_t start = out->size();
  for (int i = 0; i < length; ++i) {
    if (random.NextInt(13) == 0) {
      out->push_back(space);
    } else {
      out->push_back(static_cast<char>('a' + random.NextInt(26)));
    }
  }
  if (space == ' ') {
    size_t end = out->size();
    size_t first = start;
    while (first < end && (*out)[first] == ' ') ++first;
    while (end > first && (*out)[end - 1] == ' ') --end;
    out->erase(end);
    out->erase(start, first - start);
  }
}

/// Padding that brings a record of `current` bytes to about `average`
/// bytes: the rest +-20%. It is the last draw of an event, so its letters
/// come from a faster generator seeded by the event's (twelve letters per
/// 64-bit step instead of one java.util.Random step per letter); the
/// other fields are drawn as the reference draws them.
void MakeExtra(JavaRandom& random, int current, int average, std::string* out) {
  out->clear();
  if (current > average) return;
  int desired = average - current;
  int delta = static_cast<int>(std::lround(desired * 0.2));
  int size = desired - delta + (delta == 0 ? 0 : random.NextInt(2 * delta));
  uint64_t x = static_cast<uint64_t>(random.NextLong()) | 1;
  out->resize(static_cast<size_t>(size));
  char* p = out->data();
  for (int i = 0; i < size; i += 12) {
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    uint64_t bits = x * 0x2545F4914F6CDD1DULL;
    for (int j = 0; j < 12 && i + j < size; ++j, bits >>= 5) p[i + j] = static_cast<char>('a' + ((bits & 31) * 26 >> 5));
  }
}

int64_t NextPrice(JavaRandom& random) {
  return static_cast<int64_t>(std::llround(std::pow(10.0, random.NextDouble() * 6.0) * 100.0));
}

std::string BaseUrl(JavaRandom& random) {
  std::string url = "https://www.nexmark.com/";
  AppendString(random, 5, &url, '_');
  url += '/';
  AppendString(random, 5, &url, '_');
  url += '/';
  AppendString(random, 5, &url, '_');
  url += "/item.htm?query=1";
  return url;
}

int32_t ReverseBits(int32_t v) {
  uint32_t x = static_cast<uint32_t>(v), r = 0;
  for (int i = 0; i < 32; ++i, x >>= 1) r = (r << 1) | (x & 1);
  return static_cast<int32_t>(r);
}

}  // namespace

/// The channel names and URLs bids pick from: four hot channels with fixed
/// URLs and 10,000 `channel-<i>` entries, 90% of whose URLs carry
/// `&channel_id=<i bit-reversed>`.
struct Generator::Channels {
  std::array<std::string, 4> hot_urls;
  std::vector<std::string> names;
  std::vector<std::string> urls;

  Channels() {
    JavaRandom random(0);
    for (std::string& url : hot_urls) url = BaseUrl(random);
    names.reserve(kChannels);
    urls.reserve(kChannels);
    for (int i = 0; i < kChannels; ++i) {
      std::string url = BaseUrl(random);
      if (random.NextInt(10) > 0) url += "&channel_id=" + std::to_string(std::abs(static_cast<int64_t>(ReverseBits(i))));
      names.push_back("channel-" + std::to_string(i));
      urls.push_back(std::move(url));
    }
  }
};

Generator::Generator(const GeneratorConfig& config) : config_(config) {
  auto require = [](bool ok, const char* what) {
    if (!ok) throw std::invalid_argument(std::string("Nexmark generator: ") + what);
  };
  require(config.first_event_rate > 0, "first-event-rate must be > 0");
  require(config.next_event_rate >= 0, "next-event-rate must be >= 0 (0: the first rate throughout)");
  require(config.rate_period_sec >= 2, "rate-period must be >= 2 seconds");
  require(config.num_event_generators >= 1, "num-event-generators must be >= 1");
  require(config.events >= 0, "events must be >= 0 (0: unbounded)");
  require(config.person_proportion >= 0 && config.auction_proportion >= 0 && config.bid_proportion >= 0,
          "proportions must be >= 0");
  require(config.person_proportion > 0, "person-proportion must be > 0 (auctions and bids refer to people)");
  require(config.auction_proportion > 0 || config.bid_proportion == 0,
          "auction-proportion must be > 0 when there are bids (bids refer to auctions)");
  require(config.hot_auction_ratio >= 1 && config.hot_seller_ratio >= 1 && config.hot_bidder_ratio >= 1,
          "hot ratios must be >= 1");
  require(config.num_in_flight_auctions >= 1, "num-in-flight-auctions must be >= 1");
  require(config.num_active_people >= 1, "num-active-people must be >= 1");
  require(config.avg_person_byte_size >= 0 && config.avg_auction_byte_size >= 0 && config.avg_bid_byte_size >= 0,
          "average sizes must be >= 0");
  total_proportion_ = config.person_proportion + config.auction_proportion + config.bid_proportion;
  inter_event_delay_us_ = 1e6 / config.first_event_rate * config.num_event_generators;
  next_inter_event_delay_us_ = inter_event_delay_us_;
  if (config.next_event_rate > 0 && config.next_event_rate != config.first_event_rate) {
    next_inter_event_delay_us_ = 1e6 / config.next_event_rate * config.num_event_generators;
    const double half_us = static_cast<double>(config.rate_period_sec) * 1e6 / 2;
    first_rate_events_ = static_cast<int64_t>(half_us / inter_event_delay_us_);
    cycle_events_ = first_rate_events_ + static_cast<int64_t>(half_us / next_inter_event_delay_us_);
    require(first_rate_events_ >= 1 && cycle_events_ > first_rate_events_,
            "rate-period too short for the event rates (under one event per half period)");
  }
  static const Channels channels;
  channels_ = &channels;
}

Timestamp Generator::TimestampOf(int64_t n) const {
  if (cycle_events_ == 0) {
    return config_.base_time + static_cast<Timestamp>(inter_event_delay_us_ * static_cast<double>(n) / 1000.0);
  }
  // Whole rate periods, then the part of the current one: first-rate
  // events for its first half, next-rate events for the second.
  const int64_t cycle = n / cycle_events_;
  const int64_t in_cycle = n % cycle_events_;
  double us = static_cast<double>(cycle) * static_cast<double>(config_.rate_period_sec) * 1e6;
  if (in_cycle < first_rate_events_) {
    us += inter_event_delay_us_ * static_cast<double>(in_cycle);
  } else {
    us += static_cast<double>(config_.rate_period_sec) * 1e6 / 2 +
          next_inter_event_delay_us_ * static_cast<double>(in_cycle - first_rate_events_);
  }
  return config_.base_time + static_cast<Timestamp>(us / 1000.0);
}

uint8_t Generator::TypeOf(int64_t n) const {
  int64_t r = n % total_proportion_;
  if (r < config_.person_proportion) return Event::kPerson;
  if (r < config_.person_proportion + config_.auction_proportion) return Event::kAuction;
  return Event::kBid;
}

int64_t Generator::LastBase0PersonId(int64_t n) const {
  int64_t epoch = n / total_proportion_, offset = n % total_proportion_;
  if (offset >= config_.person_proportion) offset = config_.person_proportion - 1;
  return epoch * config_.person_proportion + offset;
}

int64_t Generator::LastBase0AuctionId(int64_t n) const {
  int64_t epoch = n / total_proportion_, offset = n % total_proportion_;
  if (offset < config_.person_proportion) {
    // Before this epoch's auctions: the last of the previous epoch.
    --epoch;
    offset = config_.auction_proportion - 1;
  } else if (offset >= config_.person_proportion + config_.auction_proportion) {
    offset = config_.auction_proportion - 1;
  } else {
    offset -= config_.person_proportion;
  }
  return epoch * config_.auction_proportion + offset;
}

Event Generator::At(int64_t n) const {
  Event e;
  Fill(n, &e);
  return e;
}

void Generator::Fill(int64_t n, Event* out) const {
  JavaRandom random(n);
  const Timestamp time = TimestampOf(n);
  // A person or seller among the recently active ones (a few ids ahead
  // too: the reference's lead).
  auto next_person = [&]() {
    int64_t people = LastBase0PersonId(n) + 1;
    int64_t active = std::min<int64_t>(people, config_.num_active_people);
    return people - active + random.NextLong(active + kPersonIdLead);
  };
  auto next_auction = [&]() {
    int64_t last = LastBase0AuctionId(n);
    int64_t first = std::max<int64_t>(last - config_.num_in_flight_auctions, 0);
    return first + random.NextLong(last - first + 1 + kAuctionIdLead);
  };
  out->type = TypeOf(n);
  switch (out->type) {
    case Event::kPerson: {
      Person& p = out->person;
      p.id = LastBase0PersonId(n) + kFirstPersonId;
      p.name.assign(kFirstNames[static_cast<size_t>(random.NextInt(static_cast<int32_t>(kFirstNames.size())))]);
      p.name += ' ';
      p.name += kLastNames[static_cast<size_t>(random.NextInt(static_cast<int32_t>(kLastNames.size())))];
      p.email_address.clear();
      AppendString(random, 7, &p.email_address);
      p.email_address += '@';
      AppendString(random, 5, &p.email_address);
      p.email_address += ".com";
      char card[20];
      std::snprintf(card, sizeof(card), "%04d %04d %04d %04d", random.NextInt(10000), random.NextInt(10000),
                    random.NextInt(10000), random.NextInt(10000));
      p.credit_card = card;
      p.city.assign(kCities[static_cast<size_t>(random.NextInt(static_cast<int32_t>(kCities.size())))]);
      p.state.assign(kStates[static_cast<size_t>(random.NextInt(static_cast<int32_t>(kStates.size())))]);
      p.date_time = time;
      int size = 8 + static_cast<int>(p.name.size() + p.email_address.size() + p.credit_card.size() +
                                      p.city.size() + p.state.size());
      MakeExtra(random, size, config_.avg_person_byte_size, &p.extra);
      return;
    }
    case Event::kAuction: {
      Auction& a = out->auction;
      a.id = LastBase0AuctionId(n) + kFirstAuctionId;
      int64_t seller = random.NextInt(config_.hot_seller_ratio) > 0
                           ? (LastBase0PersonId(n) / kHotSellerRatio) * kHotSellerRatio
                           : next_person();
      a.seller = seller + kFirstPersonId;
      a.category = kFirstCategoryId + random.NextInt(kNumCategories);
      a.initial_bid = NextPrice(random);
      // Open until about the time `num_in_flight_auctions` more auctions
      // have started (uniform up to twice that horizon).
      int64_t events_ahead =
          static_cast<int64_t>(config_.num_in_flight_auctions) * total_proportion_ / config_.auction_proportion;
      int64_t horizon = TimestampOf(n + events_ahead) - time;
      a.expires = time + 1 + random.NextLong(std::max<int64_t>(horizon * 2, 1));
      a.item_name.clear();
      AppendString(random, 20, &a.item_name);
      a.description.clear();
      AppendString(random, 100, &a.description);
      a.reserve = a.initial_bid + NextPrice(random);
      a.date_time = time;
      int size = 8 + static_cast<int>(a.item_name.size() + a.description.size()) + 8 + 8 + 8 + 8 + 8;
      MakeExtra(random, size, config_.avg_auction_byte_size, &a.extra);
      return;
    }
    default: {
      Bid& b = out->bid;
      int64_t auction = random.NextInt(config_.hot_auction_ratio) > 0
                            ? (LastBase0AuctionId(n) / kHotAuctionRatio) * kHotAuctionRatio
                            : next_auction();
      b.auction = auction + kFirstAuctionId;
      int64_t bidder = random.NextInt(config_.hot_bidder_ratio) > 0
                           ? (LastBase0PersonId(n) / kHotBidderRatio) * kHotBidderRatio + 1
                           : next_person();
      b.bidder = bidder + kFirstPersonId;
      b.price = NextPrice(random);
      if (random.NextInt(kHotChannelsRatio) > 0) {
        size_t i = static_cast<size_t>(random.NextInt(static_cast<int32_t>(kHotChannels.size())));
        b.channel.assign(kHotChannels[i]);
        b.url = channels_->hot_urls[i];
      } else {
        size_t i = static_cast<size_t>(random.NextInt(kChannels));
        b.channel = channels_->names[i];
        b.url = channels_->urls[i];
      }
      b.date_time = time;
      MakeExtra(random, 8 + 8 + 8 + 8, config_.avg_bid_byte_size, &b.extra);
      return;
    }
  }
}

}  // namespace freshet::nexmark

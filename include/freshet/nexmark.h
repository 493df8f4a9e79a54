#pragma once
/// The Nexmark benchmark's event generator: an online auction's people,
/// auctions and bids, following the rules of the reference generator.
///
/// Event number n (0, 1, 2, ...) is a person, an auction or a bid by
/// n % 50 (with the default proportions 1 : 3 : 46); its ids, its event time
/// (base time + n / first event rate) and its random fields depend on n
/// alone: every event draws from a java.util.Random-compatible generator
/// seeded with its number, as the reference does. So the sequence is the
/// same however it is split over parallel source subtasks, and a source
/// restarts at any event number.
///
///   nexmark::Generator gen(nexmark::GeneratorConfig{});
///   env->FromGenerator([gen](int64_t n) { return gen.At(n); }, 1'000'000);

#include <cstdint>
#include <string>
#include <string_view>

#include "freshet/time.h"
#include "freshet/types.h"

namespace freshet::nexmark {

struct Person {
  int64_t id = 0;
  std::string name;
  std::string email_address;
  std::string credit_card;
  std::string city;
  std::string state;
  Timestamp date_time = 0;  // event time, milliseconds
  std::string extra;        // padding to the average person size (+-20%)
  bool operator==(const Person&) const = default;
};

struct Auction {
  int64_t id = 0;
  std::string item_name;
  std::string description;
  int64_t initial_bid = 0;
  int64_t reserve = 0;
  Timestamp date_time = 0;
  Timestamp expires = 0;
  int64_t seller = 0;
  int64_t category = 0;
  std::string extra;
  bool operator==(const Auction&) const = default;
};

struct Bid {
  int64_t auction = 0;
  int64_t bidder = 0;
  int64_t price = 0;
  std::string channel;
  std::string url;
  Timestamp date_time = 0;
  std::string extra;
  bool operator==(const Bid&) const = default;
};

/// One event: `type` says which of the three members holds it (the others
/// are empty).
struct Event {
  enum Type : uint8_t { kPerson = 0, kAuction = 1, kBid = 2 };
  uint8_t type = kBid;
  Person person;
  Auction auction;
  Bid bid;

  Timestamp EventTime() const {
    return type == kPerson ? person.date_time : type == kAuction ? auction.date_time : bid.date_time;
  }
  bool operator==(const Event&) const = default;
};

/// The reference generator's options (names as in its configuration).
struct GeneratorConfig {
  /// `first-event-rate`: events per second of event time (it only spaces
  /// the events' timestamps; how fast they are produced is up to the
  /// source).
  double first_event_rate = 10000;
  /// `next-event-rate`: with a rate different from the first, event time
  /// alternates between the two rates (the reference's square rate shape):
  /// the first rate for half of `rate-period`, then this one for the other
  /// half, and so on. 0: the first rate throughout.
  double next_event_rate = 0;
  /// `rate-period` (seconds of event time): one cycle of the two rates.
  int64_t rate_period_sec = 600;
  /// `num-event-generators`: the reference spaces the timestamps of each of
  /// its generators by this factor; kept for compatible timestamps.
  int num_event_generators = 1;
  /// `events`: 0 for unbounded.
  int64_t events = 0;
  /// `person-proportion`, `auction-proportion`, `bid-proportion`.
  int person_proportion = 1;
  int auction_proportion = 3;
  int bid_proportion = 46;
  /// `hot-auction-ratio`, `hot-seller-ratio`, `hot-bidder-ratio`: 1 in
  /// ratio events picks a random (not the hot) auction, seller, bidder.
  int hot_auction_ratio = 2;
  int hot_seller_ratio = 4;
  int hot_bidder_ratio = 4;
  /// `num-in-flight-auctions`, `num-active-people`.
  int num_in_flight_auctions = 100;
  int num_active_people = 1000;
  /// `avg-person-byte-size`, `avg-auction-byte-size`, `avg-bid-byte-size`.
  int avg_person_byte_size = 200;
  int avg_auction_byte_size = 500;
  int avg_bid_byte_size = 100;
  /// `base-time`: event time of event 0, milliseconds since the epoch.
  Timestamp base_time = 1'436'918'400'000;  // 2015-07-15 00:00:00 UTC, as the reference
};

/// Generates event number n. Cheap to copy (a few hundred bytes of
/// configuration and the 10,000-channel URL table, shared).
class Generator {
 public:
  /// Throws std::invalid_argument naming the option when `config` is not
  /// usable (a rate <= 0, a proportion < 0 or all zero, a ratio < 1, ...).
  explicit Generator(const GeneratorConfig& config);

  /// Event number `n` (REQUIRES: n >= 0).
  Event At(int64_t n) const;
  /// Writes event number `n` into `*out`, reusing its strings' buffers
  /// (the members of the other kinds keep what they held).
  void Fill(int64_t n, Event* out) const;
  /// Event time of event number `n`.
  Timestamp TimestampOf(int64_t n) const;
  /// Which kind event number `n` is.
  uint8_t TypeOf(int64_t n) const;

  const GeneratorConfig& Config() const { return config_; }

  /// The first ids of the reference generator.
  static constexpr int64_t kFirstPersonId = 1000;
  static constexpr int64_t kFirstAuctionId = 1000;
  static constexpr int64_t kFirstCategoryId = 10;
  static constexpr int kNumCategories = 5;

 private:
  struct Channels;
  int64_t LastBase0PersonId(int64_t n) const;
  int64_t LastBase0AuctionId(int64_t n) const;

  GeneratorConfig config_;
  int total_proportion_;
  double inter_event_delay_us_;       // at the first rate
  double next_inter_event_delay_us_;  // at the next rate
  int64_t first_rate_events_ = 0;     // events in each half period at the first rate (0: one rate)
  int64_t cycle_events_ = 0;          // events in one rate period
  const Channels* channels_;  // process-wide, built once
};

}  // namespace freshet::nexmark

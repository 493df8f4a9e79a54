#pragma once
/// Nexmark's updating queries over bids, written with keyed process
/// functions, keyed state and event-time timers:
///   q15 bids, distinct bidders and distinct auctions per day, in all and
///       per price rank;
///   q16 the same per channel and day, with the day's latest minute;
///   q17 count, min, max, average and sum of prices per auction and day;
///   q18 the latest bid of each (bidder, auction): deduplication;
///   q19 the ten highest bids of each auction: Top-N.
///
/// Emission. The SQL of these queries describes a table that changes with
/// every bid; Flink's SQL runtime sends a retraction and an insertion per
/// change (or, with mini-batches, per batch). These DataStream programs
/// send upserts instead: a row carries its key and the key's current value
/// and replaces the key's previous row. A key emits at most once per
/// emission period (kAggregateEmissionPeriod, 1 s of event time), as a
/// mini-batch of event time: the key's first change after an emission
/// registers an event-time timer at the last millisecond of the period the
/// watermark is in, and the timer emits the key's value as it is when the
/// watermark completes that period (including changes by records ahead of
/// the watermark). So a change goes out within one period of watermark
/// progress, every row of a key has a distinct timer time, and a key with
/// no change emits nothing. The end of a bounded input advances the
/// watermark to the maximum, firing every pending timer, so the last row of
/// each key is the value of the SQL query over all the input. Rows are not
/// retracted: a key once emitted keeps a row.
///
/// Days are UTC dates ("yyyy-MM-dd"); minutes are UTC "HH:mm". Price ranks:
/// rank 1 below 10,000, rank 2 from 10,000 below 1,000,000, rank 3 from
/// 1,000,000. The queries read event times from the records' timestamps
/// (REQUIRES: events with timestamps and watermarks, as nexmark::Events
/// gives them). Their state is keyed state (ValueState, MapState,
/// ListState), so it is checkpointed and works with either state backend.

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "freshet/data_stream.h"
#include "freshet/nexmark.h"
#include "freshet/process_function.h"
#include "freshet/state.h"

namespace freshet::nexmark {

// ---- time and price helpers ------------------------------------------------------

/// How often at most a key of q15..q19 emits its value, in event time.
inline constexpr Duration kAggregateEmissionPeriod{1000};
inline constexpr int64_t kMillisecondsPerDay = 86'400'000;
inline constexpr int64_t kMillisecondsPerMinute = 60'000;

/// Days since 1970-01-01 of the UTC date of `time`.
inline int64_t UtcDayNumber(Timestamp time) {
  int64_t day = time / kMillisecondsPerDay;
  return time % kMillisecondsPerDay < 0 ? day - 1 : day;
}

/// The minute of the UTC day of `time`, 0 .. 1439.
inline int32_t UtcMinuteOfDay(Timestamp time) {
  return static_cast<int32_t>((time - UtcDayNumber(time) * kMillisecondsPerDay) / kMillisecondsPerMinute);
}

/// "yyyy-MM-dd" of a day number (days since 1970-01-01).
inline std::string DayNumberText(int64_t day) {
  const std::chrono::year_month_day date{std::chrono::sys_days{std::chrono::days{day}}};
  char text[32];
  std::snprintf(text, sizeof(text), "%04d-%02u-%02u", static_cast<int>(date.year()),
                static_cast<unsigned>(date.month()), static_cast<unsigned>(date.day()));
  return text;
}

/// "HH:mm" of a minute of the day.
inline std::string MinuteOfDayText(int32_t minute) {
  char text[32];
  std::snprintf(text, sizeof(text), "%02d:%02d", minute / 60, minute % 60);
  return text;
}

/// Price rank of q15..q17 as an index: 0 (rank 1) below 10,000, 1 (rank 2)
/// below 1,000,000, else 2 (rank 3).
inline int PriceRankIndex(int64_t price) { return price < 10'000 ? 0 : price < 1'000'000 ? 1 : 2; }

/// The time of the timer that emits a change made when the watermark is
/// `watermark` (`record_time`, the changing record's time, stands in while
/// there is no watermark yet): the last millisecond of the emission period
/// holding the first event time the watermark has not completed.
inline Timestamp EmissionTimerFor(Timestamp watermark, Timestamp record_time) {
  const int64_t period = kAggregateEmissionPeriod.count();
  Timestamp time = watermark == kNoTimestamp ? record_time : watermark + (watermark < kMaxWatermark ? 1 : 0);
  time = std::clamp(time, kNoTimestamp + period, kMaxWatermark - period);  // no overflow below
  Timestamp start = time / period * period;
  if (start > time) start -= period;  // negative times round down too
  return start + period - 1;
}

/// Registers the emission timer of the current key for a change made now
/// by a record of time `record_time` (see EmissionTimerFor).
inline void ScheduleEmission(TimerService& timers, Timestamp record_time) {
  timers.RegisterEventTimeTimer(EmissionTimerFor(timers.CurrentWatermark(), record_time));
}

// ---- q15 and q16: bids, bidders and auctions per day ---------------------------------

/// The measures of q15 and q16: bids, distinct bidders and distinct
/// auctions, in all and per price rank.
struct BidCounts {
  int64_t total_bids = 0;
  int64_t rank1_bids = 0;
  int64_t rank2_bids = 0;
  int64_t rank3_bids = 0;
  int64_t total_bidders = 0;
  int64_t rank1_bidders = 0;
  int64_t rank2_bidders = 0;
  int64_t rank3_bidders = 0;
  int64_t total_auctions = 0;
  int64_t rank1_auctions = 0;
  int64_t rank2_auctions = 0;
  int64_t rank3_auctions = 0;
  bool operator==(const BidCounts&) const = default;
};

/// q15's row: a day's counts (upsert by `day`).
struct DailyBidStats {
  std::string day;  // yyyy-MM-dd
  BidCounts counts;
  bool operator==(const DailyBidStats&) const = default;
};

/// q16's row: a channel's counts of a day (upsert by `channel`, `day`).
struct ChannelDailyBidStats {
  std::string channel;
  std::string day;     // yyyy-MM-dd
  std::string minute;  // HH:mm, the latest of the bids counted
  BidCounts counts;
  bool operator==(const ChannelDailyBidStats&) const = default;
};

/// What q15 and q17 read of a bid (a fixed-size record, cheap to ship
/// between subtasks).
struct DayBid {
  int64_t day = 0;  // UtcDayNumber(date_time)
  int64_t auction = 0;
  int64_t bidder = 0;
  int64_t price = 0;
};

/// What q16 reads of a bid.
struct ChannelDayBid {
  std::string channel;
  int64_t day = 0;
  int64_t auction = 0;
  int64_t bidder = 0;
  int64_t price = 0;
  int32_t minute = 0;  // UtcMinuteOfDay(date_time)
};

/// The keyed state and the counting of q15 and q16, for the key being
/// processed: the counters, and for each bidder and each auction seen the
/// set of price ranks it was seen in (a bit per rank in a MapState entry):
/// a distinct count grows when a bidder or an auction shows up in all, or
/// in a rank, for the first time. A bid reads one entry per distinct
/// measure and writes it only when it adds a rank.
class DistinctBidCounter {
 public:
  /// The counters of a key, with what its emission needs.
  struct Counters {
    std::array<int64_t, 4> bids{};  // [0] all, [1 + rank index] per rank
    std::array<int64_t, 4> bidders{};
    std::array<int64_t, 4> auctions{};
    int32_t latest_minute = -1;  // of the day, for q16
    bool emission_scheduled = false;
  };

  /// Gets the state handles. Call from the function's Open().
  void Open(KeyedStateAccess& state) {
    counters_ = &state.GetState(ValueStateDescriptor<Counters>("bid-counters"));
    bidder_ranks_ = &state.GetMapState(MapStateDescriptor<int64_t, uint8_t>("bidder-ranks"));
    auction_ranks_ = &state.GetMapState(MapStateDescriptor<int64_t, uint8_t>("auction-ranks"));
  }

  /// Counts a bid of the current key (of time `time`) and, if the key has
  /// no emission pending, schedules one (ScheduleEmission).
  void Add(int64_t bidder, int64_t auction, int64_t price, int32_t minute, Timestamp time, TimerService& timers) {
    Counters c = counters_->Value();
    const int rank = PriceRankIndex(price);
    ++c.bids[0];
    ++c.bids[1 + rank];
    CountDistinct(*bidder_ranks_, bidder, rank, c.bidders);
    CountDistinct(*auction_ranks_, auction, rank, c.auctions);
    c.latest_minute = std::max(c.latest_minute, minute);
    if (!c.emission_scheduled) {
      ScheduleEmission(timers, time);
      c.emission_scheduled = true;
    }
    counters_->Update(c);
  }

  /// The current key's counters, its emission now done.
  Counters TakeForEmission() {
    Counters c = counters_->Value();
    c.emission_scheduled = false;
    counters_->Update(c);
    return c;
  }

  static BidCounts ToBidCounts(const Counters& c) {
    return BidCounts{c.bids[0],     c.bids[1],     c.bids[2],     c.bids[3],     c.bidders[0],  c.bidders[1],
                     c.bidders[2],  c.bidders[3],  c.auctions[0], c.auctions[1], c.auctions[2], c.auctions[3]};
  }

 private:
  static void CountDistinct(MapState<int64_t, uint8_t>& seen, int64_t id, int rank, std::array<int64_t, 4>& counts) {
    const uint8_t bit = static_cast<uint8_t>(1u << rank);
    const std::optional<uint8_t> ranks = seen.Get(id);
    if (!ranks) {
      ++counts[0];
    } else if ((*ranks & bit) != 0) {
      return;
    }
    ++counts[1 + rank];
    seen.Put(id, static_cast<uint8_t>(ranks.value_or(0) | bit));
  }

  ValueState<Counters>* counters_ = nullptr;
  MapState<int64_t, uint8_t>* bidder_ranks_ = nullptr;
  MapState<int64_t, uint8_t>* auction_ranks_ = nullptr;
};

/// q15's keyed function (key: day number).
class DailyBidStatsFunction final : public KeyedProcessFunction<int64_t, DayBid, DailyBidStats> {
 public:
  void Open() override { counter_.Open(GetRuntimeContext()); }
  void ProcessElement(const DayBid& bid, Context& ctx, Collector<DailyBidStats>&) override {
    counter_.Add(bid.bidder, bid.auction, bid.price, 0, ctx.GetTimestamp(), ctx.GetTimerService());
  }
  void OnTimer(Timestamp, OnTimerContext& ctx, Collector<DailyBidStats>& out) override {
    const DistinctBidCounter::Counters c = counter_.TakeForEmission();
    out.Collect(DailyBidStats{DayNumberText(ctx.GetCurrentKey()), DistinctBidCounter::ToBidCounts(c)});
  }

 private:
  DistinctBidCounter counter_;
};

/// q15: per UTC day, the number of bids, of distinct bidders and of
/// distinct auctions, in all and per price rank (Flink's SQL: COUNT(*) and
/// COUNT(DISTINCT ...) with FILTER clauses, GROUP BY the day).
///
/// Rows are upserts by day, at most one per day per second of event time
/// (see the top of this file); the last row of a day is its final count.
/// The bids of a day meet in one subtask (keyed by day, as Flink's plan
/// without its split-distinct rewrite), which keeps a MapState entry per
/// distinct bidder and per distinct auction of the day.
inline DataStream<DailyBidStats> Query15(DataStream<Event> events) {
  return events
      .FlatMap([](const Event& e, Collector<DayBid>& out) {
        if (e.type != Event::kBid) return;
        const Bid& b = e.bid;
        out.Collect(DayBid{UtcDayNumber(b.date_time), b.auction, b.bidder, b.price});
      })
      .Name("q15 bids by day")
      .KeyBy([](const DayBid& b) { return b.day; })
      .Process(DailyBidStatsFunction())
      .Name("q15");
}

/// q16's keyed function (key: channel, day number).
class ChannelDailyBidStatsFunction final
    : public KeyedProcessFunction<std::pair<std::string, int64_t>, ChannelDayBid, ChannelDailyBidStats> {
 public:
  void Open() override { counter_.Open(GetRuntimeContext()); }
  void ProcessElement(const ChannelDayBid& bid, Context& ctx, Collector<ChannelDailyBidStats>&) override {
    counter_.Add(bid.bidder, bid.auction, bid.price, bid.minute, ctx.GetTimestamp(), ctx.GetTimerService());
  }
  void OnTimer(Timestamp, OnTimerContext& ctx, Collector<ChannelDailyBidStats>& out) override {
    const DistinctBidCounter::Counters c = counter_.TakeForEmission();
    const auto& [channel, day] = ctx.GetCurrentKey();
    out.Collect(ChannelDailyBidStats{channel, DayNumberText(day), MinuteOfDayText(c.latest_minute),
                                     DistinctBidCounter::ToBidCounts(c)});
  }

 private:
  DistinctBidCounter counter_;
};

/// q16: q15's counts per channel and UTC day, with `minute`, the latest
/// "HH:mm" of the key's bids (Flink's SQL: MAX(DATE_FORMAT(dateTime,
/// 'HH:mm')), GROUP BY channel and day). Upserts by (channel, day), at most
/// one per key per second of event time; the last row of a key is final.
inline DataStream<ChannelDailyBidStats> Query16(DataStream<Event> events) {
  return events
      .FlatMap([](const Event& e, Collector<ChannelDayBid>& out) {
        if (e.type != Event::kBid) return;
        const Bid& b = e.bid;
        out.Collect(ChannelDayBid{b.channel, UtcDayNumber(b.date_time), b.auction, b.bidder, b.price,
                                  UtcMinuteOfDay(b.date_time)});
      })
      .Name("q16 bids by channel and day")
      .KeyBy([](const ChannelDayBid& b) { return std::pair<std::string, int64_t>(b.channel, b.day); })
      .Process(ChannelDailyBidStatsFunction())
      .Name("q16");
}

// ---- q17: prices per auction and day ----------------------------------------------------

/// q17's row: an auction's bids of a day (upsert by `auction`, `day`).
struct AuctionDailyBidStats {
  int64_t auction = 0;
  std::string day;  // yyyy-MM-dd
  int64_t total_bids = 0;
  int64_t rank1_bids = 0;
  int64_t rank2_bids = 0;
  int64_t rank3_bids = 0;
  int64_t min_price = 0;
  int64_t max_price = 0;
  int64_t avg_price = 0;  // sum / count, truncated (Flink's AVG of a BIGINT)
  int64_t sum_price = 0;
  bool operator==(const AuctionDailyBidStats&) const = default;
};

/// q17's keyed function (key: auction, day number): one ValueState of
/// counters per key.
class AuctionDailyBidStatsFunction final
    : public KeyedProcessFunction<std::pair<int64_t, int64_t>, DayBid, AuctionDailyBidStats> {
 public:
  struct Counters {
    std::array<int64_t, 4> bids{};  // [0] all, [1 + rank index] per rank
    int64_t min_price = 0;
    int64_t max_price = 0;
    int64_t sum_price = 0;
    bool emission_scheduled = false;
  };

  void Open() override { counters_ = &GetRuntimeContext().GetState(ValueStateDescriptor<Counters>("price-counters")); }
  void ProcessElement(const DayBid& bid, Context& ctx, Collector<AuctionDailyBidStats>&) override {
    Counters c = counters_->Value();
    if (c.bids[0] == 0) {
      c.min_price = bid.price;
      c.max_price = bid.price;
    } else {
      c.min_price = std::min(c.min_price, bid.price);
      c.max_price = std::max(c.max_price, bid.price);
    }
    ++c.bids[0];
    ++c.bids[1 + PriceRankIndex(bid.price)];
    c.sum_price += bid.price;
    if (!c.emission_scheduled) {
      ScheduleEmission(ctx.GetTimerService(), ctx.GetTimestamp());
      c.emission_scheduled = true;
    }
    counters_->Update(c);
  }
  void OnTimer(Timestamp, OnTimerContext& ctx, Collector<AuctionDailyBidStats>& out) override {
    Counters c = counters_->Value();
    c.emission_scheduled = false;
    counters_->Update(c);
    const auto& [auction, day] = ctx.GetCurrentKey();
    out.Collect(AuctionDailyBidStats{auction, DayNumberText(day), c.bids[0], c.bids[1], c.bids[2], c.bids[3],
                                     c.min_price, c.max_price, c.sum_price / c.bids[0], c.sum_price});
  }

 private:
  ValueState<Counters>* counters_ = nullptr;
};

/// q17: per auction and UTC day, the number of bids in all and per price
/// rank, and the minimum, maximum, average and sum of their prices
/// (Flink's SQL: GROUP BY auction and day). The average is the sum divided
/// by the count, truncated, as Flink's AVG of a BIGINT column is a BIGINT.
/// Upserts by (auction, day), at most one per key per second of event
/// time; the last row of a key is final.
inline DataStream<AuctionDailyBidStats> Query17(DataStream<Event> events) {
  return events
      .FlatMap([](const Event& e, Collector<DayBid>& out) {
        if (e.type != Event::kBid) return;
        const Bid& b = e.bid;
        out.Collect(DayBid{UtcDayNumber(b.date_time), b.auction, b.bidder, b.price});
      })
      .Name("q17 bids by auction and day")
      .KeyBy([](const DayBid& b) { return std::pair<int64_t, int64_t>(b.auction, b.day); })
      .Process(AuctionDailyBidStatsFunction())
      .Name("q17");
}

// ---- q18: the latest bid of each bidder on each auction -------------------------------------

/// The order of q18 and q19 among bids that tie on their leading keys:
/// channel, then URL, then padding, compared byte by byte (SQL: COLLATE
/// "C"). <0 when `a` comes first, 0 when the three are equal.
inline int CompareBidTexts(const Bid& a, const Bid& b) {
  if (int c = a.channel.compare(b.channel); c != 0) return c;
  if (int c = a.url.compare(b.url); c != 0) return c;
  return a.extra.compare(b.extra);
}

/// q18's keyed function (key: bidder, auction). Two states: the latest bid
/// and, apart, its ordering keys, so that a bid that does not replace the
/// latest one is rejected without reading the stored bid's strings.
class LatestBidFunction final : public KeyedProcessFunction<std::pair<int64_t, int64_t>, Bid, Bid> {
 public:
  struct Latest {
    Timestamp date_time = 0;
    int64_t price = 0;
    bool emission_scheduled = false;
  };

  void Open() override {
    latest_ = &GetRuntimeContext().GetState(ValueStateDescriptor<Latest>("latest-order"));
    latest_bid_ = &GetRuntimeContext().GetState(ValueStateDescriptor<Bid>("latest-bid"));
  }
  void ProcessElement(const Bid& bid, Context& ctx, Collector<Bid>&) override {
    std::optional<Latest> latest = latest_->Get();
    if (latest && !Replaces(bid, *latest)) return;
    const bool scheduled = latest && latest->emission_scheduled;
    if (!scheduled) ScheduleEmission(ctx.GetTimerService(), ctx.GetTimestamp());
    latest_->Update(Latest{bid.date_time, bid.price, true});
    latest_bid_->Update(bid);
  }
  void OnTimer(Timestamp, OnTimerContext&, Collector<Bid>& out) override {
    Latest latest = latest_->Value();
    latest.emission_scheduled = false;
    latest_->Update(latest);
    out.Collect(latest_bid_->Value());
  }

 private:
  /// Whether `bid` comes after the key's latest bid: a later time, then a
  /// higher price, then the greater texts (CompareBidTexts).
  bool Replaces(const Bid& bid, const Latest& latest) {
    if (bid.date_time != latest.date_time) return bid.date_time > latest.date_time;
    if (bid.price != latest.price) return bid.price > latest.price;
    return CompareBidTexts(bid, latest_bid_->Value()) > 0;  // rare: reads the stored strings
  }

  ValueState<Latest>* latest_ = nullptr;
  ValueState<Bid>* latest_bid_ = nullptr;
};

/// q18: the latest bid of each (bidder, auction), all its fields (Flink's
/// SQL: ROW_NUMBER() OVER (PARTITION BY bidder, auction ORDER BY dateTime
/// DESC) = 1).
///
/// Ties: bids of a pair with the same time (the default rate puts ten
/// events in a millisecond) are ordered by price, then channel, URL and
/// padding (byte order), the greatest being the latest. Flink's
/// deduplication keeps the one that arrives last instead, which at a
/// parallelism above 1 depends on how the source's subtasks interleave;
/// ordering by values makes the result deterministic (and equal to SQL's
/// ORDER BY date_time DESC, price DESC, channel DESC, url DESC, extra DESC,
/// with COLLATE "C").
///
/// Rows are upserts by (bidder, auction) carrying the whole bid, at most
/// one per pair per second of event time; the last row of a pair is final.
inline DataStream<Bid> Query18(DataStream<Event> events) {
  return events
      .FlatMap([](const Event& e, Collector<Bid>& out) {
        if (e.type == Event::kBid) out.Collect(e.bid);
      })
      .Name("q18 bids")
      .KeyBy([](const Bid& b) { return std::pair<int64_t, int64_t>(b.bidder, b.auction); })
      .Process(LatestBidFunction())
      .Name("q18");
}

// ---- q19: the ten highest bids of each auction --------------------------------------------

/// Bids per auction that q19 ranks.
inline constexpr int32_t kQuery19TopCount = 10;

/// q19's row: the bid at `rank` (1 .. 10) of its auction (upsert by
/// `bid.auction`, `rank`).
struct AuctionTopBid {
  Bid bid;
  int64_t rank = 0;
  bool operator==(const AuctionTopBid&) const = default;
};

/// q19's keyed function (key: auction). State: the ranked bids' ordering
/// keys with where each bid sits in the list (one ValueState of fixed
/// size), and the bids themselves (a ListState, in arrival order; an
/// evicted bid's place goes to the bid that evicts it). A bid below the
/// tenth is rejected after reading the fixed-size index alone.
class TopBidsFunction final : public KeyedProcessFunction<int64_t, Bid, AuctionTopBid> {
 public:
  struct Ranked {
    int64_t price = 0;
    Timestamp date_time = 0;
    int64_t bidder = 0;
    int64_t slot = 0;  // position of the bid in the list state
  };
  struct Index {
    std::array<Ranked, kQuery19TopCount> ranked{};  // best first, [0, size)
    int32_t size = 0;
    int32_t first_changed = kQuery19TopCount;  // lowest rank index changed since the last emission
    bool emission_scheduled = false;
  };

  void Open() override {
    index_ = &GetRuntimeContext().GetState(ValueStateDescriptor<Index>("top-index"));
    bids_ = &GetRuntimeContext().GetListState(ListStateDescriptor<Bid>("top-bids"));
  }

  void ProcessElement(const Bid& bid, Context& ctx, Collector<AuctionTopBid>&) override {
    Index index = index_->Value();
    const int32_t n = index.size;
    if (n == kQuery19TopCount && Compare(bid, index.ranked[n - 1]) >= 0) return;
    int32_t rank = 0;
    while (rank < n && Compare(bid, index.ranked[rank]) >= 0) ++rank;
    int64_t slot;
    if (n < kQuery19TopCount) {
      slot = n;
      bids_->Add(bid);
      index.size = n + 1;
    } else {
      // The tenth leaves; the new bid takes its place in the list.
      slot = index.ranked[n - 1].slot;
      std::vector<Bid> bids = bids_->Get();
      bids[static_cast<size_t>(slot)] = bid;
      bids_->Update(std::move(bids));
    }
    std::copy_backward(index.ranked.begin() + rank, index.ranked.begin() + index.size - 1,
                       index.ranked.begin() + index.size);
    index.ranked[static_cast<size_t>(rank)] = Ranked{bid.price, bid.date_time, bid.bidder, slot};
    index.first_changed = std::min(index.first_changed, rank);
    if (!index.emission_scheduled) {
      ScheduleEmission(ctx.GetTimerService(), ctx.GetTimestamp());
      index.emission_scheduled = true;
    }
    index_->Update(index);
  }

  void OnTimer(Timestamp, OnTimerContext&, Collector<AuctionTopBid>& out) override {
    Index index = index_->Value();
    const std::vector<Bid>& bids = bids_->Get();
    for (int32_t rank = index.first_changed; rank < index.size; ++rank) {
      row_.bid = bids[static_cast<size_t>(index.ranked[static_cast<size_t>(rank)].slot)];
      row_.rank = rank + 1;
      out.Collect(row_);
    }
    index.first_changed = kQuery19TopCount;
    index.emission_scheduled = false;
    index_->Update(index);
  }

 private:
  /// <0 when `bid` ranks before `r`: higher price, then earlier time, then
  /// lower bidder, then smaller texts (CompareBidTexts); 0 when equal in
  /// all of these.
  int Compare(const Bid& bid, const Ranked& r) {
    if (bid.price != r.price) return bid.price > r.price ? -1 : 1;
    if (bid.date_time != r.date_time) return bid.date_time < r.date_time ? -1 : 1;
    if (bid.bidder != r.bidder) return bid.bidder < r.bidder ? -1 : 1;
    return CompareBidTexts(bid, bids_->Get()[static_cast<size_t>(r.slot)]);  // rare: reads the stored strings
  }

  ValueState<Index>* index_ = nullptr;
  ListState<Bid>* bids_ = nullptr;
  AuctionTopBid row_;  // reused: its strings keep their buffers
};

/// q19: the ten highest bids of each auction with their rank (Flink's SQL:
/// ROW_NUMBER() OVER (PARTITION BY auction ORDER BY price DESC) <= 10).
///
/// Ties: equal prices rank by earlier time, then lower bidder, then
/// channel, URL and padding (byte order), so the ranking is deterministic
/// (SQL: ORDER BY price DESC, date_time, bidder, channel, url, extra, with
/// COLLATE "C"). Flink leaves such ties to arrival order.
///
/// Rows are upserts by (auction, rank), one per rank that changed: a bid
/// entering at rank r moves ranks r .. 10 down, so the auction's next
/// emission (at most one per auction per second of event time) sends ranks
/// r .. n, n being how many bids the auction has ranked (at most 10). As
/// the input only adds bids, an auction's ranks only fill up, never empty,
/// and the last row of each (auction, rank) is the final ranking. Per-rank rows
/// send less than the whole list each time when bids enter low in it.
inline DataStream<AuctionTopBid> Query19(DataStream<Event> events) {
  return events
      .FlatMap([](const Event& e, Collector<Bid>& out) {
        if (e.type == Event::kBid) out.Collect(e.bid);
      })
      .Name("q19 bids")
      .KeyBy([](const Bid& b) { return b.auction; })
      .Process(TopBidsFunction())
      .Name("q19");
}

}  // namespace freshet::nexmark

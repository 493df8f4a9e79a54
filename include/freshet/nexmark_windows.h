#pragma once
/// The Nexmark queries built on windows, written with the DataStream API
/// after Flink's Nexmark SQL, each taking the stream of generated events
/// (with event-time timestamps and watermarks, as NexmarkOracleTest's
/// source and the reference's `dateTime` watermark give them):
///   q5 hot items: per 10 s window sliding every 2 s, the auction(s) with
///      the most bids;
///   q7 highest bid: per 10 s tumbling window, the bids with its highest
///      price;
///   q11 user sessions: bids per bidder per session (10 s gap);
///   q12 processing-time windows: bids per bidder per 10 s of processing
///      time;
///   q10 partitioned file sink: every bid as a line in files partitioned by
///      the day and minute of its event time, exactly once.
/// Times are milliseconds since the epoch; windows are [start, end).

#include <cstdint>
#include <limits>
#include <string>
#include <utility>
#include <vector>

#include "freshet/data_stream.h"
#include "freshet/file_sink.h"
#include "freshet/nexmark.h"
#include "freshet/nexmark_queries.h"
#include "freshet/windowed_stream.h"
#include "freshet/windowing.h"

namespace freshet::nexmark {

/// Window sizes of the queries, as in the reference SQL.
inline constexpr Duration kQuery5WindowSize{10000};
inline constexpr Duration kQuery5WindowSlide{2000};
inline constexpr Duration kQuery7WindowSize{10000};
inline constexpr Duration kQuery11SessionGap{10000};
inline constexpr Duration kQuery12WindowSize{10000};

/// count(*) of a window, for any record type.
template <class T>
class CountAggregate final : public AggregateFunction<T, int64_t, int64_t> {
 public:
  int64_t CreateAccumulator() override { return 0; }
  int64_t Add(const T& /*value*/, int64_t count) override { return count + 1; }
  int64_t GetResult(const int64_t& count) override { return count; }
  int64_t Merge(int64_t a, int64_t b) override { return a + b; }
};

// ---- q5: hot items -------------------------------------------------------------

/// q5's intermediate row: the bids of one auction in one hopping window.
struct AuctionWindowCount {
  int64_t auction = 0;
  int64_t count = 0;
  Timestamp window_start = 0;
  Timestamp window_end = 0;
  bool operator==(const AuctionWindowCount&) const = default;
};

/// q5's row: an auction with the most bids of a window (every one of them
/// when several tie), that count and the window's start.
struct HotItem {
  int64_t auction = 0;
  int64_t count = 0;
  Timestamp window_start = 0;
  bool operator==(const HotItem&) const = default;
};

/// q5, first stage: labels an auction's count with its window.
class LabelAuctionCount final : public ProcessWindowFunction<int64_t, AuctionWindowCount, int64_t, TimeWindow> {
 public:
  void Process(const int64_t& auction, Context& ctx, const std::vector<int64_t>& counts,
               Collector<AuctionWindowCount>& out) override {
    for (int64_t n : counts) out.Collect({auction, n, ctx.Window().start, ctx.Window().end});
  }
};

/// q5, second stage: of the counts of one hopping window, those equal to
/// their maximum.
class KeepHottestAuctions final
    : public ProcessWindowFunction<AuctionWindowCount, HotItem, Timestamp, TimeWindow> {
 public:
  void Process(const Timestamp& /*window_start*/, Context& /*ctx*/, const std::vector<AuctionWindowCount>& counts,
               Collector<HotItem>& out) override {
    int64_t max = std::numeric_limits<int64_t>::min();
    for (const AuctionWindowCount& c : counts) max = c.count > max ? c.count : max;
    for (const AuctionWindowCount& c : counts) {
      if (c.count == max) out.Collect({c.auction, c.count, c.window_start});
    }
  }
};

/// q5: counts the bids per auction in hopping event-time windows of 10 s
/// every 2 s, and per window emits the auction(s) with the highest count,
/// all of them on a tie (the reference joins the counts with their
/// per-window maximum on `num >= maxn`).
///
/// Two keyed stages: (auction) sliding windows counting bids, whose results
/// carry the window's max timestamp; then (window start) a tumbling window
/// of one slide, which holds exactly the results of one hopping window
/// (its max timestamp start + size - 1 lies in exactly one slide-aligned
/// window) and fires when the watermark that fired them arrives.
inline DataStream<HotItem> Query5(DataStream<Event> events) {
  return Bids(events)
      .KeyBy([](const Bid& b) { return b.auction; })
      .Window(SlidingEventTimeWindows::Of(kQuery5WindowSize, kQuery5WindowSlide))
      .Aggregate(CountAggregate<Bid>(), LabelAuctionCount())
      .Name("q5 bids per auction")
      .KeyBy([](const AuctionWindowCount& c) { return c.window_start; })
      .Window(TumblingEventTimeWindows::Of(kQuery5WindowSlide))
      .Process(KeepHottestAuctions())
      .Name("q5");
}

// ---- q7: highest bid -----------------------------------------------------------------

/// q7's row: a bid with the highest price of its window, and the window's end.
struct HighestBid {
  int64_t auction = 0;
  int64_t price = 0;
  int64_t bidder = 0;
  Timestamp date_time = 0;
  std::string extra;
  Timestamp window_end = 0;
  bool operator==(const HighestBid&) const = default;
};

/// The highest price seen so far and the bids with it.
struct HighestBidsAccumulator {
  int64_t price = std::numeric_limits<int64_t>::min();
  std::vector<Bid> bids;
};

/// Keeps the bids with the highest price.
class HighestBidsAggregate final
    : public AggregateFunction<Bid, HighestBidsAccumulator, HighestBidsAccumulator> {
 public:
  HighestBidsAccumulator CreateAccumulator() override { return {}; }
  HighestBidsAccumulator Add(const Bid& bid, HighestBidsAccumulator acc) override {
    if (bid.price > acc.price) {
      acc.price = bid.price;
      acc.bids.clear();
    }
    if (bid.price == acc.price) acc.bids.push_back(bid);
    return acc;
  }
  HighestBidsAccumulator GetResult(const HighestBidsAccumulator& acc) override { return acc; }
  HighestBidsAccumulator Merge(HighestBidsAccumulator a, HighestBidsAccumulator b) override {
    if (b.price > a.price) return b;
    if (b.price == a.price) a.bids.insert(a.bids.end(), b.bids.begin(), b.bids.end());
    return a;
  }
};

/// q7: emits the highest bids of a window with the window's end.
class EmitHighestBids final : public ProcessWindowFunction<HighestBidsAccumulator, HighestBid, Timestamp, TimeWindow> {
 public:
  void Process(const Timestamp& /*window_start*/, Context& ctx, const std::vector<HighestBidsAccumulator>& accs,
               Collector<HighestBid>& out) override {
    for (const HighestBidsAccumulator& acc : accs) {
      for (const Bid& b : acc.bids) out.Collect({b.auction, b.price, b.bidder, b.date_time, b.extra, ctx.Window().end});
    }
  }
};

/// q7: per tumbling event-time window of 10 s, the bids whose price is the
/// window's highest (all of them on a tie), with the window's end.
///
/// The reference SQL joins every bid with the per-window maximum on
/// `B.price = maxprice AND B.dateTime BETWEEN rowtime - 10 s AND rowtime`
/// (rowtime = end - 1 ms, both bounds inclusive), so a bid at exactly
/// start - 1 ms could join the next window's maximum as well. Here a
/// window's highest bids are taken from the window's own bids, [start, end),
/// the query's intent.
///
/// The bids are keyed by their window's start, so each window is computed
/// whole by one subtask (windows spread over the subtasks), holding only
/// the bids with the highest price seen.
inline DataStream<HighestBid> Query7(DataStream<Event> events) {
  return Bids(events)
      .KeyBy([](const Bid& b) { return TimeWindow::StartWithOffset(b.date_time, 0, kQuery7WindowSize.count()); })
      .Window(TumblingEventTimeWindows::Of(kQuery7WindowSize))
      .Aggregate(HighestBidsAggregate(), EmitHighestBids())
      .Name("q7");
}

// ---- q11: user sessions ---------------------------------------------------------------

/// q11's row: the bids of one bidder's session, with the session's bounds:
/// start = its first bid's time, end = its last bid's time + the gap.
struct UserSession {
  int64_t bidder = 0;
  int64_t count = 0;
  Timestamp session_start = 0;
  Timestamp session_end = 0;
  bool operator==(const UserSession&) const = default;
};

class LabelUserSession final : public ProcessWindowFunction<int64_t, UserSession, int64_t, TimeWindow> {
 public:
  void Process(const int64_t& bidder, Context& ctx, const std::vector<int64_t>& counts,
               Collector<UserSession>& out) override {
    for (int64_t n : counts) out.Collect({bidder, n, ctx.Window().start, ctx.Window().end});
  }
};

/// q11: bids per bidder per event-time session window with a gap of 10 s.
/// A bid at t opens [t, t + 10 s); a bidder's windows that overlap or touch
/// merge (TimeWindow::Intersects counts a shared end point, as Flink's
/// does), so a bid joins the session when it comes at most 10 s after the
/// previous bid of the bidder, and one exactly 10 s later still belongs to
/// it; a gap of more than 10 s starts a new session.
inline DataStream<UserSession> Query11(DataStream<Event> events) {
  return Bids(events)
      .KeyBy([](const Bid& b) { return b.bidder; })
      .Window(EventTimeSessionWindows::WithGap(kQuery11SessionGap))
      .Aggregate(CountAggregate<Bid>(), LabelUserSession())
      .Name("q11");
}

// ---- q12: processing-time windows ----------------------------------------------

/// q12's row: the bids of one bidder in one processing-time window.
struct ProcessingTimeBidCount {
  int64_t bidder = 0;
  int64_t count = 0;
  Timestamp window_start = 0;
  Timestamp window_end = 0;
  bool operator==(const ProcessingTimeBidCount&) const = default;
};

class LabelProcessingTimeCount final
    : public ProcessWindowFunction<int64_t, ProcessingTimeBidCount, int64_t, TimeWindow> {
 public:
  void Process(const int64_t& bidder, Context& ctx, const std::vector<int64_t>& counts,
               Collector<ProcessingTimeBidCount>& out) override {
    for (int64_t n : counts) out.Collect({bidder, n, ctx.Window().start, ctx.Window().end});
  }
};

/// q12: bids per bidder in tumbling processing-time windows of 10 s (the
/// window of a bid is chosen by the clock of the window operator's task
/// when the bid reaches it; it fires once that clock has passed the
/// window's last millisecond, so a bid arriving in that millisecond is
/// still counted in it and each bidder gets one row per window).
/// Windows still open when the input ends are not fired: at the end of a
/// bounded input the task finishes its operators and runs no more
/// processing-time timers, so their bids are not counted (as in Flink,
/// which stops its processing-time service before finishing operators).
inline DataStream<ProcessingTimeBidCount> Query12(DataStream<Event> events) {
  return Bids(events)
      .KeyBy([](const Bid& b) { return b.bidder; })
      .Window(TumblingProcessingTimeWindows::Of(kQuery12WindowSize))
      .Aggregate(CountAggregate<Bid>(), LabelProcessingTimeCount())
      .Name("q12");
}

// ---- q10: partitioned file sink --------------------------------------------------

/// q10's row: a bid's columns and its partition, the day (`yyyy-MM-dd`) and
/// the hour and minute (`HH:mm`) of its event time in UTC.
struct PartitionedBid {
  int64_t auction = 0;
  int64_t bidder = 0;
  int64_t price = 0;
  Timestamp date_time = 0;
  std::string extra;
  std::string dt;
  std::string hm;
  bool operator==(const PartitionedBid&) const = default;
};

namespace internal_q10 {
inline void AppendPadded(std::string& out, int64_t value, int width) {
  std::string digits = std::to_string(value);
  if (static_cast<int>(digits.size()) < width) out.append(static_cast<size_t>(width) - digits.size(), '0');
  out += digits;
}
inline int64_t FloorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0 && (a < 0) != (b < 0)) ? 1 : 0); }
}  // namespace internal_q10

/// `yyyy-MM-dd` of `time` in UTC (proleptic Gregorian calendar).
inline std::string UtcDay(Timestamp time) {
  // Days since 1970-01-01 to a civil date (H. Hinnant's days_from_civil inverse).
  int64_t z = internal_q10::FloorDiv(time, 86400000) + 719468;
  const int64_t era = internal_q10::FloorDiv(z, 146097);
  const int64_t doe = z - era * 146097;
  const int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const int64_t mp = (5 * doy + 2) / 153;
  const int64_t day = doy - (153 * mp + 2) / 5 + 1;
  const int64_t month = mp < 10 ? mp + 3 : mp - 9;
  const int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);
  std::string out;
  internal_q10::AppendPadded(out, year, 4);
  out += '-';
  internal_q10::AppendPadded(out, month, 2);
  out += '-';
  internal_q10::AppendPadded(out, day, 2);
  return out;
}

/// `HH:mm` of `time` in UTC.
inline std::string UtcHourMinute(Timestamp time) {
  int64_t minute_of_day = internal_q10::FloorDiv(time, 60000) - internal_q10::FloorDiv(time, 86400000) * 1440;
  std::string out;
  internal_q10::AppendPadded(out, minute_of_day / 60, 2);
  out += ':';
  internal_q10::AppendPadded(out, minute_of_day % 60, 2);
  return out;
}

/// q10, the SELECT: every bid with its partition.
inline DataStream<PartitionedBid> Query10(DataStream<Event> events) {
  return Bids(events)
      .Map([](const Bid& b) {
        return PartitionedBid{b.auction, b.bidder, b.price, b.date_time, b.extra, UtcDay(b.date_time),
                              UtcHourMinute(b.date_time)};
      })
      .Name("q10");
}

/// The partition directory of a row, as Flink's filesystem connector names
/// partitions: `dt=<yyyy-MM-dd>/hm=<HH:mm>`.
inline std::string Query10Partition(const PartitionedBid& row) { return "dt=" + row.dt + "/hm=" + row.hm; }

/// The line of a row: `auction,bidder,price,date_time,extra` (date_time in
/// milliseconds; the partition columns are in the path, not in the line).
inline void AppendQuery10Line(const PartitionedBid& row, std::string& out) {
  out += std::to_string(row.auction);
  out += ',';
  out += std::to_string(row.bidder);
  out += ',';
  out += std::to_string(row.price);
  out += ',';
  out += std::to_string(row.date_time);
  out += ',';
  out += row.extra;
  out += '\n';
}

/// q10's sink table: a FileSink under `base_path` with a bucket per
/// partition (Query10Partition) and a line per row (AppendQuery10Line).
/// Part files roll at every checkpoint and are committed when it completes
/// (OnCheckpointRollingPolicy, FileSink's default): with checkpointing every
/// row is published exactly once, also across failures and restarts.
inline FileSink<PartitionedBid> Query10Sink(const std::string& base_path) {
  FileSink<PartitionedBid> sink(base_path);
  sink.WithBucketAssigner([](const PartitionedBid& row, const BucketContext&) { return Query10Partition(row); });
  sink.WithEncoder([](const PartitionedBid& row, std::string& out) { AppendQuery10Line(row, out); });
  return sink;
}

/// q10 whole: the rows of Query10 into Query10Sink(base_path).
inline DataStreamSink<PartitionedBid> SinkQuery10(DataStream<PartitionedBid> rows, const std::string& base_path) {
  return rows.SinkTo(Query10Sink(base_path), "q10 files");
}

}  // namespace freshet::nexmark

#pragma once
/// Nexmark queries over closed auctions and their winning bids, written with
/// the DataStream API:
///   q9 every closed auction with its winning bid,
///   q4 the average winning price per category,
///   q6 the average selling price per seller over their last 10 closed
///      auctions.
///
/// The three share one operator, WinningBidFunction: auctions and bids
/// meet in a keyed co-process function keyed by auction id, which keeps the
/// auction's best bid so far in keyed state and, when the watermark passes
/// the auction's `expires`, emits the winner once from an event-time timer
/// and clears the auction's state (append-only output, unlike Flink SQL's
/// updating join and Top-1, which revise a result on every better bid).
///
/// The winning bid of an auction: among the bids on it with
/// auction.date_time <= bid.date_time <= auction.expires, the one with the
/// highest price; on equal prices the earliest date_time, then the lowest
/// bidder (BidOrder). Auctions without such bids have no winner.
///
///   auto rows = nexmark::Query9(events);   // events with timestamps and watermarks

#include <algorithm>
#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "freshet/freshet.h"
#include "freshet/nexmark.h"

namespace freshet::nexmark {

// ---- rows ---------------------------------------------------------------------

/// The fields of an auction that q4 and q6 need.
struct AuctionSummary {
  int64_t id = 0;
  Timestamp date_time = 0;
  Timestamp expires = 0;
  int64_t seller = 0;
  int64_t category = 0;
  bool operator==(const AuctionSummary&) const = default;
};

/// The fields of a bid that choosing a winner needs.
struct BidSummary {
  int64_t auction = 0;
  int64_t bidder = 0;
  int64_t price = 0;
  Timestamp date_time = 0;
  bool operator==(const BidSummary&) const = default;
};

/// The fields of a bid that q9 outputs: BidSummary and the bid's padding.
struct BidWithExtra {
  int64_t auction = 0;
  int64_t bidder = 0;
  int64_t price = 0;
  Timestamp date_time = 0;
  std::string extra;
  bool operator==(const BidWithExtra&) const = default;
};

/// q9's row: every field of the auction, then the winning bid's fields.
struct AuctionWinningBid {
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
  int64_t auction = 0;  // the bid's auction (equal to id)
  int64_t bidder = 0;
  int64_t price = 0;
  Timestamp bid_date_time = 0;
  std::string bid_extra;
  bool operator==(const AuctionWinningBid&) const = default;
};

/// The winning price of a closed auction, with what q4 and q6 group and
/// order by.
struct WinningPrice {
  int64_t auction = 0;
  int64_t seller = 0;
  int64_t category = 0;
  Timestamp expires = 0;
  int64_t price = 0;
  bool operator==(const WinningPrice&) const = default;
};

/// q4's row: an upsert of the category's average winning price.
struct CategoryAverage {
  int64_t category = 0;
  int64_t average = 0;  // truncated toward zero, as Flink's AVG of a BIGINT
  bool operator==(const CategoryAverage&) const = default;
};

/// q6's row: the seller's average selling price once `auction` closed.
struct SellerAverage {
  int64_t seller = 0;
  int64_t auction = 0;
  int64_t average = 0;  // truncated toward zero, as Flink's AVG of a BIGINT
  bool operator==(const SellerAverage&) const = default;
};

// ---- the winning bid ---------------------------------------------------------

/// The order of bids on one auction, best first: higher price, then earlier
/// date_time, then lower bidder. True when (price, date_time, bidder)
/// ranks before (other_price, other_date_time, other_bidder).
inline bool BidOrder(int64_t price, Timestamp date_time, int64_t bidder, int64_t other_price,
                     Timestamp other_date_time, int64_t other_bidder) {
  if (price != other_price) return price > other_price;
  if (date_time != other_date_time) return date_time < other_date_time;
  return bidder < other_bidder;
}

/// WinningBidFunction's small per-auction state, read on every bid: the
/// auction's lifetime and the ordering fields of its best bid so far (the
/// best bid itself and the auction are kept apart and read only at close).
struct AuctionProgress {
  Timestamp date_time = 0;
  Timestamp expires = 0;
  int64_t best_price = 0;
  Timestamp best_date_time = 0;
  int64_t best_bidder = 0;
  bool has_best = false;
  /// The auction has closed; the entry only remembers its id (see
  /// kClosedAuctionRetention).
  bool closed = false;

  /// Whether `bid` falls inside the auction's lifetime.
  template <class B>
  bool Admits(const B& bid) const {
    return bid.date_time >= date_time && bid.date_time <= expires;
  }
  /// Makes `bid` the best bid if it ranks before the current one; false if not.
  template <class B>
  bool TakeIfBetter(const B& bid) {
    if (has_best && !BidOrder(bid.price, bid.date_time, bid.bidder, best_price, best_date_time, best_bidder)) {
      return false;
    }
    best_price = bid.price;
    best_date_time = bid.date_time;
    best_bidder = bid.bidder;
    has_best = true;
    return true;
  }
};

/// How long, in event time after it closed, an auction's id is remembered
/// so that later bids on it are dropped on arrival. Only a cost trade-off:
/// a bid on an auction that is not (or no longer) known is kept as an
/// early bid until the watermark passes its date_time, and dropped then,
/// since the auction ids are unique; the output is the same. The
/// generator's bids refer to the last 100 or so auctions, well under a
/// second of event time at its default rate.
inline constexpr Duration kClosedAuctionRetention{10'000};

/// The winning bid of every auction, keyed by auction id: input 1 carries
/// auctions (A: `id`, `date_time`, `expires`), input 2 bids (B: `auction`,
/// `bidder`, `price`, `date_time`). When the watermark passes an auction's
/// `expires`, an event-time timer emits `make_row(auction, winning_bid)`
/// once (if the auction had a bid in its lifetime) with timestamp
/// `expires`, and clears the auction's state.
///
/// Keyed state (all through the state API, so it is checkpointed and works
/// on the RocksDB backend):
///   "auction-progress"  AuctionProgress: lifetime and best bid's ordering
///   "auction"           A, read once at close
///   "best-bid"          B, written when a better bid arrives
///   "early-bids"        MapState<Timestamp, B>: per date_time, the best
///                       of the bids that arrived before their auction
/// Bids may arrive before their auction (the generator refers to auctions
/// slightly ahead of the last one, parallel sources interleave, and the
/// operator reads its two inputs in no particular order relative to each
/// other): they are kept until the auction arrives, or until the watermark
/// passes their date_time (a timer), after which no auction whose lifetime
/// holds them can still arrive on time.
/// REQUIRES: auction ids are unique; an auction repeating an id that is
/// open or remembered as closed is ignored.
template <class A, class B, class MakeRow>
class WinningBidFunction final
    : public KeyedCoProcessFunction<int64_t, A, B, std::decay_t<std::invoke_result_t<const MakeRow&, A, B>>> {
 public:
  using Row = std::decay_t<std::invoke_result_t<const MakeRow&, A, B>>;
  using Base = KeyedCoProcessFunction<int64_t, A, B, Row>;
  using typename Base::Context;
  using typename Base::OnTimerContext;

  explicit WinningBidFunction(MakeRow make_row, Duration closed_retention = kClosedAuctionRetention)
      : make_row_(std::move(make_row)), closed_retention_(closed_retention.count()) {}

  void Open() override {
    RuntimeContext& rc = this->GetRuntimeContext();
    progress_ = &rc.GetState(ValueStateDescriptor<AuctionProgress>("auction-progress"));
    auction_ = &rc.GetState(ValueStateDescriptor<A>("auction"));
    best_bid_ = &rc.GetState(ValueStateDescriptor<B>("best-bid"));
    early_bids_ = &rc.GetMapState(MapStateDescriptor<Timestamp, B>("early-bids"));
  }

  void ProcessElement1(const A& auction, Context& ctx, Collector<Row>&) override {
    if (progress_->Get()) return;
    AuctionProgress progress;
    progress.date_time = auction.date_time;
    progress.expires = auction.expires;
    if (!early_bids_->IsEmpty()) {
      // The best early bid inside the lifetime (the order is total, so the
      // order of the visit does not matter).
      std::optional<B> best;
      early_bids_->ForEach([&](const Timestamp&, const B& b) {
        if (progress.Admits(b) && progress.TakeIfBetter(b)) best = b;
      });
      if (best) best_bid_->Update(*best);
      early_bids_->Clear();
    }
    progress_->Update(progress);
    auction_->Update(auction);
    ctx.GetTimerService().RegisterEventTimeTimer(auction.expires);
  }

  void ProcessElement2(const B& bid, Context& ctx, Collector<Row>&) override {
    std::optional<AuctionProgress> progress = progress_->Get();
    if (!progress) {
      // Of the early bids with one date_time only the best can win: every
      // lifetime that holds one holds all of them.
      std::optional<B> held = early_bids_->Get(bid.date_time);
      if (held && !BidOrder(bid.price, bid.date_time, bid.bidder, held->price, held->date_time, held->bidder)) return;
      early_bids_->Put(bid.date_time, bid);
      if (!held) ctx.GetTimerService().RegisterEventTimeTimer(bid.date_time);
      return;
    }
    if (progress->closed || !progress->Admits(bid) || !progress->TakeIfBetter(bid)) return;
    progress_->Update(*progress);
    best_bid_->Update(bid);
  }

  void OnTimer(Timestamp time, OnTimerContext& ctx, Collector<Row>& out) override {
    std::optional<AuctionProgress> progress = progress_->Get();
    if (!progress) {
      // The watermark has passed the early bids of this date_time: an
      // auction whose lifetime holds them would be late.
      early_bids_->Remove(time);
      return;
    }
    if (progress->closed) {
      if (time >= progress->expires + closed_retention_) progress_->Clear();
      return;
    }
    // Timers of early bids that fire while the auction is open.
    if (time < progress->expires) return;
    if (progress->has_best) out.Collect(make_row_(auction_->Value(), best_bid_->Value()));
    auction_->Clear();
    best_bid_->Clear();
    if (closed_retention_ <= 0) {
      progress_->Clear();
      return;
    }
    progress->closed = true;
    progress_->Update(*progress);
    ctx.GetTimerService().RegisterEventTimeTimer(progress->expires + closed_retention_);
  }

 private:
  MakeRow make_row_;
  int64_t closed_retention_;
  ValueState<AuctionProgress>* progress_ = nullptr;
  ValueState<A>* auction_ = nullptr;
  ValueState<B>* best_bid_ = nullptr;
  MapState<Timestamp, B>* early_bids_ = nullptr;
};

/// Connects `auctions` and `bids` by auction id and applies
/// WinningBidFunction with `make_row`.
template <class A, class B, class MakeRow>
auto WinningBids(DataStream<A> auctions, DataStream<B> bids, MakeRow make_row,
                 Duration closed_retention = kClosedAuctionRetention) {
  return auctions.Connect(bids)
      .KeyBy([](const A& a) { return a.id; }, [](const B& b) { return b.auction; })
      .Process(WinningBidFunction<A, B, MakeRow>(std::move(make_row), closed_retention));
}

/// The auctions of the event stream, as AuctionSummary.
inline DataStream<AuctionSummary> AuctionSummaries(DataStream<Event> events) {
  return events
      .FlatMap([](const Event& e, Collector<AuctionSummary>& out) {
        if (e.type != Event::kAuction) return;
        const Auction& a = e.auction;
        out.Collect(AuctionSummary{a.id, a.date_time, a.expires, a.seller, a.category});
      })
      .Name("auction summaries");
}

/// The bids of the event stream, as BidSummary.
inline DataStream<BidSummary> BidSummaries(DataStream<Event> events) {
  return events
      .FlatMap([](const Event& e, Collector<BidSummary>& out) {
        if (e.type != Event::kBid) return;
        const Bid& b = e.bid;
        out.Collect(BidSummary{b.auction, b.bidder, b.price, b.date_time});
      })
      .Name("bid summaries");
}

/// Makes WinningPrice rows of closed auctions.
struct MakeWinningPrice {
  WinningPrice operator()(const AuctionSummary& a, const BidSummary& b) const {
    return WinningPrice{a.id, a.seller, a.category, a.expires, b.price};
  }
};

/// Makes q9's rows, moving the strings out of the state's copies.
struct MakeAuctionWinningBid {
  AuctionWinningBid operator()(Auction a, BidWithExtra b) const {
    return AuctionWinningBid{a.id,       std::move(a.item_name), std::move(a.description), a.initial_bid,
                             a.reserve,  a.date_time,            a.expires,                a.seller,
                             a.category, std::move(a.extra),     b.auction,                b.bidder,
                             b.price,    b.date_time,            std::move(b.extra)};
  }
};

/// The winning price of every closed auction that had a bid in its
/// lifetime, emitted once when the watermark passes its `expires` (with
/// that timestamp): the input of q4 and q6.
inline DataStream<WinningPrice> WinningPrices(DataStream<Event> events) {
  return WinningBids(AuctionSummaries(events), BidSummaries(events), MakeWinningPrice{}).Name("winning prices");
}

// ---- q9 ------------------------------------------------------------------------------

/// The auctions of the event stream, whole (q9 outputs every field).
inline DataStream<Auction> Query9Auctions(DataStream<Event> events) {
  return events
      .FlatMap([](const Event& e, Collector<Auction>& out) {
        if (e.type == Event::kAuction) out.Collect(e.auction);
      })
      .Name("auctions");
}

/// The bids of the event stream, as BidWithExtra.
inline DataStream<BidWithExtra> Query9Bids(DataStream<Event> events) {
  return events
      .FlatMap([](const Event& e, Collector<BidWithExtra>& out) {
        if (e.type != Event::kBid) return;
        const Bid& b = e.bid;
        out.Collect(BidWithExtra{b.auction, b.bidder, b.price, b.date_time, b.extra});
      })
      .Name("bids with extra");
}

/// q9: every closed auction that had a bid in its lifetime, with its
/// winning bid (the auction's fields, then the bid's auction, bidder,
/// price, date_time and extra), emitted once when the watermark passes the
/// auction's `expires`. Flink SQL writes q9 as a join and a Top-1
/// (ROW_NUMBER() = 1 ordered by price DESC, date_time ASC) whose result is
/// revised as better bids arrive; this program emits only the final
/// winner of each auction (append-only), and breaks ties of price and
/// date_time by the lower bidder so that the winner is determined.
/// Auctions still open at the end of a bounded input close with the final
/// watermark.
inline DataStream<AuctionWinningBid> Query9(DataStream<Event> events) {
  return WinningBids(Query9Auctions(events), Query9Bids(events), MakeAuctionWinningBid{}).Name("q9");
}

// ---- q4 --------------------------------------------------------------------------------

/// q4's second level: the average winning price per category (the key),
/// emitted as an upsert at most once per category per second of event
/// time: an event-time timer at the end of the second (t - t mod 1000 +
/// 999) in which an auction closed (t = its expires, the record's
/// timestamp) emits the average of all winning prices the category has
/// received by then. State: one ValueState<PriceSum> per category.
class CategoryAverageFunction final : public KeyedProcessFunction<int64_t, WinningPrice, CategoryAverage> {
 public:
  /// The length of the periods in which a category emits at most one update.
  static constexpr int64_t kEmitPeriodMs = 1000;

  struct PriceSum {
    int64_t sum = 0;
    int64_t count = 0;
    /// The latest emission timer set; an update before it rides along.
    Timestamp emit_at = kNoTimestamp;
  };

  void Open() override { sum_ = &GetRuntimeContext().GetState(ValueStateDescriptor<PriceSum>("price-sum")); }

  void ProcessElement(const WinningPrice& w, Context& ctx, Collector<CategoryAverage>&) override {
    PriceSum s = sum_->Value();
    s.sum += w.price;
    ++s.count;
    Timestamp period_end = w.expires - Modulo(w.expires) + (kEmitPeriodMs - 1);
    if (s.emit_at == kNoTimestamp || period_end > s.emit_at) {
      ctx.GetTimerService().RegisterEventTimeTimer(period_end);
      s.emit_at = period_end;
    }
    sum_->Update(s);
  }

  void OnTimer(Timestamp, OnTimerContext& ctx, Collector<CategoryAverage>& out) override {
    std::optional<PriceSum> s = sum_->Get();
    if (s && s->count > 0) out.Collect(CategoryAverage{ctx.GetCurrentKey(), s->sum / s->count});
  }

 private:
  static int64_t Modulo(Timestamp ts) {
    int64_t m = ts % kEmitPeriodMs;
    return m < 0 ? m + kEmitPeriodMs : m;
  }
  ValueState<PriceSum>* sum_ = nullptr;
};

/// q4: the average winning price of the closed auctions of each category.
/// Flink SQL computes MAX(price) per auction over the join as bids arrive
/// and AVG over those maxima with retractions, so its averages include
/// auctions still open; here an auction counts once it has closed (its
/// final winning price; auctions without a bid in their lifetime do not
/// count), and each category's average is emitted as an upsert row at most
/// once per second of event time (like Flink SQL's mini-batch): the last
/// row of a category is its current average. The average is the integer
/// sum / count truncated toward zero, Flink's AVG of a BIGINT.
inline DataStream<CategoryAverage> Query4(DataStream<Event> events) {
  return WinningPrices(events).KeyBy([](const WinningPrice& w) { return w.category; })
      .Process(CategoryAverageFunction())
      .Name("q4");
}

// ---- q6 --------------------------------------------------------------------------------

/// q6's second level, keyed by seller: closed auctions are applied in the
/// order of (expires, auction id). Winning prices from parallel upstream
/// subtasks may arrive out of that order, so each is buffered until the
/// watermark passes its `expires` (an event-time timer), when all the
/// seller's buffered auctions up to that time are sorted and applied.
class SellerAverageFunction final : public KeyedProcessFunction<int64_t, WinningPrice, SellerAverage> {
 public:
  /// How many of a seller's latest closed auctions the average covers.
  static constexpr int kWindow = 10;

  /// The winning prices of the seller's last (up to) kWindow auctions.
  struct RecentPrices {
    std::array<int64_t, kWindow> prices{};
    int64_t sum = 0;
    int32_t count = 0;
    int32_t next = 0;  // where the next price goes (the oldest when full)

    void Add(int64_t price) {
      if (count == kWindow) {
        sum -= prices[static_cast<size_t>(next)];
      } else {
        ++count;
      }
      prices[static_cast<size_t>(next)] = price;
      sum += price;
      next = (next + 1) % kWindow;
    }
  };

  void Open() override {
    RuntimeContext& rc = GetRuntimeContext();
    pending_ = &rc.GetListState(ListStateDescriptor<WinningPrice>("pending-closed-auctions"));
    recent_ = &rc.GetState(ValueStateDescriptor<RecentPrices>("recent-prices"));
  }

  void ProcessElement(const WinningPrice& w, Context& ctx, Collector<SellerAverage>&) override {
    pending_->Add(w);
    ctx.GetTimerService().RegisterEventTimeTimer(w.expires);
  }

  void OnTimer(Timestamp time, OnTimerContext& ctx, Collector<SellerAverage>& out) override {
    const std::vector<WinningPrice>& pending = pending_->Get();
    due_.clear();
    later_.clear();
    for (const WinningPrice& w : pending) (w.expires <= time ? due_ : later_).push_back(w);
    if (due_.empty()) return;
    if (later_.empty()) {
      pending_->Clear();
    } else {
      pending_->Update(std::move(later_));
      later_ = {};
    }
    std::sort(due_.begin(), due_.end(), [](const WinningPrice& x, const WinningPrice& y) {
      return x.expires != y.expires ? x.expires < y.expires : x.auction < y.auction;
    });
    RecentPrices recent = recent_->Value();
    for (const WinningPrice& w : due_) {
      recent.Add(w.price);
      out.Collect(SellerAverage{ctx.GetCurrentKey(), w.auction, recent.sum / recent.count});
    }
    recent_->Update(recent);
  }

 private:
  ListState<WinningPrice>* pending_ = nullptr;
  ValueState<RecentPrices>* recent_ = nullptr;
  std::vector<WinningPrice> due_;    // scratch of OnTimer
  std::vector<WinningPrice> later_;  // scratch of OnTimer
};

/// q6: on every closed auction with a winner, the seller's average selling
/// price over their last (up to) 10 closed auctions with a winner,
/// including this one, in the order of closing: by expires, then auction
/// id. Rows are (seller, auction, average). Flink SQL cannot run q6 (an
/// OVER aggregation on an updating input); here each auction closes once
/// (see Query9) and its seller's row is emitted when the watermark passes
/// its expires. The average is the integer sum / count truncated toward
/// zero, Flink's AVG of a BIGINT.
inline DataStream<SellerAverage> Query6(DataStream<Event> events) {
  return WinningPrices(events).KeyBy([](const WinningPrice& w) { return w.seller; })
      .Process(SellerAverageFunction())
      .Name("q6");
}

}  // namespace freshet::nexmark

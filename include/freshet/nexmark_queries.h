#pragma once
/// Nexmark queries written with the DataStream API, each taking the stream
/// of generated events. So far the stateless ones:
///   q0 pass-through of bids, q1 prices in euros, q2 bids of every 123rd auction.

#include <cstdint>
#include <string>

#include "freshet/data_stream.h"
#include "freshet/nexmark.h"

namespace freshet::nexmark {

/// q1's row: a bid with its price in euros (x 0.908).
struct EuroBid {
  int64_t auction = 0;
  int64_t bidder = 0;
  double price = 0;
  Timestamp date_time = 0;
  bool operator==(const EuroBid&) const = default;
};

/// q2's row.
struct AuctionPrice {
  int64_t auction = 0;
  int64_t price = 0;
  bool operator==(const AuctionPrice&) const = default;
};

/// The bids of the event stream.
inline DataStream<Bid> Bids(DataStream<Event> events) {
  return events.Filter([](const Event& e) { return e.type == Event::kBid; })
      .Map([](const Event& e) { return e.bid; })
      .Name("bids");
}

/// q0: every bid, unchanged.
inline DataStream<Bid> Query0(DataStream<Event> events) { return Bids(events).Name("q0"); }

/// q1: every bid with its price converted to euros.
inline DataStream<EuroBid> Query1(DataStream<Event> events) {
  return events.Filter([](const Event& e) { return e.type == Event::kBid; })
      .Map([](const Event& e) {
        return EuroBid{e.bid.auction, e.bid.bidder, 0.908 * static_cast<double>(e.bid.price), e.bid.date_time};
      })
      .Name("q1");
}

/// q2: auction and price of the bids on auctions whose id is a multiple of 123.
inline DataStream<AuctionPrice> Query2(DataStream<Event> events) {
  return events.Filter([](const Event& e) { return e.type == Event::kBid && e.bid.auction % 123 == 0; })
      .Map([](const Event& e) { return AuctionPrice{e.bid.auction, e.bid.price}; })
      .Name("q2");
}

}  // namespace freshet::nexmark

#pragma once
/// Nexmark queries written with the DataStream API, each taking the stream
/// of generated events (nexmark::Events). The stateful ones are in
/// nexmark_joins.h, nexmark_windows.h, nexmark_auctions.h and
/// nexmark_aggregates.h; here the stateless ones:
///   q0 pass-through of bids, q1 prices in euros, q2 bids of every 123rd
///   auction, q14 a price band with a time-of-day bucket and a user
///   function, q21 channel ids, q22 the URL's first three directories.

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

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

/// q14's row.
struct BidTimeType {
  int64_t auction = 0;
  int64_t bidder = 0;
  double price = 0;  // in euros
  std::string bid_time_type;  // "dayTime", "nightTime" or "otherTime"
  Timestamp date_time = 0;
  std::string extra;
  int64_t c_counts = 0;  // of 'c' in extra (the user function)
  bool operator==(const BidTimeType&) const = default;
};

/// The user function of q14: how often `c` occurs in `s`.
inline int64_t CountChar(std::string_view s, char c) {
  int64_t n = 0;
  for (char x : s) n += x == c ? 1 : 0;
  return n;
}

/// q14: bids whose price in euros is strictly between 1,000,000 and
/// 50,000,000, with the bucket of their hour of day (UTC): 8-18 day,
/// 20-6 night, else other, and the count of 'c' in their padding.
inline DataStream<BidTimeType> Query14(DataStream<Event> events) {
  return events.Filter([](const Event& e) { return e.type == Event::kBid; })
      .FlatMap([](const Event& e, Collector<BidTimeType>& out) {
        const Bid& b = e.bid;
        double euros = 0.908 * static_cast<double>(b.price);
        if (!(euros > 1000000 && euros < 50000000)) return;
        int64_t hour = (b.date_time / 3600000) % 24;
        if (hour < 0) hour += 24;
        const char* type = hour >= 8 && hour <= 18 ? "dayTime" : hour <= 6 || hour >= 20 ? "nightTime" : "otherTime";
        out.Collect(BidTimeType{b.auction, b.bidder, euros, type, b.date_time, b.extra, CountChar(b.extra, 'c')});
      })
      .Name("q14");
}

/// q21's row: a bid with the id of its channel.
struct ChannelBid {
  int64_t auction = 0;
  int64_t bidder = 0;
  int64_t price = 0;
  std::string channel;
  std::string channel_id;
  bool operator==(const ChannelBid&) const = default;
};

/// q22's row: a bid with the first three directories of its URL's path.
struct UrlDirectories {
  int64_t auction = 0;
  int64_t bidder = 0;
  int64_t price = 0;
  std::string channel;
  std::string dir1, dir2, dir3;
  bool operator==(const UrlDirectories&) const = default;
};

/// The value of the URL parameter `channel_id` (after '&' or at the start,
/// up to the next '&'), if any.
inline std::optional<std::string_view> ChannelIdOf(std::string_view url) {
  constexpr std::string_view kName = "channel_id=";
  for (size_t at = url.find(kName); at != std::string_view::npos; at = url.find(kName, at + 1)) {
    if (at != 0 && url[at - 1] != '&') continue;
    std::string_view rest = url.substr(at + kName.size());
    return rest.substr(0, rest.find('&'));
  }
  return std::nullopt;
}

/// q21: the bids of the four known channels (by name, any case) or of a
/// URL carrying a channel id, with that id.
inline DataStream<ChannelBid> Query21(DataStream<Event> events) {
  return events.Filter([](const Event& e) { return e.type == Event::kBid; })
      .FlatMap([](const Event& e, Collector<ChannelBid>& out) {
        const Bid& b = e.bid;
        std::string lower = b.channel;
        for (char& c : lower) c = static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
        std::string id;
        if (lower == "apple") {
          id = "0";
        } else if (lower == "google") {
          id = "1";
        } else if (lower == "facebook") {
          id = "2";
        } else if (lower == "baidu") {
          id = "3";
        } else if (auto found = ChannelIdOf(b.url)) {
          id = std::string(*found);
        } else {
          return;
        }
        out.Collect(ChannelBid{b.auction, b.bidder, b.price, b.channel, std::move(id)});
      })
      .Name("q21");
}

/// q22: every bid with the 4th, 5th and 6th fields of its URL split at '/'
/// (the first three directories of "https://host/d1/d2/d3/..."); empty
/// where the URL has fewer.
inline DataStream<UrlDirectories> Query22(DataStream<Event> events) {
  return events.Filter([](const Event& e) { return e.type == Event::kBid; })
      .Map([](const Event& e) {
        const Bid& b = e.bid;
        UrlDirectories row{b.auction, b.bidder, b.price, b.channel, {}, {}, {}};
        std::string* dirs[3] = {&row.dir1, &row.dir2, &row.dir3};
        std::string_view url = b.url;
        size_t field = 0, start = 0;
        for (size_t i = 0; i <= url.size() && field < 6; ++i) {
          if (i == url.size() || url[i] == '/') {
            if (field >= 3) dirs[field - 3]->assign(url.substr(start, i - start));
            ++field;
            start = i + 1;
          }
        }
        return row;
      })
      .Name("q22");
}

}  // namespace freshet::nexmark

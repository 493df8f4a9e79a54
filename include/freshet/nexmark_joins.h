#pragma once
/// Nexmark's join queries written with the DataStream API, each taking the
/// stream of generated events (with timestamps and watermarks for q8):
///   q3  regular join: sellers in Oregon, Idaho or California and their
///       auctions of category 10 ("local item suggestion"),
///   q8  window join: people who registered and opened an auction in the
///       same 10 s tumbling window ("monitor new users"),
///   q13 lookup join of every bid with a bounded side input read from a
///       file ("bounded side input join"),
///   q20 regular join: the bids of auctions of category 10 with the
///       auction's fields ("expand bid with auction").
///
/// The regular joins (q3, q20) are keyed two-input operators
/// (KeyedCoProcessFunction) over insert-only inputs, so their output is
/// append-only. Either side may arrive first. Unlike Flink's generic
/// streaming join, which keeps both sides for ever, they use what the
/// Nexmark model guarantees: person and auction ids are unique. So the
/// "many" side (auctions in q3, bids in q20) is kept only while its "one"
/// side (the person, the auction) has not arrived; once it has, the waiting
/// records are joined and dropped, and later ones join directly. The "one"
/// side arrives whatever the filter says, so that records waiting for a
/// person or auction that does not pass it are dropped too (the filter is
/// applied in the join, not before it); only the fields the output needs
/// are kept of it.

#include <cerrno>
#include <cstdint>
#include <cstring>
#include <fstream>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "freshet/freshet.h"
#include "freshet/nexmark.h"
#include "freshet/nexmark_queries.h"

namespace freshet::nexmark {

// ---- q3 ---------------------------------------------------------------------------

/// q3's row: a seller in OR, ID or CA and one of its auctions of category 10.
struct LocalItemSuggestion {
  std::string name;
  std::string city;
  std::string state;
  int64_t id = 0;  // the auction
  bool operator==(const LocalItemSuggestion&) const = default;
};

namespace joins_detail {

/// What q3 keeps of a person: its id, whether its state is one of q3's,
/// and (only then) the fields of the row.
struct Q3Person {
  int64_t id = 0;
  bool in_states = false;
  std::string name;
  std::string city;
  std::string state;
};

/// What q3 keeps of an auction of category 10.
struct Q3Auction {
  int64_t id = 0;
  int64_t seller = 0;
};

inline bool IsQ3State(std::string_view s) { return s == "OR" || s == "ID" || s == "CA"; }

/// Input 1: auctions of category 10 by seller; input 2: every person by id.
class Q3Join final : public KeyedCoProcessFunction<int64_t, Q3Auction, Q3Person, LocalItemSuggestion> {
 public:
  void Open() override {
    person_ = &GetRuntimeContext().GetState(ValueStateDescriptor<Q3Person>("q3-person"));
    waiting_ = &GetRuntimeContext().GetListState(ListStateDescriptor<int64_t>("q3-waiting-auctions"));
  }
  void ProcessElement1(const Q3Auction& a, Context&, Collector<LocalItemSuggestion>& out) override {
    if (std::optional<Q3Person> p = person_->Get()) {
      if (p->in_states) out.Collect(LocalItemSuggestion{p->name, p->city, p->state, a.id});
      return;
    }
    waiting_->Add(a.id);
  }
  void ProcessElement2(const Q3Person& p, Context&, Collector<LocalItemSuggestion>& out) override {
    person_->Update(p);
    if (p.in_states) {
      for (int64_t id : waiting_->Get()) out.Collect(LocalItemSuggestion{p.name, p.city, p.state, id});
    }
    waiting_->Clear();
  }

 private:
  ValueState<Q3Person>* person_ = nullptr;
  ListState<int64_t>* waiting_ = nullptr;
};

}  // namespace joins_detail

/// q3: for every auction of category 10 whose seller is a person in OR, ID
/// or CA, the seller's name, city and state and the auction's id:
///   SELECT P.name, P.city, P.state, A.id FROM auction A JOIN person P
///   ON A.seller = P.id WHERE A.category = 10 AND P.state IN ('OR','ID','CA')
inline DataStream<LocalItemSuggestion> Query3(DataStream<Event> events) {
  using joins_detail::Q3Auction;
  using joins_detail::Q3Person;
  auto auctions = events.Filter([](const Event& e) { return e.type == Event::kAuction && e.auction.category == 10; })
                      .Map([](const Event& e) { return Q3Auction{e.auction.id, e.auction.seller}; })
                      .Name("q3: auctions of category 10");
  auto people = events.Filter([](const Event& e) { return e.type == Event::kPerson; })
                    .Map([](const Event& e) {
                      const Person& p = e.person;
                      if (!joins_detail::IsQ3State(p.state)) return Q3Person{p.id, false, {}, {}, {}};
                      return Q3Person{p.id, true, p.name, p.city, p.state};
                    })
                    .Name("q3: people");
  return auctions.Connect(people)
      .KeyBy([](const Q3Auction& a) { return a.seller; }, [](const Q3Person& p) { return p.id; })
      .Process(joins_detail::Q3Join())
      .Name("q3");
}

// ---- q8 ---------------------------------------------------------------------------

/// q8's row: a person who opened an auction in the 10 s window in which it
/// registered, and that window's start.
struct NewUser {
  int64_t id = 0;
  std::string name;
  Timestamp window_start = 0;
  bool operator==(const NewUser&) const = default;
};

namespace joins_detail {

struct Q8Person {
  int64_t id = 0;
  std::string name;
  Timestamp date_time = 0;
};

struct Q8Auction {
  int64_t seller = 0;
  Timestamp date_time = 0;
};

}  // namespace joins_detail

/// q8's window: 10 s of event time.
inline constexpr int64_t kQuery8WindowMillis = 10000;

/// q8: the people who registered and opened an auction (as seller) in the
/// same 10 s tumbling event-time window, once per person and window however
/// many auctions they opened in it:
///   SELECT P.id, P.name, P.starttime FROM
///     (SELECT id, name, TUMBLE_START(dateTime, 10 s) starttime FROM person
///      GROUP BY id, name, TUMBLE(dateTime, 10 s)) P
///   JOIN
///     (SELECT seller, TUMBLE_START(dateTime, 10 s) starttime FROM auction
///      GROUP BY seller, TUMBLE(dateTime, 10 s)) A
///   ON P.id = A.seller AND P.starttime = A.starttime
/// Flink groups each side by (id, window) and then joins the groups; here a
/// window co-group keyed by person id / seller sees both groups of a key and
/// window at once and emits each distinct (id, name) of the person side when
/// the auction side is not empty, which is the same. Both sides are
/// projected first, so the window buffers hold a few bytes per record.
/// Records behind the watermark are late and dropped, as in any event-time
/// window.
inline DataStream<NewUser> Query8(DataStream<Event> events) {
  using joins_detail::Q8Auction;
  using joins_detail::Q8Person;
  auto people = events.Filter([](const Event& e) { return e.type == Event::kPerson; })
                    .Map([](const Event& e) { return Q8Person{e.person.id, e.person.name, e.person.date_time}; })
                    .Name("q8: people");
  auto auctions = events.Filter([](const Event& e) { return e.type == Event::kAuction; })
                      .Map([](const Event& e) { return Q8Auction{e.auction.seller, e.auction.date_time}; })
                      .Name("q8: auctions");
  return people.CoGroup(auctions)
      .Where([](const Q8Person& p) { return p.id; })
      .EqualTo([](const Q8Auction& a) { return a.seller; })
      .Window(TumblingEventTimeWindows::Of(Duration(kQuery8WindowMillis)))
      .Apply<NewUser>([](const std::vector<Q8Person>& people, const std::vector<Q8Auction>& auctions,
                         Collector<NewUser>& out) {
        if (people.empty() || auctions.empty()) return;
        // All records of one call share the key and the window: the window
        // is the one of any of their timestamps.
        Timestamp start = TimeWindow::StartWithOffset(people.front().date_time, 0, kQuery8WindowMillis);
        for (size_t i = 0; i < people.size(); ++i) {
          bool seen = false;  // GROUP BY id, name: each name once
          for (size_t j = 0; j < i && !seen; ++j) seen = people[j].name == people[i].name;
          if (!seen) out.Collect(NewUser{people[i].id, people[i].name, start});
        }
      })
      .Name("q8");
}

// ---- q13 --------------------------------------------------------------------------

/// q13's row: a bid and the side input's value for its auction.
struct BidWithSideInput {
  int64_t auction = 0;
  int64_t bidder = 0;
  int64_t price = 0;
  Timestamp date_time = 0;
  std::string value;
  bool operator==(const BidWithSideInput&) const = default;
};

/// q13's side table: key -> value.
using SideInput = std::unordered_map<int64_t, std::string>;

/// q13's side table key of an auction.
inline constexpr int64_t kQuery13SideInputKeys = 10000;

/// Reads a side input file: one `key,value` line per entry, the key a
/// decimal integer (optionally signed), the value the rest of the line
/// after the first comma (it may be empty or hold commas; a '\r' before the
/// line end is dropped). A final newline is optional. Throws
/// std::runtime_error naming the file, and the line (1-based) for a line
/// that is not of that form or repeats a key.
inline SideInput LoadSideInput(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    throw std::runtime_error("side input file '" + path + "': cannot open (" + std::strerror(errno) + ")");
  }
  SideInput table;
  std::string line;
  int64_t number = 0;
  auto fail = [&](const std::string& why) {
    throw std::runtime_error("side input file '" + path + "' line " + std::to_string(number) + ": " + why);
  };
  while (std::getline(in, line)) {
    ++number;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t comma = line.find(',');
    if (comma == std::string::npos) fail("expected 'key,value', got '" + line + "'");
    std::string_view key_text(line.data(), comma);
    size_t i = !key_text.empty() && (key_text[0] == '-' || key_text[0] == '+') ? 1 : 0;
    if (i == key_text.size()) fail("the key is not an integer: '" + std::string(key_text) + "'");
    // Digits only, at most 18 of them: no overflow.
    if (key_text.size() - i > 18) fail("the key is out of range: '" + std::string(key_text) + "'");
    int64_t key = 0;
    for (; i < key_text.size(); ++i) {
      char c = key_text[i];
      if (c < '0' || c > '9') fail("the key is not an integer: '" + std::string(key_text) + "'");
      key = key * 10 + (c - '0');
    }
    if (key_text[0] == '-') key = -key;
    if (!table.emplace(key, line.substr(comma + 1)).second) fail("key " + std::to_string(key) + " appears again");
  }
  if (in.bad()) fail("read error");
  return table;
}

namespace joins_detail {

/// Loads the side input in Open() and looks every bid up in it.
class Q13Lookup final : public RichFlatMapFunction<Event, BidWithSideInput> {
 public:
  explicit Q13Lookup(std::string path) : path_(std::move(path)) {}
  void Open() override { table_ = std::make_shared<const SideInput>(LoadSideInput(path_)); }
  void FlatMap(const Event& e, Collector<BidWithSideInput>& out) override {
    if (e.type != Event::kBid) return;
    const Bid& b = e.bid;
    int64_t key = b.auction % kQuery13SideInputKeys;
    auto it = table_->find(key);
    if (it == table_->end()) return;  // an inner join
    out.Collect(BidWithSideInput{b.auction, b.bidder, b.price, b.date_time, it->second});
  }

 private:
  std::string path_;
  std::shared_ptr<const SideInput> table_;
};

}  // namespace joins_detail

/// q13: every bid with the value that the side input file at
/// `side_input_path` holds for key `auction % 10000` (bids whose key the
/// file lacks are dropped, as in Flink's lookup join):
///   SELECT B.auction, B.bidder, B.price, B.dateTime, S.value FROM bid B
///   JOIN side_input FOR SYSTEM_TIME AS OF B.p_time AS S
///   ON mod(B.auction, 10000) = S.key
/// The file (see LoadSideInput) is bounded and does not change, so it is
/// read in the Open() of a rich flat-map function: each parallel subtask
/// holds the whole table before its first bid, and the lookup is a local,
/// stateless hash-map probe that needs no shuffle, no state and no
/// checkpointing (a restart reads the file again). The alternative, a
/// bounded stream of the file's lines broadcast to the bids' operator,
/// gives no order between the two inputs: bids arriving before the table is
/// complete would have to wait in state until the side stream ends, which
/// costs state and latency for nothing here. A missing or malformed file
/// fails the job when it starts, with an error naming the file and line.
inline DataStream<BidWithSideInput> Query13(DataStream<Event> events, const std::string& side_input_path) {
  return events.FlatMap(joins_detail::Q13Lookup(side_input_path)).Name("q13");
}

// ---- q20 --------------------------------------------------------------------------

/// q20's row: a bid on an auction of category 10 with the auction's fields.
struct BidWithAuction {
  int64_t auction = 0;
  int64_t bidder = 0;
  int64_t price = 0;
  std::string channel;
  std::string url;
  Timestamp bid_date_time = 0;
  std::string bid_extra;
  std::string item_name;
  std::string description;
  int64_t initial_bid = 0;
  int64_t reserve = 0;
  Timestamp auction_date_time = 0;
  Timestamp expires = 0;
  int64_t seller = 0;
  int64_t category = 0;
  std::string auction_extra;
  bool operator==(const BidWithAuction&) const = default;
};

/// q20's category.
inline constexpr int64_t kQuery20Category = 10;

namespace joins_detail {

inline BidWithAuction Expand(const Bid& b, const Auction& a) {
  return BidWithAuction{b.auction, b.bidder, b.price, b.channel, b.url, b.date_time, b.extra, a.item_name,
                        a.description, a.initial_bid, a.reserve, a.date_time, a.expires, a.seller, a.category,
                        a.extra};
}

/// Input 1: bids by auction; input 2: every auction by id, its fields
/// cleared unless of category 10.
class Q20Join final : public KeyedCoProcessFunction<int64_t, Bid, Auction, BidWithAuction> {
 public:
  void Open() override {
    seen_ = &GetRuntimeContext().GetState(ValueStateDescriptor<uint8_t>("q20-auction-seen"));
    auction_ = &GetRuntimeContext().GetState(ValueStateDescriptor<Auction>("q20-auction"));
    waiting_ = &GetRuntimeContext().GetListState(ListStateDescriptor<Bid>("q20-waiting-bids"));
  }
  void ProcessElement1(const Bid& b, Context&, Collector<BidWithAuction>& out) override {
    switch (seen_->Get().value_or(kUnknown)) {
      case kOtherCategory:
        return;
      case kJoins:
        if (std::optional<Auction> a = auction_->Get()) out.Collect(Expand(b, *a));
        return;
      default:
        waiting_->Add(b);
    }
  }
  void ProcessElement2(const Auction& a, Context&, Collector<BidWithAuction>& out) override {
    if (a.category == kQuery20Category) {
      seen_->Update(kJoins);
      auction_->Update(a);
      for (const Bid& b : waiting_->Get()) out.Collect(Expand(b, a));
    } else {
      seen_->Update(kOtherCategory);
    }
    waiting_->Clear();
  }

 private:
  static constexpr uint8_t kUnknown = 0;
  static constexpr uint8_t kOtherCategory = 1;
  static constexpr uint8_t kJoins = 2;
  ValueState<uint8_t>* seen_ = nullptr;  // kOtherCategory or kJoins once the auction arrived
  ValueState<Auction>* auction_ = nullptr;  // set for category 10
  ListState<Bid>* waiting_ = nullptr;  // bids that arrived before their auction
};

}  // namespace joins_detail

/// q20: every bid on an auction of category 10, with the auction's fields:
///   SELECT B.*, A.* FROM bid B JOIN auction A ON B.auction = A.id
///   WHERE A.category = 10
/// Bids may arrive before their auction (the generator lets bids name
/// auctions a few ids ahead, and the join's two inputs have no order between
/// them, even from one source subtask, since each travels its own channel):
/// they wait, per auction id, until it arrives. Once it has arrived
/// (ids are unique) later bids join directly, or are dropped at once when
/// the auction is of another category; what is kept per auction is then a
/// byte and, for category 10, the auction. Bids of auctions that never
/// arrive wait for ever, as in Flink's regular join without state TTL.
inline DataStream<BidWithAuction> Query20(DataStream<Event> events) {
  auto auctions = events.Filter([](const Event& e) { return e.type == Event::kAuction; })
                      .Map([](const Event& e) {
                        if (e.auction.category == kQuery20Category) return e.auction;
                        Auction key_only;  // the category says all the join needs
                        key_only.id = e.auction.id;
                        key_only.category = e.auction.category;
                        return key_only;
                      })
                      .Name("q20: auctions");
  return Bids(events)
      .Connect(auctions)
      .KeyBy([](const Bid& b) { return b.auction; }, [](const Auction& a) { return a.id; })
      .Process(joins_detail::Q20Join())
      .Name("q20");
}

}  // namespace freshet::nexmark

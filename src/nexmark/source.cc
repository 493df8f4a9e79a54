#include "freshet/nexmark_source.h"

#include <algorithm>
#include <cstring>
#include <string_view>
#include <vector>

namespace freshet::nexmark {
namespace {

/// Empties the member of `e` of kind `type`, keeping its strings' buffers.
void ClearKind(uint8_t type, Event* e) {
  if (type == Event::kPerson) {
    Person& p = e->person;
    p.id = p.date_time = 0;
    for (std::string* s : {&p.name, &p.email_address, &p.credit_card, &p.city, &p.state, &p.extra}) s->clear();
  } else if (type == Event::kAuction) {
    Auction& a = e->auction;
    a.id = a.initial_bid = a.reserve = a.date_time = a.expires = a.seller = a.category = 0;
    for (std::string* s : {&a.item_name, &a.description, &a.extra}) s->clear();
  } else {
    Bid& b = e->bid;
    b.auction = b.bidder = b.price = b.date_time = 0;
    for (std::string* s : {&b.channel, &b.url, &b.extra}) s->clear();
  }
}

/// A strided sequence of event numbers: next, next + stride, ... < end.
struct Sequence {
  int64_t next;
  int64_t end;
  int64_t stride;
};

class NexmarkReader final : public SourceReader<Event> {
 public:
  NexmarkReader(const Generator& generator, int subtask, int parallelism) : generator_(generator) {
    int64_t events = generator.Config().events;
    sequences_.push_back({subtask, events > 0 ? events : INT64_MAX, parallelism});
    if (sequences_.back().next >= sequences_.back().end) sequences_.clear();
  }

  Result<InputStatus> PollNext(ReaderOutput<Event>& out) override {
    if (sequences_.empty()) return InputStatus::kEndOfInput;
    // Restored readers may hold several sequences: take from the one
    // furthest behind, so that event time advances evenly.
    auto behind = std::min_element(sequences_.begin(), sequences_.end(),
                                   [](const Sequence& a, const Sequence& b) { return a.next < b.next; });
    Sequence& s = *behind;
    for (int i = 0; i < kBatch && s.next < s.end; ++i) {
      uint8_t previous = event_.type;
      generator_.Fill(s.next, &event_);
      // Only the member of the event's kind holds values (as Generator::At).
      if (previous != event_.type) ClearKind(previous, &event_);
      out.Collect(event_, event_.EventTime());
      s.next = s.end - s.next > s.stride ? s.next + s.stride : s.end;
    }
    if (s.next >= s.end) sequences_.erase(behind);
    return sequences_.empty() ? InputStatus::kEndOfInput : InputStatus::kMoreAvailable;
  }

  Result<std::vector<std::string>> SnapshotState(CheckpointId) override {
    std::vector<std::string> splits;
    for (const Sequence& s : sequences_) {
      std::string& split = splits.emplace_back(kMagic);
      split.append(reinterpret_cast<const char*>(&s), sizeof(Sequence));
    }
    return splits;
  }

  Status RestoreState(std::vector<std::string> splits) override {
    sequences_.clear();
    for (const std::string& split : splits) {
      Sequence s;
      if (split.size() != kMagic.size() + sizeof(Sequence) || split.compare(0, kMagic.size(), kMagic) != 0) {
        return Status::Corruption("nexmark source: a checkpointed position (" + std::to_string(split.size()) +
                                  " bytes) is not one of this source's; was the uid given to another source?");
      }
      std::memcpy(&s, split.data() + kMagic.size(), sizeof(s));
      if (s.stride <= 0 || s.next < 0) {
        return Status::Corruption("nexmark source: a checkpointed position is invalid (next " +
                                  std::to_string(s.next) + ", stride " + std::to_string(s.stride) + ")");
      }
      if (s.next < s.end) sequences_.push_back(s);
    }
    return Status::Ok();
  }

 private:
  static constexpr int kBatch = 1024;
  /// Leads every checkpointed position (format version 1).
  static constexpr std::string_view kMagic = "nexmark1";
  Generator generator_;
  std::vector<Sequence> sequences_;
  Event event_;  // reused: Fill keeps the strings' buffers
};

}  // namespace

std::unique_ptr<SourceReader<Event>> NexmarkSource::CreateReader(SourceReaderContext& context) const {
  return std::make_unique<NexmarkReader>(generator_, context.SubtaskIndex(), context.Parallelism());
}

}  // namespace freshet::nexmark

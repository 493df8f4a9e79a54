#include "runtime/io/input_gate.h"

namespace freshet::internal {

InputGate::~InputGate() {
  if (!started_) return;
  for (size_t i = 0; i < channels_.size(); ++i) {
    channels_[i]->partition->SetListener(channels_[i]->subpartition, nullptr, 0);
  }
}

int InputGate::AddChannel(std::shared_ptr<ResultPartition> partition, int subpartition, int input_index) {
  auto c = std::make_unique<InputChannel>();
  c->partition = std::move(partition);
  c->subpartition = subpartition;
  c->logical_subpartition = subpartition;
  c->input_index = input_index;
  channels_.push_back(std::move(c));
  return static_cast<int>(channels_.size()) - 1;
}

void InputGate::Start() {
  started_ = true;
  for (size_t i = 0; i < channels_.size(); ++i) {
    channels_[i]->partition->SetListener(channels_[i]->subpartition, this, static_cast<int>(i));
  }
}

void InputGate::NotifyDataAvailable(int channel) {
  {
    std::lock_guard lock(mu_);
    available_.push_back(channel);
  }
  mailbox_->SignalInput();
}

bool InputGate::PollNext(int& channel, Buffer& buffer) {
  while (true) {
    int c;
    {
      std::lock_guard lock(mu_);
      if (available_.empty()) return false;
      c = available_.front();
      available_.pop_front();
    }
    InputChannel& ch = *channels_[static_cast<size_t>(c)];
    if (ch.blocked) {
      ch.parked = true;  // re-queued by UnblockAll
      continue;
    }
    bool more = false;
    if (!ch.partition->Poll(ch.subpartition, buffer, more)) continue;  // stale entry
    if (more) {
      std::lock_guard lock(mu_);
      available_.push_back(c);
    }
    channel = c;
    return true;
  }
}

void InputGate::Block(int channel) { channels_[static_cast<size_t>(channel)]->blocked = true; }

void InputGate::UnblockAll() {
  bool any = false;
  {
    std::lock_guard lock(mu_);
    for (size_t i = 0; i < channels_.size(); ++i) {
      InputChannel& ch = *channels_[i];
      ch.blocked = false;
      if (ch.parked) {
        ch.parked = false;
        available_.push_back(static_cast<int>(i));
        any = true;
      }
    }
  }
  if (any) mailbox_->SignalInput();
}

void InputGate::MarkFinished(int channel) {
  InputChannel& ch = *channels_[static_cast<size_t>(channel)];
  if (!ch.finished) {
    ch.finished = true;
    ++finished_channels_;
  }
}

bool InputGate::InputFinished(int input_index) const {
  for (const auto& c : channels_) {
    if (c->input_index == input_index && !c->finished) return false;
  }
  return true;
}

}  // namespace freshet::internal

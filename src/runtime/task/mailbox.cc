#include "runtime/task/mailbox.h"

#include <chrono>

namespace freshet::internal {

void Mailbox::Put(std::function<void()> mail) {
  {
    std::lock_guard lock(mu_);
    mails_.push_back(std::move(mail));
    has_mail_.store(true, std::memory_order_release);
  }
  cv_.notify_one();
}

void Mailbox::SignalInput() {
  {
    std::lock_guard lock(mu_);
    input_signal_ = true;
  }
  cv_.notify_one();
}

void Mailbox::Cancel() {
  {
    std::lock_guard lock(mu_);
    cancelled_.store(true, std::memory_order_release);
  }
  cv_.notify_all();
}

void Mailbox::RunMails() {
  std::deque<std::function<void()>> batch;
  {
    std::lock_guard lock(mu_);
    batch.swap(mails_);
    has_mail_.store(false, std::memory_order_release);
  }
  for (auto& mail : batch) mail();
}

void Mailbox::ResetInputSignal() {
  std::lock_guard lock(mu_);
  input_signal_ = false;
}

void Mailbox::Wait(int64_t timeout_ns) {
  std::unique_lock lock(mu_);
  auto ready = [this] { return input_signal_ || !mails_.empty() || cancelled_.load(std::memory_order_relaxed); };
  if (timeout_ns < 0) {
    cv_.wait(lock, ready);
  } else {
    cv_.wait_for(lock, std::chrono::nanoseconds(timeout_ns), ready);
  }
  input_signal_ = false;
}

}  // namespace freshet::internal

#pragma once
// The task thread's mailbox: control actions ("mails") from other threads,
// the input-available signal from the network stack, and cancellation.
// Only the task thread runs mails and waits; any thread may post.

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>

namespace freshet::internal {

class Mailbox {
 public:
  /// Any thread: queue an action for the task thread.
  void Put(std::function<void()> mail);
  /// Any thread: some input may have become available.
  void SignalInput();
  /// Any thread: ask the task to stop; wakes any wait.
  void Cancel();

  bool IsCancelled() const { return cancelled_.load(std::memory_order_acquire); }
  /// Cheap check for the hot loop.
  bool HasMail() const { return has_mail_.load(std::memory_order_acquire); }

  /// Task thread: runs the queued mails.
  void RunMails();
  /// Task thread: forget earlier input signals before re-checking inputs.
  void ResetInputSignal();
  /// Task thread: waits until a mail, an input signal or cancellation
  /// arrives, or `timeout_ns` (< 0: no limit) passes.
  void Wait(int64_t timeout_ns);

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> mails_;
  bool input_signal_ = false;
  std::atomic<bool> has_mail_{false};
  std::atomic<bool> cancelled_{false};
};

}  // namespace freshet::internal

#pragma once
// What the network tests share: waiting for a condition, and a simulated
// TaskManager process (its partitions and its network stack on loopback).

#include <gtest/gtest.h>

#include <chrono>
#include <thread>

#include "runtime/net/network_environment.h"
#include "runtime/task/stream_task.h"

namespace freshet::internal::net_test {

/// Polls `done` every few milliseconds until it holds or `timeout` passes.
template <class F>
bool PollUntil(F done, std::chrono::milliseconds timeout = std::chrono::milliseconds(30000)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!done()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

/// One simulated TaskManager process: its partitions and its network.
struct Process {
  explicit Process(NetworkOptions options = {}) : network(shuffle, std::move(options)) {
    Status s = network.Start();
    EXPECT_TRUE(s.IsOk()) << s.ToString();
    shuffle.SetNetwork(&network);
  }
  ShuffleEnvironment shuffle;
  NetworkEnvironment network;
};

}  // namespace freshet::internal::net_test

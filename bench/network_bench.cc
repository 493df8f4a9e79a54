// Throughput of the TCP data plane: one producer partition in one
// NetworkEnvironment, its subpartitions read through mirrors in another
// over loopback, compared with consumers reading the same kind of
// partition in-process. Also counts heap allocations per buffer while data
// flows (the data path should make none).
//
//   freshet_network_bench [--buffers N] [--segment BYTES] [--runs R]
//                         [--channels 1,4] [--io-threads T] [--credits C]
//                         [--floating F]

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <new>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "runtime/io/result_partition.h"
#include "runtime/net/network_environment.h"
#include "runtime/task/stream_task.h"

namespace {
std::atomic<int64_t> g_allocations{0};
}  // namespace

// Counting replacements of the global allocation functions. Not inlined,
// so that the compiler does not pair their malloc and free with new and
// delete expressions.
[[gnu::noinline]] void* operator new(size_t n) {
  g_allocations.fetch_add(1, std::memory_order_relaxed);
  if (void* p = std::malloc(n == 0 ? 1 : n)) return p;
  throw std::bad_alloc();
}
[[gnu::noinline]] void operator delete(void* p) noexcept { std::free(p); }
[[gnu::noinline]] void operator delete(void* p, size_t) noexcept { std::free(p); }

namespace freshet::internal {
namespace {

struct Settings {
  int64_t buffers = 40000;  // per run, over all channels
  size_t segment = 32 * 1024;
  int runs = 5;
  std::vector<int> channels = {1, 4};
  int io_threads = 1;
  int credits = 0;          // per remote channel; 0: RemoteChannelCredits of the pool settings
  int floating = 8;         // floating buffers of the producer's pool (and in the credit share)
};

/// Waits for a partition's subpartition 0 (or `sub`) through its listener.
class Reader final : public AvailabilityListener {
 public:
  Reader(ResultPartition& p, int sub) : p_(p), sub_(sub) { p_.SetListener(sub_, this, 0); }
  ~Reader() override { p_.SetListener(sub_, nullptr, 0); }
  void NotifyDataAvailable(int) override {
    {
      std::lock_guard lock(mu_);
      signalled_ = true;
    }
    cv_.notify_one();
  }
  /// Reads to the end of partition; returns data buffers seen, or -1 on a
  /// sequence error or a partition error.
  int64_t Drain() {
    int64_t expected = 0;
    while (true) {
      {
        std::lock_guard lock(mu_);
        signalled_ = false;
      }
      Buffer b;
      bool more = false;
      while (p_.Poll(sub_, b, more)) {
        if (b.Kind() == BufferKind::kEvent) {
          return b.Data()[0] == static_cast<uint8_t>(EventKind::kEndOfPartition) ? expected : -1;
        }
        int64_t seq;
        std::memcpy(&seq, b.Data(), sizeof(seq));
        if (seq != expected) return -1;
        ++expected;
        b.Recycle();
      }
      std::unique_lock lock(mu_);
      cv_.wait(lock, [this] { return signalled_; });
    }
  }

 private:
  ResultPartition& p_;
  int sub_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool signalled_ = false;
};

void Produce(ResultPartition& p, int channels, int64_t buffers, size_t segment) {
  std::vector<int64_t> seq(static_cast<size_t>(channels), 0);
  for (int64_t i = 0; i < buffers; ++i) {
    int c = static_cast<int>(i % channels);
    uint8_t* s = p.Pool().RequestBlocking();
    std::memcpy(s, &seq[static_cast<size_t>(c)], sizeof(int64_t));
    ++seq[static_cast<size_t>(c)];
    p.Add(c, Buffer(s, segment, BufferKind::kData, &p.Pool()));
  }
  for (int c = 0; c < channels; ++c) {
    auto* e = new uint8_t[1]{static_cast<uint8_t>(EventKind::kEndOfPartition)};
    p.Add(c, Buffer(e, 1, BufferKind::kEvent, nullptr));
  }
}

struct RunResult {
  double seconds = 0;
  double allocations_per_buffer = 0;
  bool ok = true;
};

/// Moves `buffers` buffers from the producer to the consumers' partitions
/// (one per channel, subpartition `subs[c]`).
RunResult Transfer(ResultPartition& producer, const std::vector<ResultPartition*>& consumers, const std::vector<int>& subs,
                   int64_t buffers, size_t segment) {
  int channels = static_cast<int>(consumers.size());
  std::vector<int64_t> got(consumers.size(), 0);
  std::vector<std::unique_ptr<Reader>> readers;
  for (int c = 0; c < channels; ++c) readers.push_back(std::make_unique<Reader>(*consumers[static_cast<size_t>(c)], subs[static_cast<size_t>(c)]));
  int64_t allocations_before = g_allocations.load();
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> threads;
  for (int c = 0; c < channels; ++c) {
    threads.emplace_back([&, c] { got[static_cast<size_t>(c)] = readers[static_cast<size_t>(c)]->Drain(); });
  }
  Produce(producer, channels, buffers, segment);
  for (auto& t : threads) t.join();
  RunResult r;
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  // Events (one heap buffer each, like the task layer's) and the readers'
  // threads are the only expected allocations.
  r.allocations_per_buffer = static_cast<double>(g_allocations.load() - allocations_before) / static_cast<double>(buffers);
  int64_t total = 0;
  for (int64_t g : got) {
    if (g < 0) r.ok = false;
    total += g;
  }
  if (total != buffers) r.ok = false;
  return r;
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

ExecutionOptions PoolOptions(const Settings& s) {
  ExecutionOptions o;
  o.segment_size = static_cast<int>(s.segment);
  o.floating_buffers = s.floating;
  return o;  // 2 buffers per channel, as by default
}

int Main(const Settings& s) {
  std::string channel_list;
  for (int c : s.channels) {
    if (!channel_list.empty()) channel_list += ',';
    channel_list += std::to_string(c);
  }
  std::printf("freshet_network_bench --buffers %lld --segment %zu --runs %d --channels %s --io-threads %d "
              "--credits %d --floating %d\n",
              static_cast<long long>(s.buffers), s.segment, s.runs, channel_list.c_str(), s.io_threads, s.credits,
              s.floating);
  std::printf("loopback, one NetworkEnvironment per side; producer pool = 2 per channel + %d floating; "
              "credits per remote channel = %s\n\n",
              s.floating, s.credits > 0 ? "--credits" : "RemoteChannelCredits(2 per channel, floating)");
  std::printf("%-8s %-7s %9s %13s %10s %13s %7s %14s %16s\n", "channels", "credits", "net GB/s", "net buffers/s",
              "local GB/s", "local bufs/s", "ratio", "net allocs/buf", "local allocs/buf");
  bool all_ok = true;
  for (int channels : s.channels) {
    ExecutionOptions options = PoolOptions(s);
    int credits = s.credits > 0 ? s.credits : RemoteChannelCredits(options, channels);
    NetworkOptions net_options;
    net_options.io_threads = s.io_threads;
    ShuffleEnvironment producer_shuffle;
    ShuffleEnvironment consumer_shuffle;
    NetworkEnvironment producer_net(producer_shuffle, net_options);
    NetworkEnvironment consumer_net(consumer_shuffle, net_options);
    if (Status st = producer_net.Start(); !st.IsOk()) return std::fprintf(stderr, "%s\n", st.ToString().c_str()), 1;
    if (Status st = consumer_net.Start(); !st.IsOk()) return std::fprintf(stderr, "%s\n", st.ToString().c_str()), 1;
    std::vector<double> net_seconds, local_seconds, allocs, local_allocs;
    for (int run = 0; run < s.runs; ++run) {
      // Network.
      PartitionId id{"bench-" + std::to_string(channels) + "-" + std::to_string(run), 0, 0};
      auto producer = producer_shuffle.CreatePartition(id, channels, options);
      std::vector<std::shared_ptr<ResultPartition>> mirrors;
      std::vector<ResultPartition*> consumers;
      std::vector<int> subs;
      for (int c = 0; c < channels; ++c) {
        auto m = consumer_net.RequestSubpartition(producer_net.Address(), id, c, credits, s.segment);
        if (!m.IsOk()) return std::fprintf(stderr, "%s\n", m.GetStatus().ToString().c_str()), 1;
        mirrors.push_back(std::move(m).Value());
        consumers.push_back(mirrors.back().get());
        subs.push_back(0);
      }
      RunResult net = Transfer(*producer, consumers, subs, s.buffers, s.segment);
      all_ok &= net.ok;
      net_seconds.push_back(net.seconds);
      allocs.push_back(net.allocations_per_buffer);
      producer_shuffle.ReleaseJob(id.job_id);
      consumer_net.ReleaseJob(id.job_id);
      // In-process: the consumers read the producer's partition directly.
      auto local = std::make_shared<ResultPartition>(id, channels, s.segment,
                                                     channels * options.buffers_per_channel + options.floating_buffers);
      std::vector<ResultPartition*> local_consumers(static_cast<size_t>(channels), local.get());
      std::vector<int> local_subs;
      for (int c = 0; c < channels; ++c) local_subs.push_back(c);
      RunResult in_process = Transfer(*local, local_consumers, local_subs, s.buffers, s.segment);
      all_ok &= in_process.ok;
      local_seconds.push_back(in_process.seconds);
      local_allocs.push_back(in_process.allocations_per_buffer);
    }
    double bytes = static_cast<double>(s.buffers) * static_cast<double>(s.segment);
    double net_s = Median(net_seconds);
    double local_s = Median(local_seconds);
    std::printf("%-8d %-7d %9.2f %13.0f %10.2f %13.0f %7.3f %14.3f %16.3f\n", channels, credits, bytes / net_s / 1e9,
                static_cast<double>(s.buffers) / net_s, bytes / local_s / 1e9, static_cast<double>(s.buffers) / local_s,
                local_s / net_s, Median(allocs), Median(local_allocs));
  }
  std::printf("\nratio = network throughput / in-process throughput (median of %d runs each). The in-process\n"
              "consumers only pass segment pointers; the network copies every byte through the kernel twice.\n"
              "allocs/buf: heap allocations per buffer while data flows, all threads (std::deque blocks of\n"
              "the partition queues and pool free lists account for the in-process figure)\n", s.runs);
  if (!all_ok) {
    std::fprintf(stderr, "a run lost, duplicated or reordered buffers\n");
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace freshet::internal

int main(int argc, char** argv) {
  freshet::internal::Settings s;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto next = [&]() -> std::string {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "%s needs a value\n", a.c_str());
        std::exit(2);
      }
      return argv[++i];
    };
    if (a == "--buffers") {
      s.buffers = std::stoll(next());
    } else if (a == "--segment") {
      s.segment = std::stoul(next());
    } else if (a == "--runs") {
      s.runs = std::stoi(next());
    } else if (a == "--credits") {
      s.credits = std::stoi(next());
    } else if (a == "--floating") {
      s.floating = std::stoi(next());
    } else if (a == "--io-threads") {
      s.io_threads = std::stoi(next());
    } else if (a == "--channels") {
      s.channels.clear();
      std::stringstream list(next());
      std::string item;
      while (std::getline(list, item, ',')) s.channels.push_back(std::stoi(item));
    } else {
      std::fprintf(stderr,
                   "usage: %s [--buffers N] [--segment BYTES] [--runs R] [--channels 1,4] [--io-threads T] "
                   "[--credits C] [--floating F]\n",
                   argv[0]);
      return 2;
    }
  }
  if (s.buffers < 1 || s.runs < 1 || s.channels.empty() || s.segment < 64 || s.io_threads < 1 || s.credits < 0 ||
      s.floating < 0) {
    std::fprintf(stderr, "bad settings\n");
    return 2;
  }
  return freshet::internal::Main(s);
}

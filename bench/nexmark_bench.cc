// Nexmark benchmarks.
//
//   freshet_nexmark_bench --generator [--events N] [--runs R]
//   freshet_nexmark_bench --query q5[,q7,...|all] [--events N] [--parallelism P]
//       [--backend heap|rocksdb] [--incremental] [--checkpoint-interval MS]
//       [--checkpoint-dir DIR] [--rate EVENTS_PER_S] [--runs R] [--csv FILE]
//
// --generator (default 10 M events, 5 runs): one thread fills one reused
// Event per event number 0..N-1 (Generator::Fill, the way the source does)
// and adds up the records' sizes so that nothing is optimized away;
// events per second and bytes of records per second, median of R runs.
//
// --query (default 10 M events, parallelism 1, heap, exactly-once
// checkpoints every 10 s, 3 runs): runs the query as a job on the embedded
// mini-cluster, the generator inside the job as the Nexmark source, the
// results into a sink that drops them. Reports what the reference Nexmark
// reports: events/s (events / wall time) and events/s per core
// (events / CPU time of the whole process, which is cores used x wall
// time), and also peak resident memory (VmHWM, reset before each run) and
// the checkpoints' sizes. Medians over the runs; `--csv` appends one line
// per query and configuration for scripts/nexmark_report.py.
#include <freshet/freshet.h>
#include <freshet/nexmark.h>
#include <freshet/nexmark_aggregates.h>
#include <freshet/nexmark_auctions.h>
#include <freshet/nexmark_joins.h>
#include <freshet/nexmark_queries.h>
#include <freshet/nexmark_windows.h>
#include <freshet/nexmark_source.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <sstream>
#include <string>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

int RunGenerator(int64_t events, int runs) {
  freshet::nexmark::Generator gen{freshet::nexmark::GeneratorConfig{}};
  std::vector<double> per_s, bytes_per_s;
  for (int run = 1; run <= runs; ++run) {
    freshet::nexmark::Event e;
    uint64_t bytes = 0;
    auto start = Clock::now();
    for (int64_t n = 0; n < events; ++n) {
      gen.Fill(n, &e);
      switch (e.type) {
        case freshet::nexmark::Event::kPerson:
          bytes += 8 + e.person.name.size() + e.person.email_address.size() + e.person.credit_card.size() +
                   e.person.city.size() + e.person.state.size() + e.person.extra.size();
          break;
        case freshet::nexmark::Event::kAuction:
          bytes += 48 + e.auction.item_name.size() + e.auction.description.size() + e.auction.extra.size();
          break;
        default:
          bytes += 32 + e.bid.channel.size() + e.bid.url.size() + e.bid.extra.size();
      }
    }
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    per_s.push_back(static_cast<double>(events) / seconds);
    bytes_per_s.push_back(static_cast<double>(bytes) / seconds);
    std::printf("run %d: %lld events in %.2f s: %.2f M events/s, %.0f MB/s of records\n", run,
                static_cast<long long>(events), seconds, per_s.back() / 1e6, bytes_per_s.back() / 1e6);
    std::fflush(stdout);
  }
  std::printf("median over %d runs: %.2f M events/s per core, %.0f MB/s of records\n", runs, Median(per_s) / 1e6,
              Median(bytes_per_s) / 1e6);
  return 0;
}


/// Adds a query over `events` to the job, its results into a sink that
/// drops them. `work_dir` holds the query's files (q13's side input).
using QueryBuilder = std::function<void(freshet::DataStream<freshet::nexmark::Event>, const std::string& work_dir)>;

template <class F>
QueryBuilder Discarding(F query) {
  return [query](freshet::DataStream<freshet::nexmark::Event> events, const std::string&) {
    using Row = typename decltype(query(events))::ValueType;
    query(events).SinkTo([](const Row&) {}, "discard");
  };
}

/// q13's side input: a value for every key 0..9999.
std::string WriteSideInput(const std::string& work_dir) {
  std::filesystem::create_directories(work_dir);
  std::string path = work_dir + "/side-input.csv";
  std::ofstream out(path);
  for (int64_t key = 0; key < freshet::nexmark::kQuery13SideInputKeys; ++key) out << key << ",value-" << key << '\n';
  return path;
}

const std::map<std::string, QueryBuilder>& Queries() {
  namespace nx = freshet::nexmark;
  static const std::map<std::string, QueryBuilder> queries = {
      {"q0", Discarding(nx::Query0)},   {"q1", Discarding(nx::Query1)},   {"q2", Discarding(nx::Query2)},
      {"q3", Discarding(nx::Query3)},   {"q8", Discarding(nx::Query8)},   {"q20", Discarding(nx::Query20)},
      {"q14", Discarding(nx::Query14)}, {"q21", Discarding(nx::Query21)}, {"q22", Discarding(nx::Query22)},
      {"q4", Discarding(nx::Query4)},   {"q6", Discarding(nx::Query6)},   {"q9", Discarding(nx::Query9)},
      {"q15", Discarding(nx::Query15)}, {"q16", Discarding(nx::Query16)}, {"q17", Discarding(nx::Query17)},
      {"q18", Discarding(nx::Query18)}, {"q19", Discarding(nx::Query19)},
      {"q5", Discarding(nx::Query5)},   {"q7", Discarding(nx::Query7)},   {"q11", Discarding(nx::Query11)},
      {"q12", Discarding(nx::Query12)},
      {"q10",
       [](freshet::DataStream<nx::Event> events, const std::string& work_dir) {
         nx::SinkQuery10(nx::Query10(events), work_dir + "/q10");
       }},
      {"q13",
       [](freshet::DataStream<nx::Event> events, const std::string& work_dir) {
         nx::Query13(events, WriteSideInput(work_dir)).SinkTo([](const nx::BidWithSideInput&) {}, "discard");
       }},
  };
  return queries;
}

struct QueryOptions {
  int64_t events = 10'000'000;
  int parallelism = 1;
  bool rocksdb = false;
  bool incremental = false;
  int64_t checkpoint_interval_ms = 10'000;
  std::string checkpoint_dir;
  double rate = 10'000;
  int runs = 3;
  std::string csv;
};

double CpuSeconds() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  auto seconds = [](const timeval& t) { return static_cast<double>(t.tv_sec) + static_cast<double>(t.tv_usec) / 1e6; };
  return seconds(usage.ru_utime) + seconds(usage.ru_stime);
}

/// Resets the process's peak resident size (Linux: clear_refs 5).
void ResetPeakMemory() {
  std::ofstream("/proc/self/clear_refs") << "5";
}

/// VmHWM of the process, bytes.
int64_t PeakMemory() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) return std::atoll(line.c_str() + 6) * 1024;
  }
  return 0;
}

struct RunFigures {
  double wall = 0, cpu = 0;
  int64_t peak_memory = 0;
  int64_t checkpoints = 0;
  int64_t checkpoint_size_max = 0, checkpoint_size_last = 0;
};

int RunQueries(const std::vector<std::string>& names, const QueryOptions& options) {
  std::string backend = options.rocksdb ? (options.incremental ? "rocksdb-incremental" : "rocksdb") : "heap";
  std::printf("events %lld, parallelism %d, backend %s, checkpoints every %lld ms, %d runs\n",
              static_cast<long long>(options.events), options.parallelism, backend.c_str(),
              static_cast<long long>(options.checkpoint_interval_ms), options.runs);
  std::string root = options.checkpoint_dir.empty()
                         ? std::filesystem::temp_directory_path().string() + "/freshet-nexmark-" + std::to_string(getpid())
                         : options.checkpoint_dir;
  for (const std::string& name : names) {
    std::vector<RunFigures> runs;
    for (int run = 1; run <= options.runs; ++run) {
      auto env = freshet::StreamExecutionEnvironment::Create();
      env->SetParallelism(options.parallelism);
      if (options.checkpoint_interval_ms > 0) {
        env->EnableCheckpointing(freshet::Duration(options.checkpoint_interval_ms));
        env->GetCheckpointConfig().directory = root + "/checkpoints";
      }
      freshet::StateBackendOptions state;
      state.type = options.rocksdb ? freshet::StateBackendOptions::Type::kRocksDB
                                   : freshet::StateBackendOptions::Type::kHeap;
      state.incremental = options.incremental;
      state.rocksdb_local_dir = root + "/rocksdb";
      env->SetStateBackend(state);
      freshet::nexmark::GeneratorConfig config;
      config.events = options.events;
      config.first_event_rate = options.rate;
      Queries().at(name)(freshet::nexmark::Events(*env, config), root);

      ResetPeakMemory();
      double cpu_start = CpuSeconds();
      auto start = Clock::now();
      freshet::Result<freshet::JobExecutionResult> result = env->Execute("nexmark " + name);
      RunFigures f;
      f.wall = std::chrono::duration<double>(Clock::now() - start).count();
      f.cpu = CpuSeconds() - cpu_start;
      f.peak_memory = PeakMemory();
      if (!result.IsOk()) {
        std::fprintf(stderr, "%s failed: %s\n", name.c_str(), result.GetStatus().ToString().c_str());
        return 1;
      }
      if (result->records_in != options.events) {
        std::fprintf(stderr, "%s: the source emitted %lld events, expected %lld\n", name.c_str(),
                     static_cast<long long>(result->records_in), static_cast<long long>(options.events));
        return 1;
      }
      f.checkpoints = result->checkpoints_completed;
      for (const freshet::CheckpointStats& c : result->checkpoint_history) {
        f.checkpoint_size_max = std::max(f.checkpoint_size_max, c.state_size);
        f.checkpoint_size_last = c.state_size;
      }
      std::printf("%s run %d: %.2f s, %.2f cores, %.3f M events/s, %.3f M events/s per core, %lld results, "
                  "peak memory %.0f MB, %lld checkpoints (largest %.1f MB)\n",
                  name.c_str(), run, f.wall, f.cpu / f.wall, static_cast<double>(options.events) / f.wall / 1e6,
                  static_cast<double>(options.events) / f.cpu / 1e6, static_cast<long long>(result->records_out),
                  static_cast<double>(f.peak_memory) / 1e6, static_cast<long long>(f.checkpoints),
                  static_cast<double>(f.checkpoint_size_max) / 1e6);
      std::fflush(stdout);
      runs.push_back(f);
    }
    auto median_of = [&runs](auto field) {
      std::vector<double> v;
      for (const RunFigures& f : runs) v.push_back(field(f));
      return Median(v);
    };
    const double events = static_cast<double>(options.events);
    double per_s = median_of([&](const RunFigures& f) { return events / f.wall; });
    double per_core = median_of([&](const RunFigures& f) { return events / f.cpu; });
    double cores = median_of([](const RunFigures& f) { return f.cpu / f.wall; });
    double memory = median_of([](const RunFigures& f) { return static_cast<double>(f.peak_memory); });
    double checkpoint = median_of([](const RunFigures& f) { return static_cast<double>(f.checkpoint_size_max); });
    double checkpoints = median_of([](const RunFigures& f) { return static_cast<double>(f.checkpoints); });
    std::printf("%s median: %.3f M events/s, %.3f M events/s per core (%.2f cores), peak memory %.0f MB, "
                "%.0f checkpoints, largest %.1f MB\n",
                name.c_str(), per_s / 1e6, per_core / 1e6, cores, memory / 1e6, checkpoints, checkpoint / 1e6);
    std::fflush(stdout);
    if (!options.csv.empty()) {
      std::ofstream csv(options.csv, std::ios::app);
      csv << name << ',' << backend << ',' << options.parallelism << ',' << options.events << ','
          << options.checkpoint_interval_ms << ',' << options.runs << ',' << per_s << ',' << per_core << ',' << cores
          << ',' << memory << ',' << checkpoints << ',' << checkpoint << '\n';
    }
  }
  std::filesystem::remove_all(root);
  return 0;
}

int Usage() {
  std::fprintf(stderr,
               "usage: freshet_nexmark_bench --generator [--events N] [--runs R]\n"
               "       freshet_nexmark_bench --query q0[,q1,...|all] [--events N] [--parallelism P]\n"
               "           [--backend heap|rocksdb] [--incremental] [--checkpoint-interval MS (0: none)]\n"
               "           [--checkpoint-dir DIR] [--rate EVENTS_PER_S] [--runs R] [--csv FILE]\n"
               "queries:");
  for (const auto& [name, builder] : Queries()) std::fprintf(stderr, " %s", name.c_str());
  std::fprintf(stderr, "\n");
  return 2;
}

}  // namespace

int main(int argc, char** argv) {
  bool generator = false;
  std::string query_list;
  bool runs_given = false;
  QueryOptions options;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> std::string { return i + 1 < argc ? argv[++i] : ""; };
    if (a == "--generator") {
      generator = true;
    } else if (a == "--query") {
      query_list = value();
    } else if (a == "--events") {
      options.events = std::atoll(value().c_str());
    } else if (a == "--runs") {
      options.runs = std::atoi(value().c_str());
      runs_given = true;
    } else if (a == "--parallelism") {
      options.parallelism = std::atoi(value().c_str());
    } else if (a == "--backend") {
      std::string b = value();
      if (b != "heap" && b != "rocksdb") return Usage();
      options.rocksdb = b == "rocksdb";
    } else if (a == "--incremental") {
      options.incremental = true;
    } else if (a == "--checkpoint-interval") {
      options.checkpoint_interval_ms = std::atoll(value().c_str());
    } else if (a == "--checkpoint-dir") {
      options.checkpoint_dir = value();
    } else if (a == "--rate") {
      options.rate = std::atof(value().c_str());
    } else if (a == "--csv") {
      options.csv = value();
    } else {
      return Usage();
    }
  }
  if (generator == !query_list.empty() || options.events <= 0 || options.runs <= 0 || options.parallelism <= 0 ||
      options.checkpoint_interval_ms < 0 || options.rate <= 0) {
    return Usage();
  }
  std::string command = argv[0];
  for (int i = 1; i < argc; ++i) command += std::string(" ") + argv[i];
  std::printf("command: %s\n", command.c_str());
  if (generator) return RunGenerator(options.events, runs_given ? options.runs : 5);
  std::vector<std::string> names;
  if (query_list == "all") {
    for (const auto& [name, builder] : Queries()) names.push_back(name);
  } else {
    std::stringstream list(query_list);
    for (std::string name; std::getline(list, name, ',');) {
      if (Queries().count(name) == 0) {
        std::fprintf(stderr, "unknown query '%s'\n", name.c_str());
        return Usage();
      }
      names.push_back(name);
    }
  }
  return RunQueries(names, options);
}

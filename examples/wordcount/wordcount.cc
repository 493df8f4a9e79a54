// Streaming word count on the embedded mini-cluster.
//
//   wordcount --input data/wordcount.txt --parallelism 2 [--print-all] [--output DIR]
//
// Lines are split into lower-case words, keyed by word and summed; every
// input word updates its running count. Prints the most frequent words and
// a summary line (records in/out, wall time).
#include <freshet/freshet.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace {

struct Options {
  std::string input = "data/wordcount.txt";
  std::string output;
  int parallelism = 2;
  bool print_all = false;
};

bool Parse(int argc, char** argv, Options& o) {
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    auto value = [&]() -> const char* { return i + 1 < argc ? argv[++i] : nullptr; };
    if (a == "--input") {
      const char* v = value();
      if (!v) return false;
      o.input = v;
    } else if (a == "--output") {
      const char* v = value();
      if (!v) return false;
      o.output = v;
    } else if (a == "--parallelism" || a == "-p") {
      const char* v = value();
      if (!v) return false;
      o.parallelism = std::atoi(v);
    } else if (a == "--print-all") {
      o.print_all = true;
    } else {
      return false;
    }
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  if (!Parse(argc, argv, opt)) {
    std::fprintf(stderr, "usage: wordcount [--input PATH] [--output DIR] [--parallelism N] [--print-all]\n");
    return 2;
  }

  auto env = freshet::StreamExecutionEnvironment::Create();
  env->SetParallelism(opt.parallelism);

  auto counts =
      env->ReadTextFile(opt.input)
          .FlatMap([](const std::string& line, freshet::Collector<std::pair<std::string, int64_t>>& out) {
            std::string word;
            for (char c : line) {
              if (std::isalnum(static_cast<unsigned char>(c)) || c == '\'') {
                word.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
              } else if (!word.empty()) {
                out.Collect({word, 1});
                word.clear();
              }
            }
            if (!word.empty()) out.Collect({word, 1});
          })
          .Name("Tokenizer")
          .KeyBy([](const std::pair<std::string, int64_t>& p) { return p.first; })
          .Sum<1>();

  if (opt.print_all) counts.Print();
  if (!opt.output.empty()) counts.WriteAsText(opt.output);

  // The last update of each word is its final count.
  std::map<std::string, int64_t> final_counts;
  auto start = std::chrono::steady_clock::now();
  std::vector<std::pair<std::string, int64_t>> updates;
  freshet::JobExecutionResult result;
  try {
    updates = counts.ExecuteAndCollect("Streaming WordCount", &result);
  } catch (const freshet::JobFailedError& e) {
    std::fprintf(stderr, "wordcount: %s\n", e.what());
    return 1;
  }
  auto wall = std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - start);
  for (const auto& [word, count] : updates) final_counts[word] = std::max(final_counts[word], count);

  std::vector<std::pair<std::string, int64_t>> sorted(final_counts.begin(), final_counts.end());
  std::sort(sorted.begin(), sorted.end(),
            [](const auto& a, const auto& b) { return a.second != b.second ? a.second > b.second : a.first < b.first; });
  std::printf("Top words of %s:\n", opt.input.c_str());
  for (size_t i = 0; i < sorted.size() && i < 15; ++i) {
    std::printf("  %-14s %lld\n", sorted[i].first.c_str(), static_cast<long long>(sorted[i].second));
  }
  std::printf("Streaming WordCount finished: parallelism %d, records in %lld (lines), records out %lld (count "
              "updates), %zu distinct words, job runtime %lld ms, wall time %lld ms\n",
              opt.parallelism, static_cast<long long>(result.records_in), static_cast<long long>(result.records_out),
              final_counts.size(), static_cast<long long>(result.net_runtime.count()),
              static_cast<long long>(wall.count()));
  return 0;
}

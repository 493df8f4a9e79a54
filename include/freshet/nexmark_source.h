#pragma once
/// The Nexmark generator as a Freshet source.
///
/// Subtask i of p emits event numbers i, i + p, i + 2p, ... so that all
/// subtasks advance through event time together (the watermark of a
/// downstream operator, the minimum over its inputs, then trails the
/// newest events by little, and windows hold little state). Each record
/// carries its event time as timestamp. The position of every subtask is
/// checkpointed; after a restore at another parallelism the old subtasks'
/// remaining sequences are spread over the new ones, each reader taking
/// from the sequence that is furthest behind, so no event is lost or
/// repeated.
///
///   auto events = nexmark::Events(*env, nexmark::GeneratorConfig{.events = 1'000'000});
///   nexmark::Query5(events).SinkTo(...);

#include <cstdint>
#include <memory>
#include <string>

#include "freshet/data_stream.h"
#include "freshet/environment.h"
#include "freshet/nexmark.h"
#include "freshet/source.h"

namespace freshet::nexmark {

/// Events 0 .. config.events - 1 (unbounded when config.events is 0).
class NexmarkSource final : public Source<Event> {
 public:
  /// Throws std::invalid_argument naming the option when `config` is not
  /// usable (see Generator).
  explicit NexmarkSource(const GeneratorConfig& config) : generator_(config) {}

  Boundedness GetBoundedness() const override {
    return generator_.Config().events > 0 ? Boundedness::kBounded : Boundedness::kContinuousUnbounded;
  }
  std::unique_ptr<SourceReader<Event>> CreateReader(SourceReaderContext& context) const override;

 private:
  Generator generator_;
};

/// The watermark of the reference queries: event time - 4 s.
inline constexpr Duration kWatermarkDelay{4000};

/// A Nexmark source (uid "nexmark-source", which holds its checkpointed
/// position) with watermarks `event time - 4 s` (uid "nexmark-watermarks").
inline DataStream<Event> Events(StreamExecutionEnvironment& env, const GeneratorConfig& config) {
  DataStream<Event> source = env.FromSource(NexmarkSource(config), "nexmark");
  source.Uid("nexmark-source");
  DataStream<Event> events = source.AssignTimestampsAndWatermarks(
      WatermarkStrategy<Event>::ForBoundedOutOfOrderness(kWatermarkDelay).WithTimestampAssigner(
          [](const Event& e) { return e.EventTime(); }));
  events.Name("nexmark watermarks").Uid("nexmark-watermarks");
  return events;
}

}  // namespace freshet::nexmark

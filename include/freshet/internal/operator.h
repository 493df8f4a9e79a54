#pragma once
/// The operator contract and the typed glue between operators.
///
/// An operator is driven by exactly one task thread: ProcessElement,
/// ProcessWatermark, EndInput, Finish are never called concurrently.
/// Life cycle: constructed by its factory (with its output),
/// InitializeState() (restored state, if any), Open(), elements, watermarks
/// and checkpoints, EndInput(i) per input, Finish(), Close(). Close() is
/// also called after a failure or cancellation.
///
/// Checkpoints: when the barrier of checkpoint n has reached the operator
/// (all records before it are processed, none after it), the task calls
/// PrepareSnapshotPreBarrier(n) on every operator of the chain (head
/// first), forwards the barrier, then calls SnapshotState(n) on every
/// operator. Later, NotifyCheckpointComplete(n) or NotifyCheckpointAborted(n).

#include <exception>
#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "freshet/checkpoint.h"
#include "freshet/functions.h"
#include "freshet/internal/buffer.h"
#include "freshet/internal/record_writer.h"
#include "freshet/internal/snapshot.h"
#include "freshet/key_groups.h"
#include "freshet/serializer.h"
#include "freshet/status.h"
#include "freshet/types.h"

namespace freshet {
class SourceReaderContext;
}

namespace freshet::internal {

/// Exceptions the runtime uses to unwind a task; user-function wrappers let
/// them pass untouched.
class TaskControlException : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

/// A user function of the named operator threw.
class OperatorException : public TaskControlException {
 public:
  OperatorException(std::string op, const std::string& what)
      : TaskControlException(what), operator_name_(std::move(op)) {}
  const std::string& OperatorName() const { return operator_name_; }

 private:
  std::string operator_name_;
};

/// A failure that a restart cannot fix (restored state that does not fit
/// the job, for example): the job fails without restarting.
class NonRecoverableError : public TaskControlException {
 public:
  using TaskControlException::TaskControlException;
};

/// The task was cancelled while waiting (for a buffer, for example).
class TaskCancelledException : public TaskControlException {
 public:
  TaskCancelledException() : TaskControlException("task cancelled") {}
};

/// Calls user code, turning anything it throws into an OperatorException
/// naming `op`. Free on the non-throwing path.
template <class Fn>
inline decltype(auto) InvokeUser(const std::string& op, Fn&& fn) {
  try {
    return fn();
  } catch (const TaskControlException&) {
    throw;
  } catch (const std::exception& e) {
    throw OperatorException(op, e.what());
  } catch (...) {
    throw OperatorException(op, "unknown exception");
  }
}

class OutputBase {
 public:
  virtual ~OutputBase() = default;
  virtual void EmitWatermark(Timestamp watermark) = 0;
  /// The stream became idle (no records, no watermarks) or active again.
  virtual void EmitWatermarkStatus(bool idle) = 0;
};

/// Where an operator sends its records.
template <class T>
class Output : public OutputBase {
 public:
  virtual void Collect(const T& value, Timestamp ts) = 0;
};

/// One typed input of an operator.
template <class T>
class Input {
 public:
  virtual ~Input() = default;
  virtual void ProcessElement(const T& value, Timestamp ts) = 0;
};

class ProcessingTimeService;

/// Side outputs of one operator instance, by tag id.
class SideOutputs {
 public:
  void Add(std::string id, OutputBase* output) { outputs_.emplace_back(std::move(id), output); }
  /// The output for `id`, or nullptr when nothing consumes it.
  OutputBase* Find(const std::string& id) const {
    for (const auto& [tag, out] : outputs_) {
      if (tag == id) return out;
    }
    return nullptr;
  }

 private:
  std::vector<std::pair<std::string, OutputBase*>> outputs_;
};

/// Per-subtask context handed to operator factories. Outlives the operator.
struct OperatorContext {
  std::string name;                 // operator name, for errors and logs
  RuntimeContext* runtime = nullptr;  // this operator's own context
  std::unique_ptr<RuntimeContext> runtime_storage;
  KeyGroupRange key_groups;         // owned key groups (keyed operators)
  int max_parallelism = 128;
  int64_t* records_in = nullptr;    // task counter of records taken by sinks
  int64_t* records_out = nullptr;   // task counter of records emitted by sources
  SourceReaderContext* reader_context = nullptr;  // sources only
  /// Named byte results a subtask hands back to the client when it finishes
  /// (ExecuteAndCollect uses it).
  std::map<std::string, std::string>* accumulators = nullptr;
  ProcessingTimeService* processing_time = nullptr;
  /// Outputs of side-output tags consumed downstream.
  SideOutputs side_outputs;
  /// Named counters of this operator (e.g. "numLateRecordsDropped"),
  /// summed over subtasks into the job result.
  std::map<std::string, int64_t>* counters = nullptr;
  int64_t auto_watermark_interval_ms = 200;
  /// The job takes checkpoints: after Finish() the task takes a final
  /// checkpoint and notifies its completion before it ends (two-phase-commit
  /// sinks commit then). False in a harness and without checkpointing.
  bool checkpointing = false;
  /// Trigger time of the checkpoint being taken, set by the task before it
  /// calls SnapshotState (kNoTimestamp outside a job, e.g. in a harness).
  Timestamp checkpoint_timestamp = kNoTimestamp;
  /// The snapshot being taken, set with checkpoint_timestamp: its id and
  /// whether it is a savepoint (self-contained, in the backend-independent
  /// format) rather than a checkpoint (which may reference files of earlier
  /// checkpoints).
  CheckpointId checkpoint_id = 0;
  bool savepoint = false;
  /// Called on the task thread when a checkpoint completed, before the
  /// operators are notified (keyed-state backends that reuse the files of
  /// completed checkpoints listen). Registered by the operator's parts; the
  /// task calls them while its operators exist.
  std::vector<std::function<void(CheckpointId)>> checkpoint_complete_listeners;
  /// The keyed-state backend keyed operators create (heap by default).
  StateBackendOptions state_backend;
  /// The slot the task runs in, unique in the process (RocksDB instances of
  /// one slot share its memory budget); empty: the operator's own budget.
  std::string slot;
  /// Restored state that does not match what the operator asks for (a
  /// state whose kind or type changed), one line each; the task reports
  /// them all at once after opening its operators.
  std::vector<std::string> restore_problems;
};

class StreamOperator {
 public:
  virtual ~StreamOperator() = default;
  virtual void Open() {}
  /// Watermark on input `input_index` (1-based), already combined over channels.
  virtual void ProcessWatermark(int input_index, Timestamp watermark) = 0;
  /// Input `input_index` became idle or active again.
  virtual void ProcessWatermarkStatus(int input_index, bool idle) = 0;
  /// Input `input_index` (1-based) has ended.
  virtual void EndInput(int /*input_index*/) {}
  /// All inputs ended: emit what is buffered.
  virtual void Finish() {}
  virtual void Close() {}
  /// Called once before Open(): `restore.restored` tells whether the job
  /// started from a snapshot holding state for this operator.
  virtual void InitializeState(const OperatorRestore& /*restore*/) {}
  /// The barrier of `id` is about to be forwarded: emit what must precede it.
  virtual void PrepareSnapshotPreBarrier(CheckpointId /*id*/) {}
  /// Captures this operator's state for checkpoint `id` on the task
  /// thread; the returned function writes it (possibly on another thread)
  /// and must not touch live state. nullptr: no state.
  virtual AsyncSnapshot SnapshotState(CheckpointId /*id*/) { return nullptr; }
  virtual void NotifyCheckpointComplete(CheckpointId /*id*/) {}
  virtual void NotifyCheckpointAborted(CheckpointId /*id*/) {}
  /// The typed input `Input<IN_k>*` for input k (1-based), as void*.
  virtual void* InputAt(int input_index) = 0;
  virtual int NumInputs() const = 0;
};

/// Calls the next operator of a chain directly.
template <class T>
class ChainingOutput final : public Output<T> {
 public:
  ChainingOutput(StreamOperator* target, int input_index)
      : target_(target), input_(static_cast<Input<T>*>(target->InputAt(input_index))), input_index_(input_index) {}
  void Collect(const T& value, Timestamp ts) override { input_->ProcessElement(value, ts); }
  void EmitWatermark(Timestamp wm) override { target_->ProcessWatermark(input_index_, wm); }
  void EmitWatermarkStatus(bool idle) override { target_->ProcessWatermarkStatus(input_index_, idle); }

 private:
  StreamOperator* target_;
  Input<T>* input_;
  int input_index_;
};

/// Sends every record to several outputs.
template <class T>
class FanOutOutput final : public Output<T> {
 public:
  explicit FanOutOutput(std::vector<std::unique_ptr<OutputBase>> outputs) : owned_(std::move(outputs)) {
    for (auto& o : owned_) outputs_.push_back(static_cast<Output<T>*>(o.get()));
  }
  void Collect(const T& value, Timestamp ts) override {
    for (Output<T>* o : outputs_) o->Collect(value, ts);
  }
  void EmitWatermark(Timestamp wm) override {
    for (Output<T>* o : outputs_) o->EmitWatermark(wm);
  }
  void EmitWatermarkStatus(bool idle) override {
    for (Output<T>* o : outputs_) o->EmitWatermarkStatus(idle);
  }

 private:
  std::vector<std::unique_ptr<OutputBase>> owned_;
  std::vector<Output<T>*> outputs_;
};

/// Serializes records into a RecordWriter; `Selector` picks the channel.
template <class T, class Selector>
class RecordWriterOutput final : public Output<T> {
 public:
  RecordWriterOutput(std::unique_ptr<RecordWriter> writer, Selector selector)
      : writer_(std::move(writer)), selector_(std::move(selector)) {}

  void Collect(const T& value, Timestamp ts) override {
    ++writer_->RecordsOut();
    if constexpr (Selector::kBroadcast) {
      SerializeScratch(value);
      for (int c = 0; c < writer_->NumChannels(); ++c) writer_->WriteRecord(c, ts, scratch_.Data(), scratch_.Size());
    } else {
      int channel = selector_.Select(value, writer_->NumChannels());
      if constexpr (TypeSerializer<T>::kFixedSize > 0) {
        constexpr size_t kSize = TypeSerializer<T>::kFixedSize;
        if (uint8_t* p = writer_->TryReserve(channel, kRecordPrefixSize + kSize)) {
          uint32_t header = MakeElementHeader(ElementTag::kRecord, sizeof(int64_t) + kSize);
          std::memcpy(p, &header, sizeof(header));
          std::memcpy(p + kElementHeaderSize, &ts, sizeof(ts));
          UncheckedWriter w(p + kRecordPrefixSize);
          TypeSerializer<T>::Serialize(value, w);
          return;
        }
      }
      SerializeScratch(value);
      writer_->WriteRecord(channel, ts, scratch_.Data(), scratch_.Size());
    }
  }
  void EmitWatermark(Timestamp wm) override { writer_->BroadcastWatermark(wm); }
  void EmitWatermarkStatus(bool idle) override { writer_->BroadcastWatermarkStatus(idle); }
  RecordWriter* Writer() { return writer_.get(); }

 private:
  void SerializeScratch(const T& value) {
    scratch_.Reset();
    TypeSerializer<T>::Serialize(value, scratch_);
  }
  std::unique_ptr<RecordWriter> writer_;
  Selector selector_;
  ByteWriter scratch_;
};

/// Receives the non-record elements of a network input (watermarks).
class ElementHandler {
 public:
  virtual ~ElementHandler() = default;
  virtual void OnWatermark(int channel, Timestamp watermark) = 0;
  virtual void OnWatermarkStatus(int channel, bool idle) = 0;
};

/// Decodes data buffers of one network input and feeds the head operator.
class InputProcessor {
 public:
  virtual ~InputProcessor() = default;
  /// Processes every complete element of the buffer loaded into `reader`.
  virtual Status ProcessBuffer(ChannelDeserializer& reader, int channel, ElementHandler& handler) = 0;
  int64_t RecordsIn() const { return records_in_; }

 protected:
  int64_t records_in_ = 0;
};

template <class T>
class NetworkInputProcessor final : public InputProcessor {
 public:
  explicit NetworkInputProcessor(Input<T>* target) : target_(target) {}
  Status ProcessBuffer(ChannelDeserializer& reader, int channel, ElementHandler& handler) override {
    ElementView e;
    while (reader.Next(e)) {
      if (e.tag == ElementTag::kRecord) {
        Timestamp ts;
        if (e.size < sizeof(ts)) return Status::Corruption("record element shorter than its timestamp");
        std::memcpy(&ts, e.payload, sizeof(ts));
        ByteReader r(e.payload + sizeof(ts), e.size - sizeof(ts));
        TypeSerializer<T>::Deserialize(r, value_);
        if (r.Failed() || r.Remaining() != 0) {
          return Status::Corruption("record bytes do not decode as the input type (" + std::to_string(e.size) +
                                    " bytes on channel " + std::to_string(channel) + ")");
        }
        ++records_in_;
        target_->ProcessElement(value_, ts);
      } else if (e.tag == ElementTag::kWatermark) {
        Timestamp wm;
        if (e.size != sizeof(wm)) return Status::Corruption("malformed watermark element");
        std::memcpy(&wm, e.payload, sizeof(wm));
        handler.OnWatermark(channel, wm);
      } else if (e.tag == ElementTag::kWatermarkStatus) {
        if (e.size != 1 || e.payload[0] > 1) return Status::Corruption("malformed watermark status element");
        handler.OnWatermarkStatus(channel, e.payload[0] == 1);
      } else {
        return Status::Corruption("unknown element tag " + std::to_string(static_cast<uint32_t>(e.tag)));
      }
    }
    return Status::Ok();
  }

 private:
  Input<T>* target_;
  T value_{};
};

class PartitionerFactory;

/// Typed operations for one record type, created by the typed API and used
/// by the untyped runtime to wire chains and network inputs.
class TypeOps {
 public:
  virtual ~TypeOps() = default;
  virtual std::unique_ptr<OutputBase> MakeChainingOutput(StreamOperator* target, int input_index) const = 0;
  virtual std::unique_ptr<OutputBase> MakeFanOut(std::vector<std::unique_ptr<OutputBase>> outputs) const = 0;
  virtual std::unique_ptr<InputProcessor> MakeInputProcessor(StreamOperator* target, int input_index) const = 0;
  /// A key-less partitioner of this type (forward, rebalance, ...).
  virtual std::shared_ptr<const PartitionerFactory> MakePartitioner(int kind) const = 0;
};

template <class T>
class TypeOpsImpl final : public TypeOps {
 public:
  std::unique_ptr<OutputBase> MakeChainingOutput(StreamOperator* target, int input_index) const override {
    return std::make_unique<ChainingOutput<T>>(target, input_index);
  }
  std::unique_ptr<OutputBase> MakeFanOut(std::vector<std::unique_ptr<OutputBase>> outputs) const override {
    return std::make_unique<FanOutOutput<T>>(std::move(outputs));
  }
  std::unique_ptr<InputProcessor> MakeInputProcessor(StreamOperator* target, int input_index) const override {
    return std::make_unique<NetworkInputProcessor<T>>(static_cast<Input<T>*>(target->InputAt(input_index)));
  }
  std::shared_ptr<const PartitionerFactory> MakePartitioner(int kind) const override;
};

enum class PartitionerKind { kForward, kRebalance, kRescale, kShuffle, kBroadcast, kGlobal, kHash, kCustom };
const char* PartitionerName(PartitionerKind kind);

/// Where in the parallel graph a network output sits.
struct ChannelSelectorContext {
  int producer_subtask = 0;
  int producer_parallelism = 1;
  int consumer_parallelism = 1;
  int max_parallelism = 128;
};

/// Creates the network output of one edge for one producer subtask.
class PartitionerFactory {
 public:
  explicit PartitionerFactory(PartitionerKind kind) : kind_(kind) {}
  virtual ~PartitionerFactory() = default;
  PartitionerKind Kind() const { return kind_; }
  virtual std::unique_ptr<OutputBase> Create(std::unique_ptr<RecordWriter> writer,
                                             const ChannelSelectorContext& ctx) const = 0;

 private:
  PartitionerKind kind_;
};

template <class T, class Selector>
class PartitionerFactoryImpl final : public PartitionerFactory {
 public:
  PartitionerFactoryImpl(PartitionerKind kind, Selector prototype)
      : PartitionerFactory(kind), prototype_(std::move(prototype)) {}
  std::unique_ptr<OutputBase> Create(std::unique_ptr<RecordWriter> writer,
                                     const ChannelSelectorContext& ctx) const override {
    Selector s = prototype_;
    s.Setup(ctx);
    return std::make_unique<RecordWriterOutput<T, Selector>>(std::move(writer), std::move(s));
  }

 private:
  Selector prototype_;
};

// ---- channel selectors --------------------------------------------------

struct SelectorBase {
  static constexpr bool kBroadcast = false;
  void Setup(const ChannelSelectorContext&) {}
};

struct ForwardSelector : SelectorBase {
  int channel = 0;
  void Setup(const ChannelSelectorContext& c) { channel = c.producer_subtask; }
  template <class T>
  int Select(const T&, int) const {
    return channel;
  }
};

struct RebalanceSelector : SelectorBase {
  int next = 0;
  void Setup(const ChannelSelectorContext& c) { next = (c.producer_subtask * 7919) % c.consumer_parallelism; }
  template <class T>
  int Select(const T&, int n) {
    int c = next;
    next = next + 1 == n ? 0 : next + 1;
    return c;
  }
};

/// Round-robin over the consumers "below" this producer (pointwise).
struct RescaleSelector : SelectorBase {
  int lo = 0, hi = 1, next = 0;
  void Setup(const ChannelSelectorContext& c) {
    if (c.consumer_parallelism >= c.producer_parallelism) {
      lo = c.producer_subtask * c.consumer_parallelism / c.producer_parallelism;
      hi = (c.producer_subtask + 1) * c.consumer_parallelism / c.producer_parallelism;
    } else {
      lo = c.producer_subtask * c.consumer_parallelism / c.producer_parallelism;
      hi = lo + 1;
    }
    next = lo;
  }
  template <class T>
  int Select(const T&, int) {
    int c = next;
    next = next + 1 == hi ? lo : next + 1;
    return c;
  }
};

struct ShuffleSelector : SelectorBase {
  uint64_t state = 0x9e3779b97f4a7c15ULL;
  void Setup(const ChannelSelectorContext& c) { state ^= MurmurMix(static_cast<uint64_t>(c.producer_subtask) + 1); }
  template <class T>
  int Select(const T&, int n) {
    state ^= state << 13;
    state ^= state >> 7;
    state ^= state << 17;
    return static_cast<int>(state % static_cast<uint64_t>(n));
  }
};

struct GlobalSelector : SelectorBase {
  template <class T>
  int Select(const T&, int) const {
    return 0;
  }
};

struct BroadcastSelector : SelectorBase {
  static constexpr bool kBroadcast = true;
  template <class T>
  int Select(const T&, int) const {
    return 0;
  }
};

/// Routes by key group: the consumer that owns the key's group. The key
/// group -> channel mapping is a table; a power-of-two max parallelism
/// replaces the modulo by a mask.
template <class KeyFn>
struct KeyGroupSelector : SelectorBase {
  KeyFn key_fn;
  uint64_t mask = 0;  // max_parallelism - 1 when a power of two, else 0
  uint64_t max_parallelism = 128;
  std::vector<int> channel_of_group;
  explicit KeyGroupSelector(KeyFn fn) : key_fn(std::move(fn)) {}
  void Setup(const ChannelSelectorContext& c) {
    max_parallelism = static_cast<uint64_t>(c.max_parallelism);
    mask = (max_parallelism & (max_parallelism - 1)) == 0 ? max_parallelism - 1 : 0;
    channel_of_group.resize(static_cast<size_t>(c.max_parallelism));
    for (int kg = 0; kg < c.max_parallelism; ++kg) {
      channel_of_group[static_cast<size_t>(kg)] = SubtaskForKeyGroup(kg, c.consumer_parallelism, c.max_parallelism);
    }
  }
  template <class T>
  int Select(const T& value, int) {
    const auto& key = key_fn(value);
    using K = std::decay_t<decltype(key)>;
    uint64_t h = MurmurMix(KeyHash<K>()(key));
    uint64_t kg = mask != 0 ? (h & mask) : (h % max_parallelism);
    return channel_of_group[static_cast<size_t>(kg)];
  }
};

/// A user partitioner: `partition_fn(key, num_partitions)`.
template <class KeyFn, class PartitionFn>
struct CustomSelector : SelectorBase {
  KeyFn key_fn;
  PartitionFn partition_fn;
  CustomSelector(KeyFn k, PartitionFn p) : key_fn(std::move(k)), partition_fn(std::move(p)) {}
  template <class T>
  int Select(const T& value, int n) {
    int c = InvokeUser("custom partitioner", [&] { return static_cast<int>(partition_fn(key_fn(value), n)); });
    if (c < 0 || c >= n) {
      throw OperatorException("custom partitioner", "returned partition " + std::to_string(c) +
                                                        " outside [0, " + std::to_string(n) + ")");
    }
    return c;
  }
};

template <class T>
std::shared_ptr<const PartitionerFactory> MakePartitioner(PartitionerKind kind) {
  switch (kind) {
    case PartitionerKind::kForward:
      return std::make_shared<PartitionerFactoryImpl<T, ForwardSelector>>(kind, ForwardSelector{});
    case PartitionerKind::kRebalance:
      return std::make_shared<PartitionerFactoryImpl<T, RebalanceSelector>>(kind, RebalanceSelector{});
    case PartitionerKind::kRescale:
      return std::make_shared<PartitionerFactoryImpl<T, RescaleSelector>>(kind, RescaleSelector{});
    case PartitionerKind::kShuffle:
      return std::make_shared<PartitionerFactoryImpl<T, ShuffleSelector>>(kind, ShuffleSelector{});
    case PartitionerKind::kBroadcast:
      return std::make_shared<PartitionerFactoryImpl<T, BroadcastSelector>>(kind, BroadcastSelector{});
    case PartitionerKind::kGlobal:
      return std::make_shared<PartitionerFactoryImpl<T, GlobalSelector>>(kind, GlobalSelector{});
    default:
      return nullptr;  // keyed and custom partitioners need a key selector
  }
}

template <class T>
std::shared_ptr<const PartitionerFactory> TypeOpsImpl<T>::MakePartitioner(int kind) const {
  return internal::MakePartitioner<T>(static_cast<PartitionerKind>(kind));
}

template <class T>
std::shared_ptr<const TypeOps> TypeOpsFor() {
  static const auto ops = std::make_shared<const TypeOpsImpl<T>>();
  return ops;
}

}  // namespace freshet::internal

namespace freshet {
template <class T>
inline void Collector<T>::Collect(const T& value) {
  output_->Collect(value, timestamp_);
}
}  // namespace freshet

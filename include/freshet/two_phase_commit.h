#pragma once
/// Exactly-once sinks by two-phase commit, with the semantics of Flink's
/// TwoPhaseCommitSinkFunction on the Sink<T> interface.
///
/// A writer puts what it writes into transactions that stay invisible until
/// committed. The framework drives them with the checkpoints:
///
/// | event | calls |
/// |---|---|
/// | Open | RestoreSharedState, RecoverAndCommit / RecoverAndAbort of what was restored, then BeginTransaction |
/// | record | Write(current, value, ts) |
/// | barrier of checkpoint n | PreCommit(current); current becomes pending for n; BeginTransaction |
/// | checkpoint n snapshot | the pending transactions (with their checkpoint ids) and the current one, serialized into operator state (split mode) |
/// | checkpoint n complete | Commit(t) for every pending t of a checkpoint <= n, oldest first |
/// | checkpoint n aborted | nothing: its transaction commits with the next completed checkpoint |
/// | restore from checkpoint n | RecoverAndCommit(t) for every restored pending t (checkpoint n completed, so all of them belong to completed checkpoints; some may be committed already), RecoverAndAbort(t) for the restored current one (what it got after barrier n is replayed by the sources) |
/// | end of input, checkpointing on | EndOfInput(current), PreCommit(current); it commits when the final checkpoint completes |
/// | end of input, checkpointing off | EndOfInput, PreCommit, then Commit of everything at once |
/// | failure, cancellation | Close() only: a later restore settles what was left |
///
/// Hence Commit must be idempotent (it may run again after a restore for a
/// transaction committed before the failure), and PreCommit must make the
/// transaction durable enough that Commit succeeds after any failure.
///
///   struct MyTxn { std::string staging_file; };
///   class MyWriter final : public TwoPhaseCommitWriter<Event, MyTxn> { ... };
///   class MySink final : public TwoPhaseCommitSink<Event, MyTxn> {
///     std::unique_ptr<TwoPhaseCommitWriter<Event, MyTxn>> CreateTransactionalWriter(RuntimeContext&) const override;
///   };
///   stream.SinkTo(MySink());
///
/// Transactions are values written with TypeSerializer<Txn> (aggregates of
/// numbers, strings, vectors work as they are). After a restore, split mode
/// may give a transaction of one old subtask to another subtask, so a
/// transaction must carry everything needed to commit or abort it.
/// Writer-wide values that every subtask needs back (counters that names are
/// built from) go through SnapshotSharedState / RestoreSharedState instead
/// (union mode: each subtask gets the entries of all old subtasks).
///
/// Threading: every call comes from the subtask's task thread, never
/// concurrently; a writer needs no locks.

#include <algorithm>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "freshet/checkpoint.h"
#include "freshet/functions.h"
#include "freshet/internal/operator.h"
#include "freshet/internal/snapshot.h"
#include "freshet/internal/timer_service.h"
#include "freshet/serializer.h"
#include "freshet/sink.h"
#include "freshet/status.h"
#include "freshet/types.h"

namespace freshet {

/// What a two-phase-commit writer can ask of the task that runs it.
class SinkWriterContext {
 public:
  virtual ~SinkWriterContext() = default;
  virtual Timestamp CurrentProcessingTime() const = 0;
  /// The last watermark the sink received; kNoTimestamp before the first.
  virtual Timestamp CurrentWatermark() const = 0;
  /// Asks for one call of OnProcessingTime(current transaction, time) once
  /// processing time reaches `time`. No call happens after the input ended.
  virtual void RegisterProcessingTimer(Timestamp time) = 0;
};

/// The writer of a two-phase-commit sink, one per parallel subtask. Every
/// Status other than OK fails the task with the sink's name and the message
/// (PreCommit and BeginTransaction at a barrier decline the checkpoint
/// instead; the transaction is pre-committed again at the next barrier).
template <class T, class Txn>
class TwoPhaseCommitWriter {
 public:
  using TransactionType = Txn;
  virtual ~TwoPhaseCommitWriter() = default;

  /// Opens connections; called before any transaction call.
  virtual Status Open(RuntimeContext& /*runtime*/, SinkWriterContext& /*context*/) { return Status::Ok(); }
  /// Starts a transaction; what is written into it stays invisible until Commit.
  virtual Result<Txn> BeginTransaction() = 0;
  virtual Status Write(Txn& txn, const T& value, Timestamp ts) = 0;
  /// A timer asked for with SinkWriterContext::RegisterProcessingTimer fired.
  virtual Status OnProcessingTime(Txn& /*txn*/, Timestamp /*time*/) { return Status::Ok(); }
  /// The input ended and `txn` is the last transaction: move into it
  /// whatever must still be committed. PreCommit(txn) follows.
  virtual Status EndOfInput(Txn& /*txn*/) { return Status::Ok(); }
  /// Flushes `txn` and makes it durable: after it, Commit(txn) must succeed
  /// even after a failure and a restore. Called at the barrier, before the
  /// snapshot; nothing is written into `txn` afterwards.
  virtual Status PreCommit(Txn& txn) = 0;
  /// Makes `txn` visible. Must be idempotent: it runs again after a restore
  /// when the failure came between the commit and the next checkpoint.
  virtual Status Commit(const Txn& txn) = 0;
  /// Discards `txn`.
  virtual Status Abort(const Txn& txn) = 0;
  /// A restored pre-committed transaction whose checkpoint completed; it may
  /// have been committed already. Default: Commit(txn).
  virtual Status RecoverAndCommit(const Txn& txn) { return Commit(txn); }
  /// The restored transaction that was current when the checkpoint was
  /// taken. Whatever was written into it after the barrier is replayed by
  /// the sources and must not become visible. Default: Abort(txn). A writer
  /// whose transactions carry data from before the barrier (FileSink's part
  /// files kept open across checkpoints) publishes that part here.
  virtual Status RecoverAndAbort(const Txn& txn) { return Abort(txn); }
  /// Writer-wide state saved at every checkpoint (union mode); empty: none.
  virtual std::string SnapshotSharedState() { return std::string(); }
  /// The entries SnapshotSharedState returned on all old subtasks; called
  /// after Open and before recovering transactions, on a restore only.
  virtual Status RestoreSharedState(const std::vector<std::string>& /*entries*/) { return Status::Ok(); }
  /// Releases resources; also after a failure. Must not abort or commit.
  virtual void Close() {}
};

namespace internal {

/// Runs a TwoPhaseCommitWriter as a SinkWriter: keeps the current and the
/// pending transactions and implements the checkpoint hooks the sink
/// operator forwards.
template <class T, class Txn>
class TwoPhaseCommitSinkWriter final : public SinkWriter<T>, public CheckpointedSinkWriter, private SinkWriterContext {
 public:
  /// Operator state names.
  static constexpr const char* kTransactionsState = "two-phase-commit-transactions";
  static constexpr const char* kSharedState = "two-phase-commit-shared";

  explicit TwoPhaseCommitSinkWriter(std::unique_ptr<TwoPhaseCommitWriter<T, Txn>> writer)
      : writer_(std::move(writer)) {
    FRESHET_CHECK_MSG(writer_ != nullptr, "a two-phase-commit sink created no writer");
  }

  // ---- CheckpointedSinkWriter ------------------------------------------------

  void SetUp(const std::string& operator_name, ProcessingTimeService* processing_time, bool checkpointing) override {
    FRESHET_CHECK_MSG(processing_time != nullptr, "a sink writer needs the task's processing-time service");
    operator_name_ = operator_name;
    processing_time_ = processing_time;
    checkpointing_ = checkpointing;
  }

  Status InitializeState(const OperatorRestore& restore) override {
    if (!restore.restored) return Status::Ok();
    restored_ = true;
    if (const StateInfo* info = restore.FindInfo(kTransactionsState);
        info != nullptr && info->type_name != TypeNameOf<Txn>()) {
      return Status::FailedPrecondition("the restored transactions have type '" + info->type_name +
                                        "' but the sink's writer uses '" + TypeNameOf<Txn>() + "'");
    }
    if (auto it = restore.operator_state.find(kTransactionsState); it != restore.operator_state.end()) {
      for (const std::string& entry : it->second.entries) {
        FRESHET_RETURN_IF_ERROR(DecodeEntry(entry));
      }
    }
    // Oldest checkpoint first, as they would have been committed.
    std::stable_sort(restored_pending_.begin(), restored_pending_.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    if (auto it = restore.operator_state.find(kSharedState); it != restore.operator_state.end()) {
      restored_shared_ = it->second.entries;
    }
    return Status::Ok();
  }

  void ProcessWatermark(Timestamp watermark) override { watermark_ = watermark; }

  Status PrepareSnapshotPreBarrier(CheckpointId id) override {
    if (!current_) return Status::Ok();  // the input ended and its transaction is pending already
    if (!current_pre_committed_) FRESHET_RETURN_IF_ERROR(writer_->PreCommit(*current_));
    pending_.emplace(id, std::move(*current_));
    current_.reset();
    current_pre_committed_ = false;
    if (finished_) return Status::Ok();
    return BeginTransaction();
  }

  Result<std::function<Status(SnapshotOutput&)>> SnapshotState(CheckpointId /*id*/) override {
    std::vector<std::string> entries;
    entries.reserve(pending_.size() + 1);
    for (const auto& [checkpoint, txn] : pending_) entries.push_back(EncodeEntry(EntryKind::kPending, checkpoint, txn));
    if (current_) entries.push_back(EncodeEntry(EntryKind::kCurrent, 0, *current_));
    std::vector<std::string> shared;
    if (std::string s = writer_->SnapshotSharedState(); !s.empty()) shared.push_back(std::move(s));
    return std::function<Status(SnapshotOutput&)>(
        [entries = std::move(entries), shared = std::move(shared)](SnapshotOutput& out) -> Status {
          out.AddStateInfo(StateInfo{kTransactionsState, "operator-list", TypeNameOf<Txn>()});
          FRESHET_RETURN_IF_ERROR(out.AddOperatorState(kTransactionsState, OperatorStateMode::kSplit, entries));
          out.AddStateInfo(StateInfo{kSharedState, "operator-union", TypeNameOf<std::string>()});
          return out.AddOperatorState(kSharedState, OperatorStateMode::kUnion, shared);
        });
  }

  Status NotifyCheckpointComplete(CheckpointId id) override {
    while (!pending_.empty() && pending_.begin()->first <= id) {
      FRESHET_RETURN_IF_ERROR(CommitPending(pending_.begin()->first, pending_.begin()->second));
      pending_.erase(pending_.begin());
    }
    return Status::Ok();
  }

  Status NotifyCheckpointAborted(CheckpointId /*id*/) override {
    // The aborted checkpoint's transaction stays pending: the next completed
    // checkpoint includes it (its snapshot lists every pending transaction).
    return Status::Ok();
  }

  Status Finish() override {
    finished_ = true;
    if (current_ && !current_pre_committed_) {
      FRESHET_RETURN_IF_ERROR(writer_->EndOfInput(*current_));
      FRESHET_RETURN_IF_ERROR(writer_->PreCommit(*current_));
      current_pre_committed_ = true;
    }
    // With checkpointing the final checkpoint takes the transaction and
    // commits it when it completes.
    if (checkpointing_) return Status::Ok();
    while (!pending_.empty()) {
      FRESHET_RETURN_IF_ERROR(CommitPending(pending_.begin()->first, pending_.begin()->second));
      pending_.erase(pending_.begin());
    }
    if (current_) {
      FRESHET_RETURN_IF_ERROR(writer_->Commit(*current_).WithContext("committing at the end of input"));
      current_.reset();
    }
    return Status::Ok();
  }

  // ---- SinkWriter ------------------------------------------------------------

  Status Open(RuntimeContext& runtime) override {
    FRESHET_RETURN_IF_ERROR(writer_->Open(runtime, *this));
    if (restored_) {
      FRESHET_RETURN_IF_ERROR(writer_->RestoreSharedState(restored_shared_));
      for (const auto& [checkpoint, txn] : restored_pending_) {
        FRESHET_RETURN_IF_ERROR(writer_->RecoverAndCommit(txn).WithContext(
            "committing the restored transaction of checkpoint " + std::to_string(checkpoint)));
      }
      for (const Txn& txn : restored_current_) {
        FRESHET_RETURN_IF_ERROR(writer_->RecoverAndAbort(txn).WithContext("recovering the restored open transaction"));
      }
      restored_pending_.clear();
      restored_current_.clear();
      restored_shared_.clear();
    }
    return BeginTransaction();
  }

  Status Write(const T& value, Timestamp ts) override {
    // No current transaction only when BeginTransaction failed at a barrier.
    if (!current_) FRESHET_RETURN_IF_ERROR(BeginTransaction());
    return writer_->Write(*current_, value, ts);
  }

  void Close() override { writer_->Close(); }

 private:
  enum class EntryKind : uint8_t { kPending = 0, kCurrent = 1 };

  // ---- SinkWriterContext -----------------------------------------------------

  Timestamp CurrentProcessingTime() const override { return processing_time_->CurrentProcessingTime(); }
  Timestamp CurrentWatermark() const override { return watermark_; }
  void RegisterProcessingTimer(Timestamp time) override {
    processing_time_->RegisterTimer(time, [this](Timestamp t) { OnTimer(t); });
  }

  void OnTimer(Timestamp time) {
    if (finished_ || !current_) return;
    Status s = InvokeUser(operator_name_, [&] { return writer_->OnProcessingTime(*current_, time); });
    if (!s.IsOk()) throw OperatorException(operator_name_, s.ToString());
  }

  Status BeginTransaction() {
    Result<Txn> txn = writer_->BeginTransaction();
    if (!txn.IsOk()) return txn.GetStatus().WithContext("beginning a transaction");
    current_ = std::move(*txn);
    return Status::Ok();
  }

  Status CommitPending(CheckpointId checkpoint, const Txn& txn) {
    return writer_->Commit(txn).WithContext("committing the transaction of checkpoint " + std::to_string(checkpoint));
  }

  // Entry: u8 kind, i64 checkpoint id (0 for the current transaction), the transaction.
  static std::string EncodeEntry(EntryKind kind, CheckpointId checkpoint, const Txn& txn) {
    ByteWriter w;
    auto k = static_cast<uint8_t>(kind);
    w.Write(&k, sizeof(k));
    w.Write(&checkpoint, sizeof(checkpoint));
    TypeSerializer<Txn>::Serialize(txn, w);
    return std::string(reinterpret_cast<const char*>(w.Data()), w.Size());
  }

  Status DecodeEntry(const std::string& entry) {
    ByteReader r(reinterpret_cast<const uint8_t*>(entry.data()), entry.size());
    uint8_t kind = 0;
    CheckpointId checkpoint = 0;
    r.Read(&kind, sizeof(kind));
    r.Read(&checkpoint, sizeof(checkpoint));
    Txn txn{};
    TypeSerializer<Txn>::Deserialize(r, txn);
    if (r.Failed() || r.Remaining() != 0 || kind > static_cast<uint8_t>(EntryKind::kCurrent)) {
      return Status::Corruption("a restored two-phase-commit transaction does not decode (" +
                                std::to_string(entry.size()) + " bytes)");
    }
    if (static_cast<EntryKind>(kind) == EntryKind::kPending) {
      restored_pending_.emplace_back(checkpoint, std::move(txn));
    } else {
      restored_current_.push_back(std::move(txn));
    }
    return Status::Ok();
  }

  std::unique_ptr<TwoPhaseCommitWriter<T, Txn>> writer_;
  std::string operator_name_;
  ProcessingTimeService* processing_time_ = nullptr;
  bool checkpointing_ = false;
  Timestamp watermark_ = kNoTimestamp;

  std::optional<Txn> current_;
  // The input ended: no transaction begins any more.
  bool finished_ = false;
  // `current_` went through PreCommit at the end of input.
  bool current_pre_committed_ = false;
  // Pre-committed transactions by the checkpoint that took them.
  std::map<CheckpointId, Txn> pending_;

  // Restored in InitializeState, settled in Open.
  bool restored_ = false;
  std::vector<std::pair<CheckpointId, Txn>> restored_pending_;
  std::vector<Txn> restored_current_;
  std::vector<std::string> restored_shared_;
};

}  // namespace internal

/// A sink whose writers commit by two-phase commit. Implement
/// CreateTransactionalWriter; SinkTo runs it like any Sink<T>.
template <class T, class Txn>
class TwoPhaseCommitSink : public Sink<T> {
 public:
  /// One writer per parallel subtask.
  virtual std::unique_ptr<TwoPhaseCommitWriter<T, Txn>> CreateTransactionalWriter(RuntimeContext& context) const = 0;

  std::unique_ptr<SinkWriter<T>> CreateWriter(RuntimeContext& context) const final {
    return std::make_unique<internal::TwoPhaseCommitSinkWriter<T, Txn>>(CreateTransactionalWriter(context));
  }
};

}  // namespace freshet

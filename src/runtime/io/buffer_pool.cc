#include "runtime/io/buffer_pool.h"

#include <chrono>

#include "freshet/internal/buffer.h"

namespace freshet::internal {

BufferPool::BufferPool(size_t segment_size, int num_segments)
    : segment_size_(segment_size),
      num_segments_(num_segments),
      memory_(new uint8_t[segment_size * static_cast<size_t>(num_segments)]) {
  for (int i = 0; i < num_segments; ++i) free_.push_back(memory_.get() + segment_size * static_cast<size_t>(i));
}

uint8_t* BufferPool::RequestBlocking() {
  std::unique_lock lock(mu_);
  if (!free_.empty()) {
    uint8_t* s = free_.front();
    free_.pop_front();
    return s;
  }
  auto start = std::chrono::steady_clock::now();
  cv_.wait(lock, [this] { return cancelled_ || !free_.empty(); });
  back_pressured_ns_ +=
      std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - start).count();
  if (cancelled_) return nullptr;
  uint8_t* s = free_.front();
  free_.pop_front();
  return s;
}

uint8_t* BufferPool::TryRequest() {
  std::lock_guard lock(mu_);
  if (free_.empty() || cancelled_) return nullptr;
  uint8_t* s = free_.front();
  free_.pop_front();
  return s;
}

void BufferPool::Recycle(uint8_t* segment) {
  {
    std::lock_guard lock(mu_);
    free_.push_back(segment);
  }
  cv_.notify_one();
  if (recycle_listener_ != nullptr) recycle_listener_->OnSegmentRecycled();
}

void BufferPool::Cancel() {
  {
    std::lock_guard lock(mu_);
    cancelled_ = true;
  }
  cv_.notify_all();
}

int BufferPool::AvailableSegments() const {
  std::lock_guard lock(mu_);
  return static_cast<int>(free_.size());
}

int64_t BufferPool::BackPressuredNanos() const {
  std::lock_guard lock(mu_);
  return back_pressured_ns_;
}

void Buffer::Recycle() {
  if (data_ == nullptr) return;
  if (pool_ != nullptr) {
    pool_->Recycle(data_);
  } else {
    delete[] data_;
  }
  data_ = nullptr;
  pool_ = nullptr;
  size_ = 0;
}

bool ChannelDeserializer::NextFromSpill(ElementView& out) {
  // Complete the header first, then the payload, from the current buffer.
  auto take = [this](size_t want) {
    size_t avail = static_cast<size_t>(end_ - pos_);
    size_t n = want < avail ? want : avail;
    spill_.insert(spill_.end(), pos_, pos_ + n);
    pos_ += n;
  };
  if (spill_.size() < kElementHeaderSize) {
    take(kElementHeaderSize - spill_.size());
    if (spill_.size() < kElementHeaderSize) return false;
  }
  uint32_t header;
  std::memcpy(&header, spill_.data(), sizeof(header));
  size_t total = kElementHeaderSize + (header >> 2);
  if (spill_.size() < total) take(total - spill_.size());
  if (spill_.size() < total) return false;
  out.tag = static_cast<ElementTag>(header & 3u);
  out.payload = spill_.data() + kElementHeaderSize;
  out.size = static_cast<uint32_t>(header >> 2);
  spill_consumed_ = true;
  return true;
}

}  // namespace freshet::internal

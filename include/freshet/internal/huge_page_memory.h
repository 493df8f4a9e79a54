#pragma once
/// Memory for the large arrays of the heap keyed-state backend (key index,
/// slot-array chunks, per-slot counters, snapshot buckets), aligned and
/// advised so that the kernel can back it with 2 MiB transparent huge
/// pages.
///
/// Why: on the virtual machines we measured, a page fault costs about
/// 10 us per 4 KiB page, far more than the work a restore or a growing key
/// index does per page; with a huge page one fault maps 2 MiB (about
/// 0.1 ms when the memory was in use recently, 1 to 6 ms when the host
/// has to provide it first). The kernel decides: with
/// /sys/kernel/mm/transparent_hugepage/enabled set to `madvise` (a common
/// default) only memory advised with MADV_HUGEPAGE gets huge pages, with
/// `always` all large enough memory does, with `never` none does (the
/// memory is then ordinary 4 KiB pages and everything works the same).
///
/// The memory comes from the process's allocator (posix_memalign), not
/// from mmap directly: memory freed elsewhere in the process (restore
/// buffers, an earlier backend) is reused without new page faults, and
/// the allocator's own policies and tunables keep applying (glibc adapts
/// its mmap and trim thresholds to the sizes it sees freed; the snapshot
/// writer's per-key-group buffers depend on that to be reused rather than
/// faulted in anew for every key group).

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <limits>
#include <memory>
#include <new>
#include <type_traits>

namespace freshet::internal {

inline constexpr size_t kHugePageBytes = size_t{2} << 20;

/// Allocates `bytes` starting at a 2 MiB boundary; with `huge`, advises
/// the kernel to back every whole 2 MiB of it with a huge page (a partial
/// 2 MiB at the end gets 4 KiB pages). The memory is not initialized and
/// not touched here. Free with FreeHugePageMemory. Throws std::bad_alloc.
/// Thread-safe.
inline void* AllocateHugePageMemory(size_t bytes, bool huge) {
  void* memory = nullptr;
  if (posix_memalign(&memory, kHugePageBytes, bytes == 0 ? 1 : bytes) != 0) throw std::bad_alloc();
  if (huge) {
    static const size_t page = static_cast<size_t>(sysconf(_SC_PAGESIZE));
    // Advice only: where it fails (no THP support) the memory keeps 4 KiB
    // pages. The range may end inside the allocator's next chunk: advice
    // is per page and harmless there.
    (void)madvise(memory, (bytes + page - 1) / page * page, MADV_HUGEPAGE);
  }
  return memory;
}

/// Frees memory from AllocateHugePageMemory. Thread-safe.
inline void FreeHugePageMemory(void* memory) noexcept { std::free(memory); }

/// A standard allocator that takes allocations of 2 MiB and more from
/// AllocateHugePageMemory and leaves smaller ones to std::allocator.
/// Stateless; all instances are equal.
template <class T>
class HugePageAllocator {
 public:
  using value_type = T;
  using is_always_equal = std::true_type;
  using propagate_on_container_move_assignment = std::true_type;

  HugePageAllocator() = default;
  template <class U>
  HugePageAllocator(const HugePageAllocator<U>&) noexcept {}  // NOLINT: converting, as allocators are

  T* allocate(size_t n) {
    if (n > std::numeric_limits<size_t>::max() / sizeof(T)) throw std::bad_array_new_length();
    if (!IsLarge(n)) return std::allocator<T>().allocate(n);
    static_assert(alignof(T) <= kHugePageBytes);
    return static_cast<T*>(AllocateHugePageMemory(n * sizeof(T), true));
  }
  void deallocate(T* p, size_t n) noexcept {
    if (!IsLarge(n)) {
      std::allocator<T>().deallocate(p, n);
    } else {
      FreeHugePageMemory(p);
    }
  }

  template <class U>
  bool operator==(const HugePageAllocator<U>&) const noexcept {
    return true;
  }

 private:
  static bool IsLarge(size_t n) { return n * sizeof(T) >= kHugePageBytes; }
};

}  // namespace freshet::internal

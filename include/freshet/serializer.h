#pragma once
/// Serialization of record types into bytes.
///
/// Every type that crosses a task boundary needs a `TypeSerializer<T>`:
///   template <class W> static void Serialize(const T& value, W& writer);
///   static void Deserialize(ByteReader& reader, T& value);
///   static constexpr size_t kFixedSize;   // bytes when constant, else 0
/// Built in: arithmetic types, enums, trivially copyable structs (memcpy),
/// std::string, std::pair, std::tuple, std::vector, std::optional, std::map,
/// std::unordered_map, std::array, and aggregate structs through Boost.PFR
/// (field by field). A user registers a serializer for another type by
/// specializing `freshet::TypeSerializer<TheirType>`.

#include <boost/pfr.hpp>

#include <array>
#include <cstdint>
#include <cstring>
#include <map>
#include <optional>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace freshet {

/// A growable byte sink. Reset() keeps the allocation, so a reused writer
/// does not allocate once it has grown to the largest record.
class ByteWriter {
 public:
  ByteWriter() = default;
  ByteWriter(const ByteWriter&) = delete;
  ByteWriter& operator=(const ByteWriter&) = delete;
  ~ByteWriter() { std::free(data_); }

  void Write(const void* bytes, size_t n) {
    if (n == 0) return;  // an empty container's data() may be null
    if (size_ + n > capacity_) Grow(size_ + n);
    std::memcpy(data_ + size_, bytes, n);
    size_ += n;
  }
  void Reset() { size_ = 0; }
  const uint8_t* Data() const { return data_; }
  size_t Size() const { return size_; }

 private:
  void Grow(size_t need) {
    size_t cap = capacity_ == 0 ? 256 : capacity_;
    while (cap < need) cap *= 2;
    auto* grown = static_cast<uint8_t*>(std::realloc(data_, cap));
    if (grown == nullptr) throw std::bad_alloc();
    data_ = grown;
    capacity_ = cap;
  }
  uint8_t* data_ = nullptr;
  size_t size_ = 0;
  size_t capacity_ = 0;
};

/// Writes into memory the caller has sized already (fixed-size records).
class UncheckedWriter {
 public:
  explicit UncheckedWriter(uint8_t* out) : out_(out) {}
  void Write(const void* bytes, size_t n) {
    std::memcpy(out_, bytes, n);
    out_ += n;
  }
  uint8_t* Position() const { return out_; }

 private:
  uint8_t* out_;
};

/// Bounds-checked reader. Reading past the end marks the reader failed and
/// yields zero bytes; callers check Failed() once per record.
class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size) : pos_(data), end_(data + size) {}
  bool Read(void* out, size_t n) {
    if (static_cast<size_t>(end_ - pos_) < n) {
      failed_ = true;
      std::memset(out, 0, n);
      pos_ = end_;
      return false;
    }
    if (n == 0) return true;  // an empty container's data() may be null
    std::memcpy(out, pos_, n);
    pos_ += n;
    return true;
  }
  /// Returns a pointer to `n` bytes in place, or nullptr (and fails) if short.
  const uint8_t* Take(size_t n) {
    if (static_cast<size_t>(end_ - pos_) < n) {
      failed_ = true;
      pos_ = end_;
      return nullptr;
    }
    const uint8_t* p = pos_;
    pos_ += n;
    return p;
  }
  size_t Remaining() const { return static_cast<size_t>(end_ - pos_); }
  bool Failed() const { return failed_; }
  void Fail() { failed_ = true; }

 private:
  const uint8_t* pos_;
  const uint8_t* end_;
  bool failed_ = false;
};

template <class T, class Enable = void>
struct TypeSerializer;

namespace internal {

template <class T>
inline constexpr bool kIsMemcpyable =
    std::is_trivially_copyable_v<T> && !std::is_pointer_v<T> && !std::is_member_pointer_v<T> &&
    (std::is_arithmetic_v<T> || std::is_enum_v<T> || std::is_class_v<T>);

template <class T>
struct IsStdContainerOrString : std::false_type {};

// Length prefix shared by variable-size serializers.
template <class W>
inline void WriteLength(W& w, size_t n) {
  uint32_t len = static_cast<uint32_t>(n);
  w.Write(&len, sizeof(len));
}
inline uint32_t ReadLength(ByteReader& r, size_t min_element_size) {
  uint32_t len = 0;
  r.Read(&len, sizeof(len));
  // A length that cannot fit in what is left is corruption, not an allocation request.
  if (min_element_size > 0 && static_cast<uint64_t>(len) * min_element_size > r.Remaining()) {
    r.Fail();
    return 0;
  }
  return len;
}

}  // namespace internal

/// Primary template: memcpy for trivially copyable types, field by field
/// through Boost.PFR for other aggregates.
template <class T, class Enable>
struct TypeSerializer {
  static_assert(internal::kIsMemcpyable<T> || std::is_aggregate_v<T>,
                "freshet: no serializer for this type; specialize freshet::TypeSerializer<T>");

  static constexpr size_t ComputeFixedSize() {
    if constexpr (internal::kIsMemcpyable<T>) {
      return sizeof(T);
    } else {
      return 0;
    }
  }
  static constexpr size_t kFixedSize = ComputeFixedSize();
  // Containers may copy runs of such values at once (a user specialization has no kBulkCopy).
  static constexpr bool kBulkCopy = internal::kIsMemcpyable<T>;

  template <class W>
  static void Serialize(const T& value, W& w) {
    if constexpr (internal::kIsMemcpyable<T>) {
      w.Write(&value, sizeof(T));
    } else {
      boost::pfr::for_each_field(value, [&w](const auto& field) {
        TypeSerializer<std::decay_t<decltype(field)>>::Serialize(field, w);
      });
    }
  }
  static void Deserialize(ByteReader& r, T& value) {
    if constexpr (internal::kIsMemcpyable<T>) {
      r.Read(&value, sizeof(T));
    } else {
      boost::pfr::for_each_field(value, [&r](auto& field) {
        TypeSerializer<std::decay_t<decltype(field)>>::Deserialize(r, field);
      });
    }
  }
};

namespace internal {
template <class T>
concept BulkCopyable = requires { requires TypeSerializer<T>::kBulkCopy; };
}  // namespace internal

template <>
struct TypeSerializer<std::string> {
  static constexpr size_t kFixedSize = 0;
  template <class W>
  static void Serialize(const std::string& s, W& w) {
    internal::WriteLength(w, s.size());
    w.Write(s.data(), s.size());
  }
  static void Deserialize(ByteReader& r, std::string& s) {
    uint32_t n = internal::ReadLength(r, 1);
    const uint8_t* p = r.Take(n);
    if (p == nullptr) {
      s.clear();
      return;
    }
    s.assign(reinterpret_cast<const char*>(p), n);
  }
};

template <class A, class B>
struct TypeSerializer<std::pair<A, B>, std::enable_if_t<!internal::kIsMemcpyable<std::pair<A, B>>>> {
  static constexpr size_t kFixedSize =
      (TypeSerializer<A>::kFixedSize && TypeSerializer<B>::kFixedSize)
          ? TypeSerializer<A>::kFixedSize + TypeSerializer<B>::kFixedSize
          : 0;
  template <class W>
  static void Serialize(const std::pair<A, B>& v, W& w) {
    TypeSerializer<A>::Serialize(v.first, w);
    TypeSerializer<B>::Serialize(v.second, w);
  }
  static void Deserialize(ByteReader& r, std::pair<A, B>& v) {
    TypeSerializer<A>::Deserialize(r, v.first);
    TypeSerializer<B>::Deserialize(r, v.second);
  }
};

template <class... Ts>
struct TypeSerializer<std::tuple<Ts...>, std::enable_if_t<!internal::kIsMemcpyable<std::tuple<Ts...>>>> {
  static constexpr size_t kFixedSize =
      ((TypeSerializer<Ts>::kFixedSize != 0) && ...) ? (TypeSerializer<Ts>::kFixedSize + ... + 0) : 0;
  template <class W>
  static void Serialize(const std::tuple<Ts...>& v, W& w) {
    std::apply([&w](const auto&... f) { (TypeSerializer<std::decay_t<decltype(f)>>::Serialize(f, w), ...); }, v);
  }
  static void Deserialize(ByteReader& r, std::tuple<Ts...>& v) {
    std::apply([&r](auto&... f) { (TypeSerializer<std::decay_t<decltype(f)>>::Deserialize(r, f), ...); }, v);
  }
};

template <class E, class A>
struct TypeSerializer<std::vector<E, A>> {
  static constexpr size_t kFixedSize = 0;
  template <class W>
  static void Serialize(const std::vector<E, A>& v, W& w) {
    internal::WriteLength(w, v.size());
    if constexpr (internal::BulkCopyable<E>) {
      w.Write(v.data(), v.size() * sizeof(E));
    } else {
      for (const auto& e : v) TypeSerializer<E>::Serialize(e, w);
    }
  }
  static void Deserialize(ByteReader& r, std::vector<E, A>& v) {
    constexpr size_t kMin = TypeSerializer<E>::kFixedSize;
    uint32_t n = internal::ReadLength(r, kMin);
    v.clear();
    if constexpr (internal::BulkCopyable<E>) {
      v.resize(n);
      r.Read(v.data(), n * sizeof(E));
    } else {
      v.reserve(std::min<size_t>(n, r.Remaining()));
      for (uint32_t i = 0; i < n && !r.Failed(); ++i) TypeSerializer<E>::Deserialize(r, v.emplace_back());
    }
  }
};

template <class E, size_t N>
struct TypeSerializer<std::array<E, N>, std::enable_if_t<!internal::kIsMemcpyable<std::array<E, N>>>> {
  static constexpr size_t kFixedSize = TypeSerializer<E>::kFixedSize * N;
  template <class W>
  static void Serialize(const std::array<E, N>& v, W& w) {
    for (const auto& e : v) TypeSerializer<E>::Serialize(e, w);
  }
  static void Deserialize(ByteReader& r, std::array<E, N>& v) {
    for (auto& e : v) TypeSerializer<E>::Deserialize(r, e);
  }
};

template <class E>
struct TypeSerializer<std::optional<E>> {
  static constexpr size_t kFixedSize = 0;
  template <class W>
  static void Serialize(const std::optional<E>& v, W& w) {
    uint8_t present = v.has_value() ? 1 : 0;
    w.Write(&present, 1);
    if (present) TypeSerializer<E>::Serialize(*v, w);
  }
  static void Deserialize(ByteReader& r, std::optional<E>& v) {
    uint8_t present = 0;
    r.Read(&present, 1);
    if (present == 0) {
      v.reset();
    } else if (present == 1) {
      TypeSerializer<E>::Deserialize(r, v.emplace());
    } else {
      r.Fail();
    }
  }
};

namespace internal {
template <class M>
struct MapSerializer {
  using K = typename M::key_type;
  using V = typename M::mapped_type;
  static constexpr size_t kFixedSize = 0;
  template <class W>
  static void Serialize(const M& m, W& w) {
    WriteLength(w, m.size());
    for (const auto& [k, v] : m) {
      TypeSerializer<K>::Serialize(k, w);
      TypeSerializer<V>::Serialize(v, w);
    }
  }
  static void Deserialize(ByteReader& r, M& m) {
    uint32_t n = ReadLength(r, TypeSerializer<K>::kFixedSize + TypeSerializer<V>::kFixedSize);
    m.clear();
    for (uint32_t i = 0; i < n && !r.Failed(); ++i) {
      K k{};
      V v{};
      TypeSerializer<K>::Deserialize(r, k);
      TypeSerializer<V>::Deserialize(r, v);
      m.emplace(std::move(k), std::move(v));
    }
  }
};
}  // namespace internal

template <class K, class V, class C, class A>
struct TypeSerializer<std::map<K, V, C, A>> : internal::MapSerializer<std::map<K, V, C, A>> {};
template <class K, class V, class H, class E, class A>
struct TypeSerializer<std::unordered_map<K, V, H, E, A>> : internal::MapSerializer<std::unordered_map<K, V, H, E, A>> {
};

/// Serializes `value` into `out` (cleared first). Convenience for tests and tools.
template <class T>
void SerializeToBytes(const T& value, ByteWriter& out) {
  out.Reset();
  TypeSerializer<T>::Serialize(value, out);
}

/// Decodes a whole byte range into `value`; false when the bytes are short
/// or have bytes left over.
template <class T>
bool DeserializeFromBytes(const uint8_t* data, size_t size, T& value) {
  ByteReader r(data, size);
  TypeSerializer<T>::Deserialize(r, value);
  return !r.Failed() && r.Remaining() == 0;
}

}  // namespace freshet

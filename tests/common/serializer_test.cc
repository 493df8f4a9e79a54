#include "freshet/serializer.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <map>
#include <new>
#include <optional>
#include <random>
#include <string>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

// ---- allocation tracking ------------------------------------------------------
// The largest single allocation made while tracking is on, so tests can check
// that corrupt length prefixes never turn into huge allocation requests.

namespace {
std::atomic<bool> g_track_allocations{false};
std::atomic<size_t> g_largest_allocation{0};

void* TrackedAlloc(size_t n) {
  if (g_track_allocations.load(std::memory_order_relaxed)) {
    size_t prev = g_largest_allocation.load(std::memory_order_relaxed);
    while (n > prev && !g_largest_allocation.compare_exchange_weak(prev, n)) {
    }
  }
  void* p = std::malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}
}  // namespace

void* operator new(size_t n) { return TrackedAlloc(n); }
void* operator new[](size_t n) { return TrackedAlloc(n); }
void operator delete(void* p) noexcept { std::free(p); }
void operator delete[](void* p) noexcept { std::free(p); }
void operator delete(void* p, size_t) noexcept { std::free(p); }
void operator delete[](void* p, size_t) noexcept { std::free(p); }

namespace freshet {
namespace {

class AllocationTracker {
 public:
  AllocationTracker() {
    g_largest_allocation.store(0);
    g_track_allocations.store(true);
  }
  ~AllocationTracker() { g_track_allocations.store(false); }
  size_t Largest() const { return g_largest_allocation.load(); }
};

// ---- test types ------------------------------------------------------------------

enum class Color : uint8_t { kRed = 1, kGreen = 2, kBlue = 200 };
enum Plain { kPlainA = -5, kPlainB = 70000 };

struct PodPoint {
  int32_t x;
  double y;
  char tag;
  bool operator==(const PodPoint&) const = default;
};

struct Person {
  std::string name;
  int32_t age;
  std::vector<std::string> tags;
  std::optional<double> score;
  bool operator==(const Person&) const = default;
};

struct Outer {
  Person person;
  std::map<std::string, std::vector<int32_t>> groups;
  std::pair<int64_t, std::string> labelled;
  bool operator==(const Outer&) const = default;
};

// Trivially copyable but not an aggregate: copied byte for byte.
class Packed {
 public:
  Packed() = default;
  Packed(int16_t a, int64_t b) : a_(a), b_(b) {}
  bool operator==(const Packed&) const = default;

 private:
  int16_t a_ = 0;
  int64_t b_ = 0;
};

// Neither trivially copyable nor an aggregate: needs a registered serializer.
class Money {
 public:
  Money() = default;
  Money(std::string currency, int64_t cents) : currency_(std::move(currency)), cents_(cents) {}
  const std::string& Currency() const { return currency_; }
  int64_t Cents() const { return cents_; }
  bool operator==(const Money&) const = default;

 private:
  std::string currency_;
  int64_t cents_ = 0;
};

// Trivially copyable, but registered with a compact two-byte encoding.
struct Tenths {
  int32_t value;
  bool operator==(const Tenths&) const = default;
};

}  // namespace

template <>
struct TypeSerializer<Tenths> {
  static constexpr size_t kFixedSize = 2;
  template <class W>
  static void Serialize(const Tenths& t, W& w) {
    int16_t v = static_cast<int16_t>(t.value);
    w.Write(&v, sizeof(v));
  }
  static void Deserialize(ByteReader& r, Tenths& t) {
    int16_t v = 0;
    r.Read(&v, sizeof(v));
    t.value = v;
  }
};

// Writes cents first, then the currency as exactly three bytes.
template <>
struct TypeSerializer<Money> {
  static constexpr size_t kFixedSize = 0;
  template <class W>
  static void Serialize(const Money& m, W& w) {
    int64_t cents = m.Cents();
    w.Write(&cents, sizeof(cents));
    char code[3] = {' ', ' ', ' '};
    for (size_t i = 0; i < 3 && i < m.Currency().size(); ++i) code[i] = m.Currency()[i];
    w.Write(code, 3);
  }
  static void Deserialize(ByteReader& r, Money& m) {
    int64_t cents = 0;
    r.Read(&cents, sizeof(cents));
    const uint8_t* code = r.Take(3);
    if (code == nullptr) return;
    m = Money(std::string(reinterpret_cast<const char*>(code), 3), cents);
  }
};

namespace {

// ---- helpers ---------------------------------------------------------------------

std::vector<uint8_t> Encode(const auto& value) {
  ByteWriter w;
  SerializeToBytes(value, w);
  return std::vector<uint8_t>(w.Data(), w.Data() + w.Size());
}

template <class T>
T RoundTrip(const T& value) {
  std::vector<uint8_t> bytes = Encode(value);
  if constexpr (TypeSerializer<T>::kFixedSize > 0) {
    EXPECT_EQ(bytes.size(), TypeSerializer<T>::kFixedSize) << "fixed-size type wrote another byte count";
  }
  T out{};
  EXPECT_TRUE(DeserializeFromBytes(bytes.data(), bytes.size(), out));
  return out;
}

// Every proper prefix of an encoding must be rejected, and so must the
// encoding followed by an extra byte.
template <class T>
void ExpectTruncationsAndTrailingBytesFail(const T& value) {
  std::vector<uint8_t> bytes = Encode(value);
  for (size_t n = 0; n < bytes.size(); ++n) {
    T out{};
    EXPECT_FALSE(DeserializeFromBytes(bytes.data(), n, out)) << "prefix of " << n << " of " << bytes.size();
  }
  bytes.push_back(0x5a);
  T out{};
  EXPECT_FALSE(DeserializeFromBytes(bytes.data(), bytes.size(), out)) << "trailing byte accepted";
}

std::vector<uint8_t> LengthPrefix(uint32_t n) {
  std::vector<uint8_t> out(4);
  std::memcpy(out.data(), &n, 4);
  return out;
}

// ---- arithmetic and enums --------------------------------------------------------------

template <class T>
class ArithmeticRoundTripTest : public ::testing::Test {};
using ArithmeticTypes = ::testing::Types<bool, char, int8_t, uint8_t, int16_t, uint16_t, int32_t, uint32_t,
                                         int64_t, uint64_t, float, double>;
TYPED_TEST_SUITE(ArithmeticRoundTripTest, ArithmeticTypes);

TYPED_TEST(ArithmeticRoundTripTest, ExtremesAndZeroRoundTrip) {
  using T = TypeParam;
  static_assert(TypeSerializer<T>::kFixedSize == sizeof(T));
  for (T v : {std::numeric_limits<T>::min(), std::numeric_limits<T>::max(), std::numeric_limits<T>::lowest(),
              T{}, static_cast<T>(1)}) {
    EXPECT_EQ(RoundTrip(v), v);
  }
}

TYPED_TEST(ArithmeticRoundTripTest, TruncatedBytesFail) {
  ExpectTruncationsAndTrailingBytesFail(static_cast<TypeParam>(1));
}

TEST(SerializerTest, FloatingPointSpecialValuesRoundTrip) {
  EXPECT_TRUE(std::isnan(RoundTrip(std::numeric_limits<double>::quiet_NaN())));
  EXPECT_EQ(RoundTrip(std::numeric_limits<double>::infinity()), std::numeric_limits<double>::infinity());
  EXPECT_EQ(RoundTrip(-std::numeric_limits<float>::infinity()), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::signbit(RoundTrip(-0.0)));
  EXPECT_EQ(RoundTrip(std::numeric_limits<double>::denorm_min()), std::numeric_limits<double>::denorm_min());
}

TEST(SerializerTest, EnumsRoundTripWithTheirUnderlyingSize) {
  static_assert(TypeSerializer<Color>::kFixedSize == 1);
  static_assert(TypeSerializer<Plain>::kFixedSize == sizeof(Plain));
  EXPECT_EQ(RoundTrip(Color::kRed), Color::kRed);
  EXPECT_EQ(RoundTrip(Color::kBlue), Color::kBlue);
  EXPECT_EQ(RoundTrip(kPlainA), kPlainA);
  EXPECT_EQ(RoundTrip(kPlainB), kPlainB);
}

// ---- strings ----------------------------------------------------------------------

TEST(SerializerTest, EmptyStringRoundTripsAsJustALengthPrefix) {
  std::vector<uint8_t> bytes = Encode(std::string());
  EXPECT_EQ(bytes, LengthPrefix(0));
  EXPECT_EQ(RoundTrip(std::string()), "");
}

TEST(SerializerTest, StringsRoundTrip) {
  EXPECT_EQ(RoundTrip(std::string("hello")), "hello");
  std::string with_nuls("a\0b\0\xff", 5);
  EXPECT_EQ(RoundTrip(with_nuls), with_nuls);
  EXPECT_EQ(Encode(std::string("abc")).size(), 4u + 3u);
}

TEST(SerializerTest, LargeStringRoundTrips) {
  std::string big(3 * 1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<char>(i * 131 + 7);
  std::string out = RoundTrip(big);
  EXPECT_EQ(out.size(), big.size());
  EXPECT_TRUE(out == big);
}

TEST(SerializerTest, StringTruncationsFail) {
  ExpectTruncationsAndTrailingBytesFail(std::string("truncate me"));
  ExpectTruncationsAndTrailingBytesFail(std::string());
}

TEST(SerializerTest, AllocationTrackerSeesLargeAllocations) {
  size_t largest;
  {
    AllocationTracker tracker;
    std::vector<uint8_t> big(1 << 20);
    big[12] = 1;
    largest = tracker.Largest();
    EXPECT_EQ(big[12], 1);
  }
  EXPECT_GE(largest, size_t{1} << 20);
}

TEST(SerializerTest, HugeStringLengthPrefixFailsWithoutAllocating) {
  std::vector<uint8_t> bytes = LengthPrefix(4000000000u);
  bytes.insert(bytes.end(), {'a', 'b', 'c'});
  std::string out = "previous";
  size_t largest;
  bool ok;
  {
    AllocationTracker tracker;
    ByteReader r(bytes.data(), bytes.size());
    TypeSerializer<std::string>::Deserialize(r, out);
    ok = !r.Failed();
    largest = tracker.Largest();
  }
  EXPECT_FALSE(ok);
  EXPECT_LT(largest, 4096u);
  EXPECT_TRUE(out.empty());
}

TEST(SerializerTest, StringLengthOneBeyondTheDataFails) {
  std::vector<uint8_t> bytes = LengthPrefix(4);
  bytes.insert(bytes.end(), {'a', 'b', 'c'});
  std::string out;
  EXPECT_FALSE(DeserializeFromBytes(bytes.data(), bytes.size(), out));
  bytes.push_back('d');
  EXPECT_TRUE(DeserializeFromBytes(bytes.data(), bytes.size(), out));
  EXPECT_EQ(out, "abcd");
}

// ---- pairs, tuples, arrays -----------------------------------------------------------------

TEST(SerializerTest, PairsRoundTrip) {
  std::pair<int32_t, double> fixed{-7, 2.5};
  static_assert(TypeSerializer<std::pair<int32_t, double>>::kFixedSize == 12);
  EXPECT_EQ(RoundTrip(fixed), fixed);
  std::pair<std::string, int64_t> mixed{"key", 1LL << 40};
  static_assert(TypeSerializer<std::pair<std::string, int64_t>>::kFixedSize == 0);
  EXPECT_EQ(RoundTrip(mixed), mixed);
  ExpectTruncationsAndTrailingBytesFail(mixed);
  ExpectTruncationsAndTrailingBytesFail(fixed);
}

TEST(SerializerTest, TuplesRoundTrip) {
  std::tuple<int8_t, int64_t, float> fixed{-1, 123456789012LL, 0.25f};
  static_assert(TypeSerializer<std::tuple<int8_t, int64_t, float>>::kFixedSize == 1 + 8 + 4);
  EXPECT_EQ(RoundTrip(fixed), fixed);
  std::tuple<std::string, int32_t, std::vector<int16_t>> mixed{"t", 5, {1, 2, 3}};
  static_assert(TypeSerializer<decltype(mixed)>::kFixedSize == 0);
  EXPECT_EQ(RoundTrip(mixed), mixed);
  ExpectTruncationsAndTrailingBytesFail(mixed);
  ExpectTruncationsAndTrailingBytesFail(fixed);
}

TEST(SerializerTest, ArraysRoundTrip) {
  std::array<int32_t, 4> pod{1, -2, 3, -4};
  static_assert(TypeSerializer<std::array<int32_t, 4>>::kFixedSize == sizeof(pod));
  EXPECT_EQ(RoundTrip(pod), pod);
  std::array<std::string, 3> strings{"x", "", "zzz"};
  static_assert(TypeSerializer<std::array<std::string, 3>>::kFixedSize == 0);
  EXPECT_EQ(RoundTrip(strings), strings);
  std::array<std::pair<int16_t, int32_t>, 2> pairs{{{1, 2}, {3, 4}}};
  static_assert(TypeSerializer<decltype(pairs)>::kFixedSize == 2 * (2 + 4));
  EXPECT_EQ(RoundTrip(pairs), pairs);
  ExpectTruncationsAndTrailingBytesFail(strings);
  ExpectTruncationsAndTrailingBytesFail(pairs);
}

// ---- vectors -------------------------------------------------------------------------------

TEST(SerializerTest, VectorsOfPodsRoundTrip) {
  EXPECT_EQ(RoundTrip(std::vector<int64_t>{}), std::vector<int64_t>{});
  std::vector<int64_t> v;
  for (int64_t i = 0; i < 5000; ++i) v.push_back(i * i - 77);
  EXPECT_EQ(RoundTrip(v), v);
  EXPECT_EQ(Encode(v).size(), 4 + v.size() * sizeof(int64_t));
  std::vector<PodPoint> points{{1, 2.0, 'a'}, {-1, -2.5, 'z'}};
  EXPECT_EQ(RoundTrip(points), points);
  ExpectTruncationsAndTrailingBytesFail(std::vector<int32_t>{1, 2, 3});
  ExpectTruncationsAndTrailingBytesFail(std::vector<int32_t>{});
}

TEST(SerializerTest, VectorsOfStringsRoundTrip) {
  std::vector<std::string> v{"", "a", std::string(1000, 'q'), "end"};
  EXPECT_EQ(RoundTrip(v), v);
  ExpectTruncationsAndTrailingBytesFail(v);
}

TEST(SerializerTest, DeserializingReplacesPreviousContents) {
  std::vector<uint8_t> bytes = Encode(std::vector<int32_t>{9});
  std::vector<int32_t> out{1, 2, 3, 4};
  ASSERT_TRUE(DeserializeFromBytes(bytes.data(), bytes.size(), out));
  EXPECT_EQ(out, std::vector<int32_t>{9});
  std::vector<uint8_t> map_bytes = Encode(std::map<int32_t, int32_t>{{5, 6}});
  std::map<int32_t, int32_t> m{{1, 1}, {2, 2}};
  ASSERT_TRUE(DeserializeFromBytes(map_bytes.data(), map_bytes.size(), m));
  EXPECT_EQ(m, (std::map<int32_t, int32_t>{{5, 6}}));
  std::vector<uint8_t> none = Encode(std::optional<int32_t>());
  std::optional<int32_t> o = 3;
  ASSERT_TRUE(DeserializeFromBytes(none.data(), none.size(), o));
  EXPECT_FALSE(o.has_value());
}

TEST(SerializerTest, HugeVectorCountsFailWithoutLargeAllocations) {
  std::vector<uint8_t> bytes = LengthPrefix(4000000000u);
  bytes.insert(bytes.end(), {1, 2, 3, 4, 5, 6, 7, 8});
  size_t largest;
  bool pod_failed;
  bool string_failed;
  bool nested_failed;
  {
    AllocationTracker tracker;
    std::vector<int64_t> pods;
    pod_failed = !DeserializeFromBytes(bytes.data(), bytes.size(), pods);
    std::vector<std::string> strings;
    string_failed = !DeserializeFromBytes(bytes.data(), bytes.size(), strings);
    std::vector<std::vector<int32_t>> nested;
    nested_failed = !DeserializeFromBytes(bytes.data(), bytes.size(), nested);
    largest = tracker.Largest();
  }
  EXPECT_TRUE(pod_failed);
  EXPECT_TRUE(string_failed);
  EXPECT_TRUE(nested_failed);
  EXPECT_LT(largest, 64u * 1024u);
}

// ---- optionals and maps ---------------------------------------------------------------------

TEST(SerializerTest, OptionalsRoundTrip) {
  EXPECT_FALSE(RoundTrip(std::optional<int32_t>()).has_value());
  EXPECT_EQ(RoundTrip(std::optional<int32_t>(42)), 42);
  EXPECT_EQ(RoundTrip(std::optional<std::string>("s")), "s");
  EXPECT_EQ(RoundTrip(std::optional<std::string>("")), "");
  EXPECT_EQ(Encode(std::optional<int32_t>()).size(), 1u);
  EXPECT_EQ(Encode(std::optional<int32_t>(1)).size(), 5u);
  ExpectTruncationsAndTrailingBytesFail(std::optional<std::string>("abc"));
  ExpectTruncationsAndTrailingBytesFail(std::optional<int64_t>());
}

TEST(SerializerTest, OptionalWithInvalidPresenceByteFails) {
  for (uint8_t flag : {2, 7, 255}) {
    std::vector<uint8_t> bytes{flag, 0, 0, 0, 0};
    std::optional<int32_t> out;
    EXPECT_FALSE(DeserializeFromBytes(bytes.data(), bytes.size(), out)) << int{flag};
  }
}

TEST(SerializerTest, MapsRoundTrip) {
  std::map<std::string, int32_t> ordered{{"a", 1}, {"b", -2}, {"", 0}};
  EXPECT_EQ(RoundTrip(ordered), ordered);
  EXPECT_EQ(RoundTrip(std::map<int32_t, double>{}), (std::map<int32_t, double>{}));
  std::map<int32_t, std::vector<std::string>> nested{{1, {"x", "y"}}, {2, {}}};
  EXPECT_EQ(RoundTrip(nested), nested);
  ExpectTruncationsAndTrailingBytesFail(ordered);
  ExpectTruncationsAndTrailingBytesFail(std::map<int32_t, int32_t>{{1, 2}, {3, 4}});
}

TEST(SerializerTest, UnorderedMapsRoundTrip) {
  std::unordered_map<int64_t, std::string> m;
  for (int64_t i = 0; i < 300; ++i) m[i * 7919] = std::to_string(i);
  EXPECT_EQ(RoundTrip(m), m);
  std::unordered_map<std::string, std::pair<int32_t, int32_t>> pairs{{"p", {1, 2}}, {"q", {3, 4}}};
  EXPECT_EQ(RoundTrip(pairs), pairs);
  ExpectTruncationsAndTrailingBytesFail(pairs);
}

TEST(SerializerTest, HugeMapCountFailsWithoutLargeAllocations) {
  std::vector<uint8_t> bytes = LengthPrefix(4000000000u);
  bytes.insert(bytes.end(), {1, 0, 0, 0, 2, 0, 0, 0});
  size_t largest;
  bool fixed_failed;
  bool string_failed;
  {
    AllocationTracker tracker;
    std::map<int32_t, int32_t> fixed;
    fixed_failed = !DeserializeFromBytes(bytes.data(), bytes.size(), fixed);
    std::unordered_map<std::string, std::string> strings;
    string_failed = !DeserializeFromBytes(bytes.data(), bytes.size(), strings);
    largest = tracker.Largest();
  }
  EXPECT_TRUE(fixed_failed);
  EXPECT_TRUE(string_failed);
  EXPECT_LT(largest, 64u * 1024u);
}

// ---- structs -------------------------------------------------------------------------------

TEST(SerializerTest, TriviallyCopyableStructsAreCopiedWhole) {
  static_assert(TypeSerializer<PodPoint>::kFixedSize == sizeof(PodPoint));
  static_assert(TypeSerializer<Packed>::kFixedSize == sizeof(Packed));
  PodPoint p{42, -0.5, 'k'};
  EXPECT_EQ(RoundTrip(p), p);
  EXPECT_EQ(Encode(p).size(), sizeof(PodPoint));
  Packed packed(-3, 1LL << 50);
  EXPECT_EQ(RoundTrip(packed), packed);
  ExpectTruncationsAndTrailingBytesFail(p);
}

TEST(SerializerTest, AggregateStructsWithStringsGoFieldByField) {
  static_assert(TypeSerializer<Person>::kFixedSize == 0);
  Person p{"Ada", 36, {"math", "engines"}, 9.5};
  EXPECT_EQ(RoundTrip(p), p);
  Person empty{};
  EXPECT_EQ(RoundTrip(empty), empty);
  // name (4 + 3) + age (4) + tags (4 + 4 + 4 + 4 + 7) + score (1 + 8).
  EXPECT_EQ(Encode(p).size(), 7u + 4u + 23u + 9u);
  ExpectTruncationsAndTrailingBytesFail(p);
}

TEST(SerializerTest, NestedAggregatesRoundTrip) {
  Outer o{{"Bob", 20, {"t"}, std::nullopt}, {{"g1", {1, 2, 3}}, {"g2", {}}}, {-9, "nine"}};
  EXPECT_EQ(RoundTrip(o), o);
  std::vector<Outer> many(3, o);
  many[1].person.name = "Carol";
  many[2].groups.clear();
  EXPECT_EQ(RoundTrip(many), many);
  ExpectTruncationsAndTrailingBytesFail(o);
}

TEST(SerializerTest, NestedContainersRoundTrip) {
  std::vector<std::map<std::string, std::optional<std::vector<int32_t>>>> v{
      {{"a", std::vector<int32_t>{1}}, {"b", std::nullopt}}, {}, {{"c", std::vector<int32_t>{}}}};
  EXPECT_EQ(RoundTrip(v), v);
  std::tuple<std::pair<int32_t, std::string>, std::array<std::optional<int8_t>, 2>> t{{1, "one"}, {int8_t{3}, {}}};
  EXPECT_EQ(RoundTrip(t), t);
  ExpectTruncationsAndTrailingBytesFail(v);
  ExpectTruncationsAndTrailingBytesFail(t);
}

// ---- user-registered serializer ---------------------------------------------------------------

TEST(SerializerTest, UserRegisteredSerializerIsUsed) {
  Money m("EUR", 1999);
  std::vector<uint8_t> bytes = Encode(m);
  ASSERT_EQ(bytes.size(), 8u + 3u);
  EXPECT_EQ(std::string(bytes.begin() + 8, bytes.end()), "EUR");
  EXPECT_EQ(RoundTrip(m), m);
}

TEST(SerializerTest, UserRegisteredSerializerComposesWithContainers) {
  std::vector<Money> wallet{{"USD", 5}, {"JPY", -100}};
  EXPECT_EQ(RoundTrip(wallet), wallet);
  std::map<std::string, Money> accounts{{"a", {"GBP", 1}}};
  EXPECT_EQ(RoundTrip(accounts), accounts);
  std::optional<Money> maybe = Money("CHF", 7);
  EXPECT_EQ(RoundTrip(maybe), maybe);
  ExpectTruncationsAndTrailingBytesFail(wallet);
}

TEST(SerializerTest, RegisteredSerializerOfATriviallyCopyableTypeIsUsedInsideVectors) {
  EXPECT_EQ(Encode(Tenths{-12}).size(), 2u);
  std::vector<Tenths> v{{1}, {-2}, {300}};
  EXPECT_EQ(Encode(v).size(), 4u + 3u * 2u) << "the vector copied the values instead of using their serializer";
  EXPECT_EQ(RoundTrip(v), v);
  std::vector<uint8_t> bytes = LengthPrefix(3);
  bytes.insert(bytes.end(), {1, 0, 2, 0});  // two of three values
  std::vector<Tenths> out;
  EXPECT_FALSE(DeserializeFromBytes(bytes.data(), bytes.size(), out));
  std::pair<Tenths, Tenths> p{{5}, {6}};
  static_assert(TypeSerializer<std::pair<Tenths, Tenths>>::kFixedSize == 4);
  EXPECT_EQ(RoundTrip(p), p);
}

TEST(SerializerTest, VectorsOfOptionalsEncodeEachElementLikeAnOptional) {
  std::vector<std::optional<int32_t>> v{1, std::nullopt, 3};
  EXPECT_EQ(Encode(v).size(), 4u + 5u + 1u + 5u);
  EXPECT_EQ(RoundTrip(v), v);
  ExpectTruncationsAndTrailingBytesFail(v);
}

// ---- readers and writers -----------------------------------------------------------------------

TEST(ByteReaderTest, ReadPastEndFailsAndZeroesOutput) {
  uint8_t data[3] = {1, 2, 3};
  ByteReader r(data, sizeof(data));
  uint16_t a = 0;
  EXPECT_TRUE(r.Read(&a, 2));
  EXPECT_EQ(r.Remaining(), 1u);
  uint32_t b = 0xffffffff;
  EXPECT_FALSE(r.Read(&b, 4));
  EXPECT_EQ(b, 0u);
  EXPECT_TRUE(r.Failed());
  EXPECT_EQ(r.Remaining(), 0u);
  EXPECT_EQ(r.Take(1), nullptr);
}

TEST(ByteReaderTest, TakeReturnsBytesInPlace) {
  uint8_t data[4] = {9, 8, 7, 6};
  ByteReader r(data, sizeof(data));
  const uint8_t* p = r.Take(3);
  ASSERT_EQ(p, data);
  EXPECT_EQ(r.Remaining(), 1u);
  EXPECT_EQ(r.Take(2), nullptr);
  EXPECT_TRUE(r.Failed());
}

TEST(ByteReaderTest, EmptyInputFailsForEveryType) {
  int32_t i = 0;
  std::string s;
  std::vector<int32_t> v;
  std::optional<int32_t> o;
  Person p;
  EXPECT_FALSE(DeserializeFromBytes(nullptr, 0, i));
  EXPECT_FALSE(DeserializeFromBytes(nullptr, 0, s));
  EXPECT_FALSE(DeserializeFromBytes(nullptr, 0, v));
  EXPECT_FALSE(DeserializeFromBytes(nullptr, 0, o));
  EXPECT_FALSE(DeserializeFromBytes(nullptr, 0, p));
}

TEST(ByteWriterTest, ResetKeepsWritingFromTheStart) {
  ByteWriter w;
  std::string big(10000, 'x');
  SerializeToBytes(big, w);
  EXPECT_EQ(w.Size(), 10004u);
  const uint8_t* data = w.Data();
  SerializeToBytes(int32_t{7}, w);
  EXPECT_EQ(w.Size(), 4u);
  EXPECT_EQ(w.Data(), data) << "a reset writer reallocated";
  int32_t out = 0;
  EXPECT_TRUE(DeserializeFromBytes(w.Data(), w.Size(), out));
  EXPECT_EQ(out, 7);
}

TEST(ByteWriterTest, UncheckedWriterMatchesByteWriterForFixedSizeTypes) {
  std::tuple<int32_t, double, int8_t> value{5, 1.25, -2};
  constexpr size_t kSize = TypeSerializer<decltype(value)>::kFixedSize;
  static_assert(kSize == 13);
  std::array<uint8_t, kSize + 1> out{};
  out[kSize] = 0xee;
  UncheckedWriter w(out.data());
  TypeSerializer<decltype(value)>::Serialize(value, w);
  EXPECT_EQ(w.Position(), out.data() + kSize);
  EXPECT_EQ(out[kSize], 0xee);
  std::vector<uint8_t> expected = Encode(value);
  EXPECT_TRUE(std::equal(expected.begin(), expected.end(), out.begin()));
}

TEST(SerializerTest, RandomBytesNeverCrashAndConsumedEncodingsReEncodeIdentically) {
  std::mt19937 rng(1234);
  int decoded = 0;
  for (int round = 0; round < 3000; ++round) {
    std::vector<uint8_t> bytes(rng() % 48);
    for (uint8_t& b : bytes) b = static_cast<uint8_t>(rng() % 6 == 0 ? rng() : rng() % 4);
    Outer out{};
    if (DeserializeFromBytes(bytes.data(), bytes.size(), out)) {
      ++decoded;
      // Re-encoding must reproduce the input unless a map dropped a duplicate key.
      std::vector<uint8_t> again = Encode(out);
      EXPECT_LE(again.size(), bytes.size());
    }
    std::vector<std::map<std::string, std::optional<int64_t>>> nested;
    DeserializeFromBytes(bytes.data(), bytes.size(), nested);
  }
  SUCCEED() << decoded << " random inputs decoded";
}

}  // namespace
}  // namespace freshet

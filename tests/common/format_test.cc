#include "freshet/format.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <map>
#include <optional>
#include <ostream>
#include <string>
#include <string_view>
#include <tuple>
#include <unordered_map>
#include <utility>
#include <vector>

namespace freshet {
namespace {

enum class Level : int8_t { kLow = -1, kHigh = 9 };

struct Point {
  int32_t x;
  int32_t y;
};

struct Named {
  std::string name;
  double weight;
  std::vector<int32_t> ids;
};

struct Empty {};

// Has both an operator<< and aggregate fields: the operator wins.
struct Celsius {
  double degrees;
};
std::ostream& operator<<(std::ostream& os, const Celsius& c) { return os << c.degrees << "C"; }

class Opaque {
 public:
  explicit Opaque(int id) : id_(id) {}
  friend std::ostream& operator<<(std::ostream& os, const Opaque& o) { return os << "Opaque#" << o.id_; }

 private:
  int id_;
};

TEST(FormatTest, Integers) {
  EXPECT_EQ(ToText(0), "0");
  EXPECT_EQ(ToText(-42), "-42");
  EXPECT_EQ(ToText(int64_t{1} << 40), "1099511627776");
  EXPECT_EQ(ToText(std::numeric_limits<int64_t>::min()), "-9223372036854775808");
  EXPECT_EQ(ToText(std::numeric_limits<uint64_t>::max()), "18446744073709551615");
  EXPECT_EQ(ToText(static_cast<uint8_t>(200)), "200");
  EXPECT_EQ(ToText(static_cast<int8_t>(-7)), "-7");
  EXPECT_EQ(ToText(static_cast<int16_t>(300)), "300");
}

TEST(FormatTest, FloatingPointUsesShortestRoundTripForm) {
  EXPECT_EQ(ToText(1.5), "1.5");
  EXPECT_EQ(ToText(0.1), "0.1");
  EXPECT_EQ(ToText(-2.25f), "-2.25");
  EXPECT_EQ(ToText(100.0), "100");
  std::string third = ToText(1.0 / 3.0);
  EXPECT_EQ(std::stod(third), 1.0 / 3.0) << third;
}

TEST(FormatTest, BoolsAndChars) {
  EXPECT_EQ(ToText(true), "true");
  EXPECT_EQ(ToText(false), "false");
  EXPECT_EQ(ToText('x'), "x");
}

TEST(FormatTest, EnumsAsTheirUnderlyingNumber) {
  EXPECT_EQ(ToText(Level::kLow), "-1");
  EXPECT_EQ(ToText(Level::kHigh), "9");
}

TEST(FormatTest, StringsAsTheyAre) {
  EXPECT_EQ(ToText(std::string("hello world")), "hello world");
  EXPECT_EQ(ToText(std::string()), "");
  EXPECT_EQ(ToText(std::string_view("view")), "view");
  EXPECT_EQ(ToText("literal"), "literal");
  const char* c_string = "pointer";
  EXPECT_EQ(ToText(c_string), "pointer");
}

TEST(FormatTest, PairsInParenthesesWithoutSpace) {
  EXPECT_EQ(ToText(std::pair<std::string, int>{"a", 1}), "(a,1)");
  EXPECT_EQ(ToText(std::pair<int, std::pair<int, bool>>{1, {2, true}}), "(1,(2,true))");
}

TEST(FormatTest, Tuples) {
  EXPECT_EQ(ToText(std::tuple<int, std::string, double>{1, "b", 2.5}), "(1,b,2.5)");
  EXPECT_EQ(ToText(std::tuple<int>{7}), "(7)");
  EXPECT_EQ(ToText(std::tuple<>{}), "()");
}

TEST(FormatTest, VectorsInBracketsWithCommaSpace) {
  EXPECT_EQ(ToText(std::vector<int>{1, 2}), "[1, 2]");
  EXPECT_EQ(ToText(std::vector<int>{}), "[]");
  EXPECT_EQ(ToText(std::vector<std::string>{"x"}), "[x]");
  EXPECT_EQ(ToText(std::vector<std::vector<int>>{{1}, {}, {2, 3}}), "[[1], [], [2, 3]]");
  EXPECT_EQ(ToText(std::vector<std::pair<std::string, int>>{{"a", 1}, {"b", 2}}), "[(a,1), (b,2)]");
}

TEST(FormatTest, OptionalsAsValueOrNull) {
  EXPECT_EQ(ToText(std::optional<int>(5)), "5");
  EXPECT_EQ(ToText(std::optional<int>()), "null");
  EXPECT_EQ(ToText(std::optional<std::string>("s")), "s");
  EXPECT_EQ(ToText(std::vector<std::optional<int>>{1, std::nullopt}), "[1, null]");
}

TEST(FormatTest, MapsAsKeyEqualsValue) {
  EXPECT_EQ(ToText(std::map<std::string, int>{{"b", 2}, {"a", 1}}), "{a=1, b=2}");
  EXPECT_EQ(ToText(std::map<int, int>{}), "{}");
  EXPECT_EQ(ToText(std::map<int, std::vector<int>>{{1, {2, 3}}}), "{1=[2, 3]}");
  std::unordered_map<int, std::string> single{{3, "three"}};
  EXPECT_EQ(ToText(single), "{3=three}");
  std::unordered_map<int, int> two{{1, 10}, {2, 20}};
  std::string text = ToText(two);
  EXPECT_TRUE(text == "{1=10, 2=20}" || text == "{2=20, 1=10}") << text;
}

TEST(FormatTest, AggregateStructsInBraces) {
  EXPECT_EQ(ToText(Point{3, -4}), "{3, -4}");
  EXPECT_EQ(ToText(Named{"n", 0.5, {1, 2}}), "{n, 0.5, [1, 2]}");
  EXPECT_EQ(ToText(Empty{}), "{}");
  EXPECT_EQ(ToText(std::vector<Point>{{1, 2}, {3, 4}}), "[{1, 2}, {3, 4}]");
  EXPECT_EQ(ToText(std::pair<Point, int>{{0, 0}, 1}), "({0, 0},1)");
}

TEST(FormatTest, StreamOperatorIsUsedWhenPresent) {
  EXPECT_EQ(ToText(Opaque(12)), "Opaque#12");
  EXPECT_EQ(ToText(Celsius{21.5}), "21.5C");
  EXPECT_EQ(ToText(std::vector<Opaque>{Opaque(1), Opaque(2)}), "[Opaque#1, Opaque#2]");
}

TEST(FormatTest, AppendTextAppendsToExistingText) {
  std::string out = "x=";
  AppendText(out, 5);
  out += ' ';
  AppendText(out, std::pair<int, int>{1, 2});
  EXPECT_EQ(out, "x=5 (1,2)");
}

}  // namespace
}  // namespace freshet

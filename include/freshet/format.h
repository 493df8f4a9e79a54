#pragma once
/// Text form of records, used by Print and the text-file sink:
/// strings as they are, numbers in decimal, pairs and tuples as "(a,b)",
/// vectors as "[a, b]", optionals as the value or "null", maps as
/// "{k=v, ...}", aggregate structs as "{a, b}", and any type with an
/// `operator<<` through it.

#include <boost/pfr.hpp>
#include <fmt/format.h>

#include <map>
#include <optional>
#include <ostream>
#include <sstream>
#include <string>
#include <tuple>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace freshet {

template <class T>
void AppendText(std::string& out, const T& value);

namespace internal {
template <class T>
concept Streamable = requires(std::ostream& os, const T& v) { os << v; };
template <class M>
void AppendMapText(std::string& out, const M& m) {
  out += '{';
  bool first = true;
  for (const auto& [k, v] : m) {
    if (!first) out += ", ";
    first = false;
    AppendText(out, k);
    out += '=';
    AppendText(out, v);
  }
  out += '}';
}
template <class T>
struct TextFormat {
  static void Append(std::string& out, const T& v) {
    if constexpr (std::is_same_v<T, bool>) {
      out += v ? "true" : "false";
    } else if constexpr (std::is_same_v<T, char>) {
      out += v;
    } else if constexpr (std::is_arithmetic_v<T>) {
      fmt::format_to(std::back_inserter(out), "{}", v);
    } else if constexpr (std::is_enum_v<T>) {
      fmt::format_to(std::back_inserter(out), "{}", static_cast<std::underlying_type_t<T>>(v));
    } else if constexpr (std::is_convertible_v<const T&, std::string_view>) {
      out += std::string_view(v);
    } else if constexpr (Streamable<T>) {
      std::ostringstream os;
      os << v;
      out += os.str();
    } else if constexpr (std::is_aggregate_v<T>) {
      out += '{';
      bool first = true;
      boost::pfr::for_each_field(v, [&](const auto& f) {
        if (!first) out += ", ";
        first = false;
        AppendText(out, f);
      });
      out += '}';
    } else {
      static_assert(sizeof(T) == 0, "freshet: no text form for this type; give it an operator<<");
    }
  }
};
template <class A, class B>
struct TextFormat<std::pair<A, B>> {
  static void Append(std::string& out, const std::pair<A, B>& v) {
    out += '(';
    AppendText(out, v.first);
    out += ',';
    AppendText(out, v.second);
    out += ')';
  }
};
template <class... Ts>
struct TextFormat<std::tuple<Ts...>> {
  static void Append(std::string& out, const std::tuple<Ts...>& v) {
    out += '(';
    size_t i = 0;
    std::apply([&](const auto&... f) { ((out += (i++ ? "," : ""), AppendText(out, f)), ...); }, v);
    out += ')';
  }
};
template <class E, class A>
struct TextFormat<std::vector<E, A>> {
  static void Append(std::string& out, const std::vector<E, A>& v) {
    out += '[';
    for (size_t i = 0; i < v.size(); ++i) {
      if (i) out += ", ";
      AppendText(out, v[i]);
    }
    out += ']';
  }
};
template <class E>
struct TextFormat<std::optional<E>> {
  static void Append(std::string& out, const std::optional<E>& v) {
    if (v) {
      AppendText(out, *v);
    } else {
      out += "null";
    }
  }
};
template <class K, class V, class C, class A>
struct TextFormat<std::map<K, V, C, A>> {
  static void Append(std::string& out, const std::map<K, V, C, A>& m) { AppendMapText(out, m); }
};
template <class K, class V, class H, class E, class A>
struct TextFormat<std::unordered_map<K, V, H, E, A>> {
  static void Append(std::string& out, const std::unordered_map<K, V, H, E, A>& m) { AppendMapText(out, m); }
};
}  // namespace internal

template <class T>
void AppendText(std::string& out, const T& value) {
  internal::TextFormat<T>::Append(out, value);
}

template <class T>
std::string ToText(const T& value) {
  std::string out;
  AppendText(out, value);
  return out;
}

}  // namespace freshet

#pragma once
// Small text helpers shared by the parsers (INI, search space, split files).
#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace lmsweep {

inline std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

inline std::string to_lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// A metric's name as epoch lines, objectives and SQL use it: a letter or '_', then letters,
// digits, '_', '-' or '.' (no quote can reach SQL or a JSON path through it).
inline bool is_metric_name(std::string_view name) {
  if (name.empty() || name.size() > 64 || !(std::isalpha(static_cast<unsigned char>(name[0])) || name[0] == '_'))
    return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

}  // namespace lmsweep

// Locale-independent number parsing and "did you mean" suggestions.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace shrink {

/// Decimal integer: optional sign, digits, no leading zeros ("017" is refused because
/// YAML 1.1 readers take it as octal), no spaces. Never looks at the process locale.
std::optional<int64_t> parse_decimal_int(std::string_view text);

/// Finite decimal number in C syntax ("0.5", "1e-3", "-2"); refuses inf/nan spellings,
/// hex floats, leading-zero integers and anything else.
std::optional<double> parse_finite_double(std::string_view text);

/// The candidate nearest to `word` by edit distance, if it is near enough to be a typo.
std::optional<std::string> nearest_word(std::string_view word, const std::vector<std::string>& candidates);

/// ", did you mean 'X'?" or "" when nothing is near.
std::string did_you_mean(std::string_view word, const std::vector<std::string>& candidates);

/// Shortest text that parses back to the same double, without locale ("0.02", "1e-05").
std::string format_double(double value);
/// `value` through a printf format with one double conversion (e.g. "%.4f").
std::string format_number(const char* format, double value);

std::vector<std::string> split(std::string_view text, char separator);

}  // namespace shrink

// Reading a JSON document from outside (tokenizer.json, config.json, a shard index) with
// errors that name the file and the key: "config.json: num_key_value_heads: must divide
// num_attention_heads (32), got 5".
#pragma once

#include "util/errors.hpp"

#include <nlohmann/json.hpp>

#include <cstdint>
#include <filesystem>
#include <string>

namespace shrink {

class json_fields {
  public:
    using json = nlohmann::json;

    explicit json_fields(std::filesystem::path file) : file_(std::move(file)) {}

    /// Parses `text`, refusing what is not JSON or not an object.
    json parse_object(const std::string& text) const;

    [[noreturn]] void fail(const std::string& key, const std::string& message) const;

    /// object[key]; missing is an error naming path.key.
    const json& field(const json& object, const std::string& key, const std::string& path) const;
    /// A string (UTF-8: the parser refuses any other).
    std::string string_of(const json& v, const std::string& key) const;
    /// object[key] as a boolean; absent or null gives `fallback`.
    bool bool_of(const json& object, const std::string& key, const std::string& path, bool fallback) const;
    /// An integer in [lo, hi].
    int64_t int_of(const json& v, const std::string& key, int64_t lo, int64_t hi) const;
    /// A finite number in [lo, hi].
    double number_of(const json& v, const std::string& key, double lo, double hi) const;

    const std::filesystem::path& file() const { return file_; }

  private:
    std::filesystem::path file_;
};

/// "a.b" or "b" when the path is empty.
inline std::string json_key(const std::string& path, const std::string& key) { return path.empty() ? key : path + "." + key; }

}  // namespace shrink

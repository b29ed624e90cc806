#include "util/json_fields.hpp"

#include <cmath>

namespace shrink {

nlohmann::json json_fields::parse_object(const std::string& text) const {
    json doc;
    try {
        doc = json::parse(text);
    } catch (const json::exception& e) {
        fail("", std::string("not valid JSON: ") + e.what());
    }
    if (!doc.is_object()) fail("", "must be a JSON object");
    return doc;
}

void json_fields::fail(const std::string& key, const std::string& message) const {
    throw input_error(file_.string() + ": " + (key.empty() ? "" : key + ": ") + message);
}

const nlohmann::json& json_fields::field(const json& object, const std::string& key, const std::string& path) const {
    auto it = object.find(key);
    if (it == object.end()) fail(json_key(path, key), "missing");
    return *it;
}

std::string json_fields::string_of(const json& v, const std::string& key) const {
    if (!v.is_string()) fail(key, "must be a string, got " + std::string(v.type_name()));
    return v.get<std::string>();  // the parser refuses strings that are not UTF-8
}

bool json_fields::bool_of(const json& object, const std::string& key, const std::string& path, bool fallback) const {
    auto it = object.find(key);
    if (it == object.end() || it->is_null()) return fallback;
    if (!it->is_boolean()) fail(json_key(path, key), "must be true or false, got " + std::string(it->type_name()));
    return it->get<bool>();
}

int64_t json_fields::int_of(const json& v, const std::string& key, int64_t lo, int64_t hi) const {
    const std::string range = std::to_string(lo) + ".." + std::to_string(hi);
    if (!v.is_number_integer()) fail(key, "must be an integer in " + range + ", got " + v.dump().substr(0, 40));
    // nlohmann holds a non-negative integer as unsigned: both bounds apply to it too.
    const bool outside = v.is_number_unsigned() ? (v.get<uint64_t>() > uint64_t(hi) || (lo > 0 && v.get<uint64_t>() < uint64_t(lo)))
                                                : (v.get<int64_t>() < lo || v.get<int64_t>() > hi);
    if (outside)
        fail(key, v.dump() + " is outside " + range);
    return v.get<int64_t>();
}

double json_fields::number_of(const json& v, const std::string& key, double lo, double hi) const {
    if (!v.is_number()) fail(key, "must be a number, got " + v.dump().substr(0, 40));
    const double d = v.get<double>();
    if (!std::isfinite(d) || d < lo || d > hi) fail(key, v.dump() + " is outside " + nlohmann::json(lo).dump() + ".." + nlohmann::json(hi).dump());
    return d;
}

}  // namespace shrink

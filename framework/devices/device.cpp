#include "devices/device.hpp"

#include <cctype>

namespace shrink {

std::optional<device_choice> parse_device(const std::string& text) {
    if (text == "cpu") return device_choice{};
    if (text == "cuda") return device_choice{true, 0};
    const std::string prefix = "cuda:";
    if (text.rfind(prefix, 0) != 0 || text.size() == prefix.size() || text.size() > prefix.size() + 3) return std::nullopt;
    int n = 0;
    for (size_t i = prefix.size(); i < text.size(); ++i) {
        if (!std::isdigit(static_cast<unsigned char>(text[i]))) return std::nullopt;
        n = n * 10 + (text[i] - '0');
    }
    return device_choice{true, n};
}

bool is_device_name(const std::string& text) { return text == "auto" || parse_device(text).has_value(); }

}  // namespace shrink

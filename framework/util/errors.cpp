#include "util/errors.hpp"

namespace shrink {

std::string format_diagnostic(const source_mark& where, const std::string& message) {
    std::string out = where.file.empty() ? "shrink" : where.file;
    if (where.line > 0) {
        out.append(":").append(std::to_string(where.line));
        if (where.column > 0) out.append(":").append(std::to_string(where.column));
    }
    return out.append(": error: ").append(message);
}

void diagnostics::throw_if_any() const {
    if (messages_.empty()) return;
    std::string all;
    for (const std::string& m : messages_) all += (all.empty() ? "" : "\n") + m;
    throw input_error(all);
}

}  // namespace shrink

// Host functions called by plugin code across the C boundary: an exception must never
// unwind into plugin frames, so each one runs its body here and answers with a status
// and the message.
#pragma once

#include <shrink/abi.h>

#include <cstdio>
#include <exception>

namespace shrink {

template <class F>
shrink_status guarded(shrink_error* error, F&& f) noexcept {
    try {
        f();
        return SHRINK_OK;
    } catch (const std::exception& e) {
        if (error) std::snprintf(error->message, sizeof error->message, "%s", e.what());
    } catch (...) {
        if (error) std::snprintf(error->message, sizeof error->message, "unknown error in the host");
    }
    return SHRINK_FAILED;
}

}  // namespace shrink

#include "cpu/threading.hpp"

#include <omp.h>
#include <tbb/global_control.h>

#include <memory>
#include <thread>

#include <unistd.h>

namespace shrink::cpu {

namespace {
int current = 0;
std::unique_ptr<tbb::global_control> tbb_limit;
}  // namespace

void set_thread_count(int threads) {
    if (threads <= 0) threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
    current = threads;
    omp_set_num_threads(threads);
    tbb_limit.reset();
    tbb_limit = std::make_unique<tbb::global_control>(tbb::global_control::max_allowed_parallelism, size_t(threads));
}

int64_t l2_cache_bytes() {
    const long bytes = sysconf(_SC_LEVEL2_CACHE_SIZE);
    return bytes > 0 ? int64_t(bytes) : int64_t(1) << 20;
}

int thread_count() {
    if (current == 0) set_thread_count(0);
    return current;
}

}  // namespace shrink::cpu

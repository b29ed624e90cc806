#include "text/windows.hpp"
#include "util/random.hpp"

#include <algorithm>

namespace shrink::text {

int64_t window_count(int64_t tokens, int64_t seq_len) { return seq_len > 0 && tokens > 0 ? tokens / seq_len : 0; }

window_split split_windows(int64_t windows) {
    window_split s;
    for (int64_t i = 0; i < windows; ++i) (i % 10 == 9 ? s.evaluation : s.fitting).push_back(i);
    return s;
}

std::vector<int64_t> sample_windows(const std::vector<int64_t>& from, int64_t samples, uint64_t seed) {
    if (samples >= int64_t(from.size())) return from;
    std::vector<int64_t> pool = from;
    rng g(seed);
    g.shuffle(pool.begin(), pool.end());
    pool.resize(size_t(std::max<int64_t>(samples, 0)));
    std::sort(pool.begin(), pool.end());  // text order: what a stage reads does not depend on the shuffle's order
    return pool;
}

}  // namespace shrink::text

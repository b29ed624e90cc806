// A tokenized text cut into windows for language models: non-overlapping runs of seq_len
// tokens, with a fixed held-out split so that calibration and training never see what
// evaluation measures.
//
// The split: window i is held out for evaluation when i % 10 == 9 (every tenth, spread
// over the whole text so both parts come from the same mix of it); the rest are for
// calibration and training. The tail shorter than seq_len is left out.
#pragma once

#include <cstdint>
#include <vector>

namespace shrink::text {

struct window_split {
    std::vector<int64_t> fitting;     // calibration and training windows, in text order
    std::vector<int64_t> evaluation;  // held out
};

/// How many whole windows of seq_len tokens `tokens` holds.
int64_t window_count(int64_t tokens, int64_t seq_len);

window_split split_windows(int64_t windows);

/// `samples` of `from`, drawn without replacement by `seed` (all of them, in order, when
/// samples >= from.size()); the same seed gives the same windows on every platform.
std::vector<int64_t> sample_windows(const std::vector<int64_t>& from, int64_t samples, uint64_t seed);

}  // namespace shrink::text

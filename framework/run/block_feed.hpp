// A split run through the model one block at a time: every calibration sample through a
// decoder block (or a layer of a model without blocks) before the next block starts, the
// value between blocks held for all samples. A stage may change a block's weights once
// the block has seen every sample; the samples then go through the changed block before
// the next one sees them, which is GPTQ's sequential calibration (each block calibrated
// on the outputs of the blocks before it as already quantized).
#pragma once

#include "cpu/engine.hpp"
#include "run/split_feed.hpp"

#include <cstdint>
#include <functional>

namespace shrink {

struct block_observer {
    runner::layer_input_fn on_layer_input;  // the block's linear layers' inputs, a batch at a time
    /// After every batch went through block `index` (of `count`); the observer may change
    /// weights of the model then.
    std::function<void(const engine::block& b, size_t index, size_t count)> on_block_end;
    std::function<void(size_t index, size_t count, uint64_t done, uint64_t total)> on_progress;
};

/// What it reports.
struct block_pass {
    size_t blocks = 0;
    size_t rerun = 0;          // blocks run again because their weights changed
    uint64_t samples = 0;
    uint64_t stream_bytes = 0; // the most bytes held between blocks (two copies of the carried value)
};

/// Runs up to max_samples (0 = all) of `view` through `m` block by block on the CPU
/// engine, in the batches forward_batches uses. Throws std::runtime_error for a model the
/// engine cannot cut into blocks (one with convolutions) and when on_block_end changes the
/// graph.
block_pass forward_blocks(const model& m, const split_view& view, uint64_t max_samples, const block_observer& observer);

/// The bytes forward_blocks holds between blocks for `rows` rows (tokens or images) of a
/// model whose widest value between blocks has `width` floats a row: two copies.
inline uint64_t block_stream_bytes(uint64_t rows, uint64_t width) { return 2 * rows * width * sizeof(float); }

}  // namespace shrink

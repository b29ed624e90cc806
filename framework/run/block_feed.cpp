#include "run/block_feed.hpp"

#include <stdexcept>

namespace shrink {

namespace {

std::vector<std::string> graph_names(const model& m) {
    std::vector<std::string> out;
    for (const layer& l : m.layers) out.push_back(l.name + "|" + l.weight);
    return out;
}

}  // namespace

block_pass forward_blocks(const model& m, const split_view& view, uint64_t max_samples, const block_observer& observer) {
    engine e(m);
    const std::vector<engine::block>& blocks = e.blocks();
    if (blocks.empty())
        throw std::runtime_error("block-by-block runs need a model without convolutions (values between conv layers may lie in "
                                 "blocked layouts); this model has conv layers");
    const batch_feed feed(m, view, max_samples);
    std::vector<int64_t> first_row{0};
    for (size_t b = 0; b < feed.batches(); ++b) first_row.push_back(first_row.back() + feed.rows(b));
    const uint64_t total_rows = uint64_t(first_row.back());
    const std::vector<std::string> graph = graph_names(m);

    block_pass pass;
    pass.blocks = blocks.size();
    pass.samples = feed.samples();
    std::vector<float> carried, next, last_out, input;
    std::vector<int32_t> labels;
    for (size_t k = 0; k < blocks.size(); ++k) {
        const engine::block& bl = blocks[k];
        // The last block's output (the logits) goes nowhere: one batch's worth is kept at a time.
        const bool keep = k + 1 < blocks.size();
        next.assign(keep ? size_t(total_rows * uint64_t(bl.out_width)) : 0, 0.0f);
        pass.stream_bytes = std::max<uint64_t>(pass.stream_bytes, (carried.size() + next.size()) * sizeof(float));
        auto run_all = [&](const runner::layer_input_fn& on_input, bool report) {
            for (size_t b = 0; b < feed.batches(); ++b) {
                const int64_t rows = feed.fill(b, input, labels);
                float* out = next.data() + first_row[b] * bl.out_width;
                if (!keep) {
                    last_out.resize(size_t(rows * bl.out_width));
                    out = last_out.data();
                }
                e.run_block(k, input.data(), carried.data() + first_row[b] * bl.in_width, rows, on_input, out);
                if (report && observer.on_progress) observer.on_progress(k, blocks.size(), feed.samples_through(b), feed.samples());
            }
        };
        run_all(observer.on_layer_input, true);
        if (observer.on_block_end) observer.on_block_end(bl, k, blocks.size());
        if (graph_names(m) != graph)
            throw std::runtime_error("the graph changed during a block-by-block run (after block '" + bl.name +
                                     "'); only weights may change there");
        // Changed weights: the block's outputs are computed again through them.
        if (e.reload_weights(m) && keep) {
            run_all({}, false);
            ++pass.rerun;
        }
        carried.swap(next);
    }
    return pass;
}

}  // namespace shrink

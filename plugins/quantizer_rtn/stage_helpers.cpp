#include "stage_helpers.hpp"

#include <algorithm>

namespace rtn_stage {

std::vector<shrink::layer> layers_to_quantize(shrink::stage_context& ctx, const char* stage) {
    std::vector<shrink::layer> out;
    const std::vector<std::string> only = ctx.params().layers("layers");
    for (const shrink::layer& l : ctx.model().layers()) {
        if (!l.has_matrix() || (!only.empty() && std::find(only.begin(), only.end(), l.name) == only.end())) continue;
        const shrink_tensor_info info = ctx.model().info(l.weight);
        if (info.encoding & SHRINK_ENCODING_QUANTIZED)
            throw shrink::plugin_error("layer '" + l.name + "' is already quantized to " + std::to_string(info.bits) +
                                       " bits; " + stage + " does not re-quantize");
        out.push_back(l);
    }
    return out;
}

/// Floats of a weight read at a time on the CPU: per-channel and per-group scales depend on
/// their row alone, so a weight far larger than this is quantized a block of rows at a time
/// (the same codes as all at once) and never held whole as floats.
constexpr uint64_t block_floats = uint64_t(1) << 20;

rtn::result quantize_on_cpu(const shrink::model& m, const shrink::layer& l, const rtn::options& o) {
    const uint64_t rows = l.out_features, cols = l.in_features;
    const uint64_t block_rows = std::max<uint64_t>(1, block_floats / std::max<uint64_t>(cols, 1));
    if (o.gran == rtn::granularity::per_tensor || block_rows >= rows) {  // one scale for all: the whole tensor
        const std::vector<float> w = m.read(l.weight);
        return rtn::quantize(w.data(), rows, cols, o);
    }
    rtn::result all;
    all.q.reserve(rows * cols);
    for (uint64_t first = 0; first < rows; first += block_rows) {
        const uint64_t count = std::min(block_rows, rows - first);
        const std::vector<float> w = m.read_rows(l.weight, first, count);
        rtn::result r = rtn::quantize(w.data(), count, cols, o);
        all.group_size = r.group_size;
        all.q.insert(all.q.end(), r.q.begin(), r.q.end());
        all.scales.insert(all.scales.end(), r.scales.begin(), r.scales.end());
        all.zero_points.insert(all.zero_points.end(), r.zero_points.begin(), r.zero_points.end());
    }
    return all;
}

void write_quantized(shrink::model& m, const shrink::layer& l, const rtn::options& o, rtn::result r) {
    m.write(l.weight, shrink::quantized::of(o.bits, o.symmetric, r.group_size, std::move(r.q), std::move(r.scales), std::move(r.zero_points)));
}

}  // namespace rtn_stage

// calibrator.percentile, calibrator.mse and calibrator.entropy: like calibrator.minmax they
// record each linear layer's input range (input_min, input_max: the fact
// "activation_ranges") for 8-bit activation quantization, but clipped where the few
// largest values would cost the many small ones their resolution. Two passes over the
// calibration samples: each layer's extremes, then a histogram of 2,048 bins over them;
// the range is chosen from the histogram (clip_search.hpp).
#include "clip_search.hpp"

#include <shrink/plugin.hpp>

#include <algorithm>
#include <limits>
#include <map>

namespace {

constexpr size_t bins = 2048;

enum class method { percentile, mse, entropy };

void run(shrink::stage_context& ctx, method how) {
    const uint64_t samples_wanted = uint64_t(ctx.params().integer("samples"));
    std::map<std::string, clip::range> extremes;
    uint64_t samples = 0;
    ctx.model().forward(SHRINK_SPLIT_CALIBRATION, samples_wanted, true, [&](const shrink_forward_event& e) {
        if (e.kind == SHRINK_FORWARD_OUTPUT) {
            samples += e.rows;
            return;
        }
        clip::range& r = extremes[e.layer];  // starts at [0, 0]: ranges hold 0
        const auto [lo, hi] = std::minmax_element(e.data, e.data + e.rows * e.cols);
        r.lo = std::min(r.lo, double(*lo));
        r.hi = std::max(r.hi, double(*hi));
    });
    std::map<std::string, clip::histogram> histograms;
    for (const auto& [layer, r] : extremes) histograms.emplace(layer, clip::histogram(r.lo, r.hi, bins));
    ctx.model().forward(SHRINK_SPLIT_CALIBRATION, samples_wanted, true, [&](const shrink_forward_event& e) {
        if (e.kind != SHRINK_FORWARD_OUTPUT) histograms.at(e.layer).add(e.data, e.rows * e.cols);
    });
    double kept = 0;  // the mean fraction of each layer's full range the clip keeps
    for (const auto& [layer, h] : histograms) {
        const clip::range r = how == method::percentile ? clip::percentile_range(h, ctx.params().real("percentile"))
                              : how == method::mse      ? clip::mse_range(h)
                                                        : clip::entropy_range(h);
        ctx.model().put_artifact<float>(layer, "input_min", {float(r.lo)});
        ctx.model().put_artifact<float>(layer, "input_max", {float(r.hi)});
        const clip::range& full = extremes.at(layer);
        kept += full.hi > full.lo ? (r.hi - r.lo) / (full.hi - full.lo) : 1.0;
    }
    const double layers = double(histograms.size());
    ctx.result("samples", double(samples));
    ctx.result("mean_range_kept", layers ? kept / layers : 1.0);
    ctx.log("clipped the input ranges of " + std::to_string(histograms.size()) + " layers from " + std::to_string(samples) +
            " samples, keeping " + std::to_string(int(100 * (layers ? kept / layers : 1.0) + 0.5)) + "% of the full range on average");
}

shrink::stage_type calibrator(const char* name, const char* doc, method how, std::vector<shrink::param> extra = {}) {
    std::vector<shrink::param> params{shrink::param::integer("samples", 512, 1, 1000000, "at most this many calibration samples")};
    params.insert(params.end(), extra.begin(), extra.end());
    return {.name = name,
            .doc = doc,
            .params = params,
            .facts = {shrink::fact::requires_("calibration_data"), shrink::fact::provides("activation_ranges")},
            .devices = SHRINK_DEVICE_CPU,
            .expected_drop = {},
            .run = [how](shrink::stage_context& ctx) { run(ctx, how); },
            .resources = SHRINK_RESOURCE_FORWARD,
            .time_class = SHRINK_TIME_DATA};
}

shrink::plugin make_plugin() {
    shrink::plugin p("shrink-calibrator-clip", "0.1.0");
    p.add(calibrator("calibrator.percentile", "per-layer input ranges clipped at a percentile of the calibration values (and its mirror)",
                     method::percentile,
                     {shrink::param::real("percentile", "99.99", 50.01, 100, "keep values between the (100 - p)th and the pth percentile")}));
    p.add(calibrator("calibrator.mse", "per-layer input ranges clipped to the least expected squared error of 8-bit quantization",
                     method::mse));
    p.add(calibrator("calibrator.entropy",
                     "per-layer input ranges clipped to the least KL divergence between the values and their 8-bit levels (TensorRT's method)",
                     method::entropy));
    return p;
}

}  // namespace

SHRINK_PLUGIN(make_plugin)

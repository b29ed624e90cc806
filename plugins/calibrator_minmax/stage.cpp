// calibrator.minmax: runs calibration samples through the model and records each linear
// layer's input range as two f32 artifacts of one value, input_min and input_max: the fact
// "activation_ranges".
#include <shrink/plugin.hpp>

#include <algorithm>
#include <limits>
#include <map>

namespace {

void run(shrink::stage_context& ctx) {
    struct range {
        float lo = std::numeric_limits<float>::infinity();
        float hi = -std::numeric_limits<float>::infinity();
    };
    std::map<std::string, range> ranges;
    uint64_t samples = 0;
    ctx.model().forward(SHRINK_SPLIT_CALIBRATION, uint64_t(ctx.params().integer("samples")), true,
                        [&](const shrink_forward_event& e) {
                            if (e.kind == SHRINK_FORWARD_OUTPUT) {
                                samples += e.rows;
                                return;
                            }
                            range& r = ranges[e.layer];
                            const auto [lo, hi] = std::minmax_element(e.data, e.data + e.rows * e.cols);
                            r.lo = std::min(r.lo, *lo);
                            r.hi = std::max(r.hi, *hi);
                        });
    for (const auto& [layer, r] : ranges) {
        ctx.model().put_artifact<float>(layer, "input_min", {r.lo});
        ctx.model().put_artifact<float>(layer, "input_max", {r.hi});
    }
    ctx.result("samples", double(samples));
    ctx.log("recorded input ranges of " + std::to_string(ranges.size()) + " layers from " + std::to_string(samples) + " samples");
}

shrink::plugin make_plugin() {
    shrink::plugin p("shrink-calibrator-minmax", "0.1.0");
    p.add({.name = "calibrator.minmax",
           .doc = "per-layer input activation ranges (min/max) from calibration samples",
           .params = {shrink::param::integer("samples", 512, 1, 1000000, "at most this many calibration samples")},
           .facts = {shrink::fact::requires_("calibration_data"), shrink::fact::provides("activation_ranges")},
           .devices = SHRINK_DEVICE_CPU,
           .expected_drop = {},
           .run = run,
           .resources = SHRINK_RESOURCE_FORWARD,
           .time_class = SHRINK_TIME_DATA});
    return p;
}

}  // namespace

SHRINK_PLUGIN(make_plugin)

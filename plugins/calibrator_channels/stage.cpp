// calibrator.channels: each linear layer's per-input-channel magnitudes on the calibration
// samples, as two f32 artifacts of the layer's input width: channel_absmax (max |x_j|) and
// channel_mean_abs (mean |x_j| over every row: a token, an image). The fact
// "channel_magnitudes", which transform.smoothquant reads (and AWQ will).
#include <shrink/plugin.hpp>

#include <algorithm>
#include <cmath>
#include <map>

namespace {

struct magnitudes {
    std::vector<float> absmax;
    std::vector<double> sum;
    uint64_t rows = 0;
};

void run(shrink::stage_context& ctx) {
    std::map<std::string, bool> linear;
    for (const shrink::layer& l : ctx.model().layers()) linear[l.name] = l.op == "linear";
    std::map<std::string, magnitudes> seen;
    uint64_t samples = 0;
    ctx.model().forward(SHRINK_SPLIT_CALIBRATION, uint64_t(ctx.params().integer("samples")), true, [&](const shrink_forward_event& e) {
        if (e.kind == SHRINK_FORWARD_OUTPUT) {
            samples += e.rows;
            return;
        }
        if (!linear[e.layer]) return;  // a conv's input is its image, not the patches its weight multiplies
        magnitudes& m = seen[e.layer];
        m.absmax.resize(e.cols, 0.0f);
        m.sum.resize(e.cols, 0.0);
        for (uint64_t r = 0; r < e.rows; ++r) {
            const float* x = e.data + r * e.cols;
            for (uint64_t j = 0; j < e.cols; ++j) {
                const float a = std::fabs(x[j]);
                m.absmax[j] = std::max(m.absmax[j], a);
                m.sum[j] += a;
            }
        }
        m.rows += e.rows;
    });
    for (const auto& [layer, m] : seen) {
        std::vector<float> mean(m.sum.size());
        for (size_t j = 0; j < mean.size(); ++j) mean[j] = float(m.sum[j] / double(std::max<uint64_t>(1, m.rows)));
        ctx.model().put_artifact<float>(layer, "channel_absmax", m.absmax, {m.absmax.size()});
        ctx.model().put_artifact<float>(layer, "channel_mean_abs", mean, {mean.size()});
    }
    ctx.result("layers", double(seen.size()));
    ctx.result("samples", double(samples));
    ctx.log("recorded the input channel magnitudes of " + std::to_string(seen.size()) + " linear layers from " + std::to_string(samples) +
            " samples");
}

shrink::plugin make_plugin() {
    shrink::plugin p("shrink-calibrator-channels", "0.1.0");
    p.add({.name = "calibrator.channels",
           .doc = "each linear layer's per-input-channel max |x| and mean |x| from calibration samples (for transform.smoothquant)",
           .params = {shrink::param::integer("samples", 512, 1, 100000000, "at most this many calibration samples (windows or images)")},
           .facts = {shrink::fact::requires_("calibration_data"), shrink::fact::provides("channel_magnitudes")},
           .devices = SHRINK_DEVICE_CPU,
           .expected_drop = {},
           .run = run,
           .resources = SHRINK_RESOURCE_FORWARD,
           .time_class = SHRINK_TIME_DATA});
    return p;
}

}  // namespace

SHRINK_PLUGIN(make_plugin)

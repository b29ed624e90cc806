// calibrator.hessian: each linear layer's input second moments X^T X over the calibration
// samples (float64, in x in, summed over every row: a token of a language model, an image
// of a classifier; each batch's product in float on sgemm, summed in double:
// hessian_kernel.hpp), stored as the artifact "hessian" with the row count as "samples"
// (i64): the fact "hessians", which quantizer.gptq reads. All layers' matrices are held
// until the pass ends (the planner counts them: SHRINK_RESOURCE_HESSIANS).
#include "hessian_kernel.hpp"

#include <shrink/plugin.hpp>

#include <map>

namespace {

void run(shrink::stage_context& ctx) {
    std::map<std::string, std::vector<double>> h;
    std::map<std::string, uint64_t> width;
    std::map<std::string, bool> linear;
    for (const shrink::layer& l : ctx.model().layers()) linear[l.name] = l.op == "linear";
    int64_t samples = 0;
    ctx.model().forward(SHRINK_SPLIT_CALIBRATION, uint64_t(ctx.params().integer("samples")), true, [&](const shrink_forward_event& e) {
        if (e.kind == SHRINK_FORWARD_OUTPUT) {
            samples += int64_t(e.rows);
            return;
        }
        if (!linear[e.layer]) return;  // a conv's input is its image, not the patches its weight multiplies
        std::vector<double>& m = h[e.layer];
        width[e.layer] = e.cols;
        m.resize(e.cols * e.cols);
        hessian::accumulate_lower(m, e.data, e.rows, e.cols);
    });
    double trace = 0;
    for (auto& [layer, m] : h) {
        const uint64_t d = width[layer];
        hessian::mirror(m, d);
        for (uint64_t i = 0; i < d; ++i) trace += m[i * d + i];
        ctx.model().put_artifact(layer, "hessian", m, {d, d});
        ctx.model().put_artifact<int64_t>(layer, "samples", {samples});
    }
    ctx.result("trace", trace);
    ctx.result("layers", double(h.size()));
    ctx.result("samples", double(samples));
    ctx.log("recorded the input Hessians of " + std::to_string(h.size()) + " linear layers from " + std::to_string(samples) + " rows");
}

shrink::plugin make_plugin() {
    shrink::plugin p("shrink-calibrator-hessian", "0.1.0");
    p.add({.name = "calibrator.hessian",
           .doc = "each linear layer's input second moments X^T X (float64) from calibration samples, for quantizer.gptq",
           .params = {shrink::param::integer("samples", 0, 0, 100000000, "at most this many calibration samples (windows); 0 = all")},
           .facts = {shrink::fact::requires_("calibration_data"), shrink::fact::provides("hessians")},
           .devices = SHRINK_DEVICE_CPU,
           .expected_drop = {},
           .run = run,
           .resources = SHRINK_RESOURCE_FORWARD | SHRINK_RESOURCE_HESSIANS,
           .time_class = SHRINK_TIME_DATA});
    return p;
}

}  // namespace

SHRINK_PLUGIN(make_plugin)

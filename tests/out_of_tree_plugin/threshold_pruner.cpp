// pruner.threshold: zeroes every linear weight whose magnitude is below a threshold.
// An example of a third-party plugin: it includes nothing but <shrink/plugin.hpp>.
#include <shrink/plugin.hpp>

#include <cmath>

namespace {

void run(shrink::stage_context& ctx) {
    const float threshold = float(ctx.params().real("threshold"));
    shrink::model& m = ctx.model();
    uint64_t pruned = 0;
    for (const shrink::layer& l : m.layers()) {
        if (!l.has_matrix()) continue;
        std::vector<float> w = m.read(l.weight);
        std::vector<uint8_t> mask = m.read_mask(l.weight);
        for (size_t i = 0; i < w.size(); ++i)
            if (std::fabs(w[i]) < threshold) {
                w[i] = 0.0f;
                mask[i] = 0;
                ++pruned;
            }
        m.write(l.weight, w, &mask);
    }
    ctx.result("weights_pruned", double(pruned));
}

shrink::plugin make_plugin() {
    shrink::plugin p("example-threshold-pruner", "1.0.0");
    p.add({.name = "pruner.threshold",
           .doc = "zero linear weights with |w| below a threshold",
           .params = {shrink::param::real("threshold", "0.01", 0.0, 1.0, "magnitude below which a weight is pruned")},
           .facts = {shrink::fact::provides("weights_sparse"), shrink::fact::invalidates("activation_ranges")},
           .devices = SHRINK_DEVICE_CPU,
           .expected_drop = [](const shrink::params&) { return 0.01; },
           .run = run});
    return p;
}

}  // namespace

SHRINK_PLUGIN(make_plugin)

// pruner.magnitude: unstructured magnitude pruning of linear weights to a target
// sparsity, per layer or globally; the host stores the mask and only the kept values.
#include "magnitude_kernel.hpp"
#ifdef SHRINK_MAGNITUDE_CUDA
#include "magnitude_cuda.hpp"
#endif

#include <shrink/plugin.hpp>

#include <algorithm>
#include <cmath>
#include <cstdio>

namespace {

#ifdef SHRINK_MAGNITUDE_CUDA
constexpr uint32_t cuda_device_bit = SHRINK_DEVICE_CUDA;
#else
constexpr uint32_t cuda_device_bit = 0;
#endif

/// Masks for these weights, on the stage's GPU when it has one (the same masks either way).
std::vector<std::vector<uint8_t>> masks_for(shrink::stage_context& ctx, const std::vector<const std::vector<float>*>& w,
                                            const std::vector<const std::vector<uint8_t>*>& current, double sparsity) {
#ifdef SHRINK_MAGNITUDE_CUDA
    if (ctx.on_cuda()) return magnitude::cuda::prune(ctx.cuda(), w, current, sparsity);
#else
    (void)ctx;
#endif
    return magnitude::prune(w, current, sparsity);
}

// A coarse prior for one-shot pruning without fine-tuning: nearly free up to ~30%,
// then growing quickly (cubic in sparsity); global pruning spreads the cut and costs less.
double expected_drop(const shrink::params& p) {
    const double s = p.real("sparsity");
    double drop = std::min(0.9, 0.01 * std::pow(s / 0.5, 3));
    if (p.choice("scope") == "global") drop *= 0.8;
    return drop;
}

void run(shrink::stage_context& ctx) {
    const double sparsity = ctx.params().real("sparsity");
    const bool global = ctx.params().choice("scope") == "global";
    const bool keep_last = ctx.params().flag("skip_last_layer");
    shrink::model& m = ctx.model();
    const std::vector<std::string> only = ctx.params().layers("layers");
    std::vector<shrink::layer> targets;
    for (const shrink::layer& l : m.layers())
        if (l.has_matrix() && (only.empty() || std::find(only.begin(), only.end(), l.name) != only.end())) targets.push_back(l);
    if (keep_last && !targets.empty()) targets.pop_back();

    std::vector<std::vector<float>> weights;
    std::vector<std::vector<uint8_t>> current;
    for (const shrink::layer& l : targets) {
        if (m.info(l.weight).encoding & SHRINK_ENCODING_QUANTIZED)
            throw shrink::plugin_error("layer '" + l.name + "' is quantized; prune in full precision, before quantizing");
        weights.push_back(m.read(l.weight));
        current.push_back(m.read_mask(l.weight));
    }
    auto apply = [&](size_t t, const std::vector<uint8_t>& mask) {
        std::vector<float>& w = weights[t];
        for (size_t i = 0; i < w.size(); ++i)
            if (!mask[i]) w[i] = 0.0f;
        m.write(targets[t].weight, w, &mask);
        uint64_t pruned = 0;
        for (uint8_t k : mask) pruned += !k;
        char line[160];
        std::snprintf(line, sizeof line, "%s: %.1f%% pruned", targets[t].name.c_str(), 100.0 * double(pruned) / double(mask.size()));
        ctx.log(line, SHRINK_LOG_DEBUG);
    };
    if (global) {
        std::vector<const std::vector<float>*> w;
        std::vector<const std::vector<uint8_t>*> c;
        for (size_t t = 0; t < weights.size(); ++t) {
            w.push_back(&weights[t]);
            c.push_back(&current[t]);
        }
        const auto masks = masks_for(ctx, w, c, sparsity);
        for (size_t t = 0; t < masks.size(); ++t) apply(t, masks[t]);
    } else {
        for (size_t t = 0; t < weights.size(); ++t) apply(t, masks_for(ctx, {&weights[t]}, {&current[t]}, sparsity)[0]);
    }
    ctx.result("layers_pruned", double(targets.size()));
    ctx.log("pruned " + std::to_string(targets.size()) + " layers to " + std::to_string(int(sparsity * 100)) +
            "% sparsity (" + (global ? "global" : "per layer") + ")");
}

shrink::plugin make_plugin() {
    shrink::plugin p("shrink-pruner-magnitude", "0.1.0");
    p.add({.name = "pruner.magnitude",
           .doc = "unstructured magnitude pruning to a target sparsity, stored sparse",
           .params = {shrink::param::real("sparsity", "0.5", 0.0, 0.99, "fraction of weights set to zero"),
                      shrink::param::choice("scope", "per_layer", "per_layer|global",
                                            "the same sparsity in every layer, or one threshold across all layers"),
                      shrink::param::flag("skip_last_layer", false, "leave the output layer dense"),
                      shrink::param::layers("layers", "prune only these layers (default: every linear and conv layer)")},
           .facts = {shrink::fact::forbids("weights_quantized"), shrink::fact::provides("weights_sparse"),
                     shrink::fact::invalidates("activation_ranges")},
           .devices = SHRINK_DEVICE_CPU | cuda_device_bit,
           .expected_drop = expected_drop,
           .run = run,
           .resources = SHRINK_RESOURCE_WEIGHT_COPY,
           .time_class = SHRINK_TIME_WEIGHTS});
    return p;
}

}  // namespace

SHRINK_PLUGIN(make_plugin)

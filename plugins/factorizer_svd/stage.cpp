// factorizer.svd: replaces a linear layer W (out x in) by two thinner ones via truncated
// SVD, W ~ (U_r S_r)(V_r^T), with the rank fixed or chosen by kept energy; a layer is
// left alone when two factors would not hold fewer parameters than W.
#include "svd_kernel.hpp"
#ifdef SHRINK_SVD_CUDA
#include "svd_cuda.hpp"
#endif

#include <shrink/plugin.hpp>

#include <algorithm>
#include <cstdio>

namespace {

#ifdef SHRINK_SVD_CUDA
constexpr uint32_t cuda_device_bit = SHRINK_DEVICE_CUDA;
#else
constexpr uint32_t cuda_device_bit = 0;
#endif

/// The decomposition, by cuSOLVER on the stage's GPU when it has one.
svd::decomposition decompose(shrink::stage_context& ctx, const std::vector<float>& w, uint64_t rows, uint64_t cols) {
#ifdef SHRINK_SVD_CUDA
    if (ctx.on_cuda()) return svd::cuda::decompose(ctx.cuda(), w.data(), rows, cols);
#else
    (void)ctx;
#endif
    return svd::decompose(w.data(), rows, cols);
}

// Coarse prior: the energy a truncation drops maps loosely to accuracy for trained MLPs.
double expected_drop(const shrink::params& p) {
    if (p.integer("rank") > 0) return p.integer("rank") >= 64 ? 0.02 : 0.05;
    return std::min(0.9, 0.5 * (1.0 - p.real("energy")));
}

void run(shrink::stage_context& ctx) {
    const uint64_t fixed_rank = uint64_t(ctx.params().integer("rank"));
    const double energy = ctx.params().real("energy");
    const uint64_t min_features = uint64_t(ctx.params().integer("min_features"));
    shrink::model& m = ctx.model();
    const std::vector<std::string> only = ctx.params().layers("layers");
    uint64_t factored = 0;
    for (const shrink::layer& l : m.layers()) {
        if (!l.has_matrix() || (!only.empty() && std::find(only.begin(), only.end(), l.name) == only.end())) continue;
        const uint64_t out = l.out_features, in = l.in_features;
        if (std::min(out, in) < min_features) continue;
        if (m.info(l.weight).encoding & SHRINK_ENCODING_QUANTIZED)
            throw shrink::plugin_error("layer '" + l.name + "' is quantized; factorize in full precision, before quantizing");
        const std::vector<float> w = m.read(l.weight);
        const svd::decomposition d = decompose(ctx, w, out, in);
        uint64_t rank = fixed_rank > 0 ? std::min(fixed_rank, d.k) : svd::rank_for_energy(d.sigma, energy);
        char line[200];
        if (rank * (in + out) >= in * out) {
            std::snprintf(line, sizeof line, "%s: rank %llu would not save parameters; left as is", l.name.c_str(),
                          (unsigned long long)rank);
            ctx.log(line);
            continue;
        }
        std::vector<float> first, second;
        svd::factors(d, out, in, rank, first, second);
        m.factorize(l.name, rank, first, second);
        std::snprintf(line, sizeof line, "%s: %llux%llu -> rank %llu (%.1f%% of the parameters)", l.name.c_str(),
                      (unsigned long long)out, (unsigned long long)in, (unsigned long long)rank,
                      100.0 * double(rank * (in + out)) / double(in * out));
        ctx.log(line);
        ++factored;
    }
    ctx.result("layers_factorized", double(factored));
}

shrink::plugin make_plugin() {
    shrink::plugin p("shrink-factorizer-svd", "0.1.0");
    p.add({.name = "factorizer.svd",
           .doc = "truncated-SVD factorization of linear and conv layers into two thinner layers",
           .params = {shrink::param::integer("rank", 0, 0, 65536, "fixed rank; 0 chooses it by energy"),
                      shrink::param::real("energy", "0.95", 0.5, 1.0, "kept fraction of sum(sigma^2) when rank is 0"),
                      shrink::param::integer("min_features", 64, 1, 65536,
                                             "factor only layers whose smaller side has at least this many features"),
                      shrink::param::layers("layers", "factor only these layers (default: every linear and conv layer)")},
           .facts = {shrink::fact::forbids("weights_quantized"), shrink::fact::provides("weights_factorized"),
                     shrink::fact::invalidates("activation_ranges"), shrink::fact::invalidates("weights_sparse")},
           .devices = SHRINK_DEVICE_CPU | cuda_device_bit,
           .expected_drop = expected_drop,
           .run = run,
           .resources = SHRINK_RESOURCE_WEIGHT_COPY,
           .time_class = SHRINK_TIME_SOLVE});
    return p;
}

}  // namespace

SHRINK_PLUGIN(make_plugin)

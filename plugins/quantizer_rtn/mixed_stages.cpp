#include "mixed_stages.hpp"

#include "bit_allocation.hpp"
#include "rtn_kernel.hpp"
#include "stage_helpers.hpp"

#include <algorithm>
#include <cmath>
#include <iomanip>
#include <sstream>

namespace mixed {

namespace {

// Every width RTN stores: 2 and 3 in the 4-bit container (so they cost what 4 bits cost
// and quantizer.mixed picks them only where they are no worse), 4 and 8.
constexpr int widths[] = {2, 3, 4, 8};
constexpr size_t width_count = sizeof widths / sizeof widths[0];

/// The RTN grid both stages use: group_size 0 means one scale per row.
rtn::options grid_of(const shrink::params& p, int bits) {
    rtn::options o;
    o.bits = bits;
    o.symmetric = p.choice("scheme") == "symmetric";
    const int64_t g = p.integer("group_size");
    o.gran = g > 0 ? rtn::granularity::per_group : rtn::granularity::per_channel;
    o.group_size = g > 0 ? uint64_t(g) : 64;
    return o;
}

/// The model's output rows a measurement counts (every labelled row: a text window's
/// predicting positions, a classifier's samples; every row when the data has no labels),
/// as log-probabilities, row after row.
struct output_rows {
    uint64_t vocab = 0;
    std::vector<float> log_probs;

    template <class F>
    static void each_row(const shrink_forward_event& ev, F&& f) {
        for (uint64_t r = 0; r < ev.rows; ++r)
            if (!ev.labels || ev.labels[r] >= 0) f(ev.data + r * ev.cols);
    }
};

/// log-softmax of one row, in double, into out.
void log_softmax(const float* row, uint64_t n, double* out) {
    const float top = *std::max_element(row, row + n);
    double sum = 0;
    for (uint64_t v = 0; v < n; ++v) sum += std::exp(double(row[v]) - top);
    const double log_sum = std::log(sum) + top;
    for (uint64_t v = 0; v < n; ++v) out[v] = double(row[v]) - log_sum;
}

/// The float model's output distribution on the calibration rows.
output_rows reference_outputs(shrink::model& m, uint64_t samples) {
    output_rows base;
    std::vector<double> row;
    m.forward_trial(SHRINK_SPLIT_CALIBRATION, samples, {}, [&](const shrink_forward_event& ev) {
        if (ev.kind != SHRINK_FORWARD_OUTPUT) return;
        base.vocab = ev.cols;
        row.resize(ev.cols);
        output_rows::each_row(ev, [&](const float* r) {
            log_softmax(r, ev.cols, row.data());
            base.log_probs.insert(base.log_probs.end(), row.begin(), row.end());
        });
    });
    if (base.log_probs.empty()) throw shrink::plugin_error("the calibration data gave no output rows to measure");
    return base;
}

/// Mean KL(reference || model with `trial`) over the reference's rows.
double mean_kl(shrink::model& m, uint64_t samples, const output_rows& base, const std::vector<shrink::model::trial_tensor>& trial) {
    const uint64_t rows = base.log_probs.size() / base.vocab;
    uint64_t at = 0;
    double total = 0;
    std::vector<double> q(base.vocab);
    m.forward_trial(SHRINK_SPLIT_CALIBRATION, samples, trial, [&](const shrink_forward_event& ev) {
        if (ev.kind != SHRINK_FORWARD_OUTPUT) return;
        if (ev.cols != base.vocab) throw shrink::plugin_error("the model's outputs changed width during the measurement");
        output_rows::each_row(ev, [&](const float* r) {
            if (at >= rows) throw shrink::plugin_error("the calibration data gave more rows than on the first pass");
            log_softmax(r, ev.cols, q.data());
            const float* p = base.log_probs.data() + at * base.vocab;
            double kl = 0;
            for (uint64_t v = 0; v < base.vocab; ++v) kl += std::exp(double(p[v])) * (double(p[v]) - q[v]);
            total += std::max(0.0, kl);  // rounding can leave a hair below 0 where nothing changed
            ++at;
        });
    });
    if (at != rows) throw shrink::plugin_error("the calibration data gave fewer rows than on the first pass");
    return total / double(rows);
}

void run_sensitivity(shrink::stage_context& ctx) {
    shrink::model& m = ctx.model();
    const uint64_t samples = uint64_t(ctx.params().integer("samples"));
    const std::vector<shrink::layer> layers = rtn_stage::layers_to_quantize(ctx, "analyzer.sensitivity");
    const output_rows base = reference_outputs(m, samples);
    const int64_t grid[2] = {ctx.params().choice("scheme") == "symmetric" ? 1 : 0, ctx.params().integer("group_size")};
    const std::vector<int32_t> bits(widths, widths + width_count);
    size_t done = 0;
    for (const shrink::layer& l : layers) {
        ctx.progress(("layers: " + l.name).c_str(), done, layers.size());
        const std::vector<float> w = m.read(l.weight);
        std::vector<double> kl;
        for (int b : widths) {
            const rtn::options o = grid_of(ctx.params(), b);
            std::vector<float> trial = rtn::dequantize(rtn::quantize(w.data(), l.out_features, l.in_features, o), l.out_features,
                                                       l.in_features);
            kl.push_back(mean_kl(m, samples, base, {{l.weight, &trial}}));
        }
        m.put_artifact(l.name, "sensitivity", kl, {width_count});
        m.put_artifact(l.name, "sensitivity_bits", bits, {width_count});
        m.put_artifact(l.name, "sensitivity_grid", std::vector<int64_t>(grid, grid + 2), {2});
        std::ostringstream line;
        line << l.name << ": KL";
        for (size_t k = 0; k < width_count; ++k) line << " " << widths[k] << "b " << std::setprecision(3) << kl[k];
        ctx.log(line.str(), SHRINK_LOG_DEBUG);
        ++done;
    }
    ctx.progress("layers", done, layers.size());
    ctx.result("layers_measured", double(done));
    ctx.result("rows_measured", double(base.log_probs.size() / base.vocab));
    ctx.log("measured " + std::to_string(done) + " layers at 2, 3, 4 and 8 bits on " +
            std::to_string(base.log_probs.size() / base.vocab) + " calibration rows");
}

/// A layer's measured sensitivity, checked against the grid this stage quantizes with.
std::vector<double> sensitivity_of(shrink::model& m, const shrink::layer& l, const shrink::params& p) {
    const std::vector<double> kl = m.read_artifact<double>(l.name, "sensitivity");
    const std::vector<int32_t> bits = m.read_artifact<int32_t>(l.name, "sensitivity_bits");
    const std::vector<int64_t> grid = m.read_artifact<int64_t>(l.name, "sensitivity_grid");
    if (kl.size() != width_count || bits != std::vector<int32_t>(widths, widths + width_count) || grid.size() != 2)
        throw shrink::plugin_error("layer '" + l.name + "' has no sensitivity measurement this stage reads; run analyzer.sensitivity first");
    const int64_t symmetric = p.choice("scheme") == "symmetric" ? 1 : 0, group = p.integer("group_size");
    if (grid[0] != symmetric || grid[1] != group)
        throw shrink::plugin_error("layer '" + l.name + "' was measured with scheme " + (grid[0] ? "symmetric" : "asymmetric") +
                                   " and group_size " + std::to_string(grid[1]) + ", not with this stage's " + p.choice("scheme") +
                                   " and " + std::to_string(group) + ": give both stages the same grid");
    return kl;
}

void run_mixed(shrink::stage_context& ctx) {
    shrink::model& m = ctx.model();
    const double target = ctx.params().real("target_bits_per_weight");
    const std::vector<shrink::layer> layers = rtn_stage::layers_to_quantize(ctx, "quantizer.mixed");
    // Each choice's stored bytes as the host counts them: written, measured, and the float
    // weight written back (the codes of the final pass are those of the original weights).
    std::vector<std::vector<choice>> choices;
    uint64_t weights = 0;
    size_t done = 0;
    for (const shrink::layer& l : layers) {
        ctx.progress(("sizes: " + l.name).c_str(), done++, layers.size());
        const std::vector<double> kl = sensitivity_of(m, l, ctx.params());
        const std::vector<float> w = m.read(l.weight);
        const bool sparse = m.info(l.weight).encoding & SHRINK_ENCODING_SPARSE;
        const std::vector<uint8_t> mask = sparse ? m.read_mask(l.weight) : std::vector<uint8_t>{};
        std::vector<choice> c;
        for (size_t k = 0; k < width_count; ++k) {
            const rtn::options o = grid_of(ctx.params(), widths[k]);
            rtn_stage::write_quantized(m, l, o, rtn::quantize(w.data(), l.out_features, l.in_features, o));
            c.push_back({widths[k], m.info(l.weight).stored_bytes, kl[k]});
        }
        m.write(l.weight, w, sparse ? &mask : nullptr);
        choices.push_back(std::move(c));
        weights += w.size();
    }
    const uint64_t budget = uint64_t(std::floor(target * double(weights) / 8.0));
    const std::optional<allocation> a = allocate(choices, budget);
    if (!a) {
        uint64_t least = 0;
        for (const auto& c : choices) {
            uint64_t b = c.front().bytes;
            for (const choice& x : c) b = std::min(b, x.bytes);
            least += b;
        }
        std::ostringstream msg;
        msg << "target_bits_per_weight " << target << " is below what these layers can store: "
            << std::setprecision(4) << 8.0 * double(least) / double(weights) << " bits per weight at the fewest bits";
        throw shrink::plugin_error(msg.str());
    }
    std::ostringstream table;
    int counts[9] = {};
    for (size_t i = 0; i < layers.size(); ++i) {
        ctx.progress(("layers: " + layers[i].name).c_str(), i, layers.size());
        const int bits = choices[i][a->pick[i]].bits;
        const rtn::options o = grid_of(ctx.params(), bits);
        rtn_stage::write_quantized(m, layers[i], o, rtn_stage::quantize_on_cpu(m, layers[i], o));
        ctx.result("bits." + layers[i].name, double(bits));
        ++counts[bits];
        table << "\n  " << layers[i].name << ": " << bits << " bits (KL " << std::setprecision(3) << choices[i][a->pick[i]].loss << ")";
    }
    ctx.progress("layers", layers.size(), layers.size());
    uint64_t stored = 0;
    for (const shrink::layer& l : layers) stored += m.info(l.weight).stored_bytes;
    const double bpw = weights ? 8.0 * double(stored) / double(weights) : 0;
    ctx.result("layers_quantized", double(layers.size()));
    ctx.result("bits_per_weight", bpw);
    ctx.result("predicted_kl", a->loss);
    std::ostringstream head;
    head << "assigned widths for " << std::setprecision(4) << bpw << " bits per weight (target " << target << "):";
    const char* sep = " ";
    for (int b : widths)
        if (counts[b]) head << sep << counts[b] << (counts[b] == 1 ? " layer" : " layers") << " at " << b << " bits", sep = ", ";
    ctx.log(head.str() + table.str());
}

shrink::param scheme_param() {
    return shrink::param::choice("scheme", "asymmetric", "symmetric|asymmetric", "the RTN grid, as quantizer.rtn's");
}
shrink::param group_param() {
    return shrink::param::integer("group_size", 128, 0, 4096, "weights of a row per scale; 0 = one per row");
}

}  // namespace

shrink::stage_type sensitivity_stage() {
    return {.name = "analyzer.sensitivity",
            .doc = "each layer's sensitivity to quantization: the mean KL divergence of the model's outputs on calibration data "
                   "when only that layer is rounded to 2, 3, 4 and 8 bits (the model is not changed)",
            .params = {scheme_param(), group_param(),
                       shrink::param::integer("samples", 16, 1, 1000000, "calibration samples (text windows) measured"),
                       shrink::param::layers("layers", "measure only these layers (default: every linear and conv layer)")},
            .facts = {shrink::fact::requires_("calibration_data"), shrink::fact::forbids("weights_quantized"),
                      shrink::fact::provides("layer_sensitivity")},
            .devices = SHRINK_DEVICE_CPU,
            .expected_drop = {},
            .run = run_sensitivity,
            .resources = SHRINK_RESOURCE_FORWARD | SHRINK_RESOURCE_WEIGHT_COPY,
            .time_class = SHRINK_TIME_DATA,
            // The reference outputs (at most every activation of each sample measured), two
            // float copies of the largest weight, and the forward pass's own activations.
            .memory = [](const shrink::params& p, const shrink_model_outline& o) -> uint64_t {
                const uint64_t samples =
                    o.calibration_samples ? std::min<uint64_t>(uint64_t(p.integer("samples")), o.calibration_samples)
                                          : uint64_t(p.integer("samples"));
                return (samples + 1) * o.activation_floats * 4 + 3 * o.largest_weight * 4;
            }};
}

shrink::stage_type mixed_stage() {
    return {.name = "quantizer.mixed",
            .doc = "mixed precision: a width per layer (2, 3, 4 or 8 bits, RTN) within target_bits_per_weight of stored "
                   "bytes, the summed measured sensitivity least",
            .params = {shrink::param::real("target_bits_per_weight", "4.5", 2.0, 32.0,
                                           "stored bits per weight of the quantized layers, scales and zero points included"),
                       scheme_param(), group_param(),
                       shrink::param::layers("layers", "quantize only these layers (default: every linear and conv layer)")},
            .facts = {shrink::fact::requires_("layer_sensitivity"), shrink::fact::forbids("weights_quantized"),
                      shrink::fact::provides("weights_quantized"), shrink::fact::invalidates("activation_ranges")},
            .devices = SHRINK_DEVICE_CPU,
            // A prior the ledger replaces: between int4 and int8 RTN.
            .expected_drop = [](const shrink::params& p) { return p.real("target_bits_per_weight") >= 8 ? 0.002 : 0.008; },
            .run = run_mixed,
            .resources = SHRINK_RESOURCE_WEIGHT_COPY,
            .time_class = SHRINK_TIME_WEIGHTS,
            // Seconds beside the analyzer's minutes: `shrink plan` shows the assignment
            // once the analyzer's output is in the stage cache.
            .previewable = true};
}

}  // namespace mixed

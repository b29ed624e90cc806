// evaluator.accuracy: top-1 accuracy on the evaluation split, the model's size in bytes
// as written, and the mean wall time of a batch's forward pass. On text (a language
// model) it is next-token accuracy: the last position of a window (label -1) predicts
// nothing and is not counted. On a cuda stage the host
// runs the forward pass on the GPU, so the plugin needs no CUDA code of its own.
#include <shrink/plugin.hpp>

#include <algorithm>
#include <cmath>

namespace {

void run(shrink::stage_context& ctx) {
    uint64_t correct = 0, total = 0, batches = 0;
    double seconds = 0;
    ctx.model().forward(SHRINK_SPLIT_EVALUATION, uint64_t(ctx.params().integer("samples")), false,
                        [&](const shrink_forward_event& e) {
                            if (e.kind != SHRINK_FORWARD_OUTPUT) return;
                            for (uint64_t r = 0; r < e.rows; ++r) {
                                if (e.labels[r] < 0) continue;
                                const float* row = e.data + r * e.cols;
                                correct += uint64_t(std::max_element(row, row + e.cols) - row) == uint64_t(e.labels[r]);
                                ++total;
                            }
                            seconds += e.seconds;
                            ++batches;
                        });
    if (total == 0) throw shrink::plugin_error("the evaluation split has no samples");
    const double accuracy = double(correct) / double(total);
    ctx.result("accuracy", accuracy);
    // Binomial standard error: the sampling noise of an accuracy measured on `total` samples.
    ctx.result("accuracy_stderr", std::sqrt(accuracy * (1 - accuracy) / double(total)));
    ctx.result("samples", double(total));
    ctx.result("size_bytes", double(ctx.model().size_bytes()));
    ctx.result("batch_latency_ms", 1000.0 * seconds / double(batches));
}

shrink::plugin make_plugin() {
    shrink::plugin p("shrink-evaluator-accuracy", "0.1.0");
    p.add({.name = "evaluator.accuracy",
           .doc = "top-1 accuracy with its standard error, model size in bytes and mean batch latency on the evaluation split",
           .params = {shrink::param::integer("samples", 0, 0, 10000000, "at most this many samples; 0 = the whole split")},
           .facts = {shrink::fact::requires_("evaluation_data"), shrink::fact::provides("metric")},
           .devices = SHRINK_DEVICE_CPU | SHRINK_DEVICE_CUDA,
           .expected_drop = {},
           .run = run,
           .resources = SHRINK_RESOURCE_FORWARD,
           .time_class = SHRINK_TIME_DATA,
           .metrics = {"accuracy"}});
    return p;
}

}  // namespace

SHRINK_PLUGIN(make_plugin)

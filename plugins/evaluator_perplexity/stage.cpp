// evaluator.perplexity: a language model's perplexity on the held-out windows of the
// recipe's text (docs/language-models.md): the mean negative log-likelihood of every
// predicted token, exponentiated, with its standard error across windows, the tokens
// counted, and bits per byte, which compares models with different tokenizers.
#include <shrink/perplexity.hpp>
#include <shrink/plugin.hpp>

#include <vector>

namespace {

void run(shrink::stage_context& ctx) {
    const std::vector<uint32_t> bytes_of = ctx.model().token_bytes(SHRINK_SPLIT_EVALUATION);
    shrink::perplexity_meter meter;
    double seconds = 0;
    std::vector<uint32_t> next_bytes;
    ctx.model().forward(SHRINK_SPLIT_EVALUATION, uint64_t(ctx.params().integer("samples")), false,
                        [&](const shrink_forward_event& e) {
                            if (e.kind != SHRINK_FORWARD_OUTPUT) return;
                            seconds += e.seconds;
                            // A batch holds whole windows; label -1 ends each (abi.h, "Text data").
                            uint64_t start = 0;
                            for (uint64_t r = 0; r < e.rows; ++r) {
                                if (e.labels[r] >= 0) continue;
                                next_bytes.clear();
                                for (uint64_t t = start; t < r; ++t)
                                    next_bytes.push_back(uint64_t(e.labels[t]) < bytes_of.size() ? bytes_of[size_t(e.labels[t])] : 0);
                                meter.add_window(e.data + start * e.cols, int64_t(e.cols), e.labels + start, next_bytes.data(),
                                                 int64_t(r - start));
                                start = r + 1;
                            }
                            if (start != e.rows) throw shrink::plugin_error("a batch of text ends inside a window");
                        });
    if (meter.windows() == 0) throw shrink::plugin_error("the evaluation text has no windows");
    ctx.result("perplexity", meter.perplexity());
    ctx.result("perplexity_stderr", meter.standard_error());
    ctx.result("nll", meter.mean_nll());
    ctx.result("bits_per_byte", meter.bits_per_byte());
    ctx.result("tokens", double(meter.predicted_tokens()));
    ctx.result("windows", double(meter.windows()));
    ctx.result("size_bytes", double(ctx.model().size_bytes()));
    ctx.result("window_latency_ms", 1000.0 * seconds / double(meter.windows()));
}

shrink::plugin make_plugin() {
    shrink::plugin p("shrink-evaluator-perplexity", "0.1.0");
    p.add({.name = "evaluator.perplexity",
           .doc = "a language model's perplexity on the held-out text windows, with its standard error, tokens counted, bits "
                  "per byte, model size and mean window latency",
           .params = {shrink::param::integer("samples", 0, 0, 10000000, "at most this many windows; 0 = every held-out window")},
           .facts = {shrink::fact::requires_("text_evaluation_data"), shrink::fact::provides("metric")},
           .devices = SHRINK_DEVICE_CPU | SHRINK_DEVICE_CUDA,
           .expected_drop = {},
           .run = run,
           .resources = SHRINK_RESOURCE_FORWARD,
           .time_class = SHRINK_TIME_DATA,
           .metrics = {"perplexity"}});
    return p;
}

}  // namespace

SHRINK_PLUGIN(make_plugin)

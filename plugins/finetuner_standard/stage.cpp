// finetuner.standard: trains the current model further on the training split, with its
// pruning masks held (pruned weights stay zero) and, optionally, a distillation loss from
// the kept teacher (the recipe's model, or the teacher a distiller kept). The way to
// recover accuracy after pruning or factorizing; a chain prune -> fine-tune -> prune more
// -> fine-tune is iterative pruning.
#include <shrink/plugin.hpp>
#include <shrink/training.hpp>

namespace {

void run(shrink::stage_context& ctx) {
    shrink::model& m = ctx.model();
    for (const shrink::layer& l : m.layers())
        if (l.has_matrix() && (m.info(l.weight).encoding & SHRINK_ENCODING_QUANTIZED))
            throw shrink::plugin_error("layer '" + l.name + "' is quantized; fine-tune before quantizing, or use quantizer.qat");
    const shrink::train_report r = m.train(shrink::training_of(ctx.params()));
    shrink::report_training(ctx, r);
    ctx.log("loss " + std::to_string(r.first_epoch_loss) + " -> " + std::to_string(r.last_epoch_loss) + " over " +
            std::to_string(r.steps) + " steps");
}

shrink::plugin make_plugin() {
    shrink::plugin p("shrink-finetuner-standard", "0.1.0");
    p.add({.name = "finetuner.standard",
           .doc = "fine-tunes the model on the training split with pruning masks held, optionally distilling from the kept teacher",
           .params = shrink::training_params({.epochs = 1,
                                              .optimizer = "adamw",
                                              .learning_rate = 5e-4,
                                              .schedule = "cosine",
                                              .weight_decay = 0,
                                              .distill_alpha = 0,
                                              .temperature = 4}),
           .facts = {shrink::fact::requires_("training_data"), shrink::fact::forbids("weights_quantized"),
                     shrink::fact::invalidates("activation_ranges")},
           .devices = SHRINK_DEVICE_CPU,
           // Training recovers accuracy rather than spending it; the ledger records what it measures.
           .expected_drop = {},
           .run = run,
           .resources = SHRINK_RESOURCE_TRAINING_STATE | SHRINK_RESOURCE_FORWARD,
           .time_class = SHRINK_TIME_TRAINING});
    return p;
}

}  // namespace

SHRINK_PLUGIN(make_plugin)

// Training parameters every training stage (distiller, fine-tuner, quantization-aware
// training) declares the same way, so that recipes spell them alike across plugins.
//
//   p.add({.name = "finetuner.mine", .params = shrink::training_params({.epochs = 2}), ...});
//   ...
//   shrink::training t = shrink::training_of(ctx.params());
//   ctx.model().train(t);
#pragma once

#include <shrink/plugin.hpp>

#include <string>
#include <vector>

namespace shrink {

/// A stage's defaults for the shared training parameters.
struct training_defaults {
    int epochs = 1;
    std::string optimizer = "adamw";
    double learning_rate = 1e-3;
    std::string schedule = "cosine";
    double weight_decay = 0;
    double distill_alpha = 0;
    double temperature = 4;
};

/// epochs, batch, samples, optimizer, learning_rate, momentum, weight_decay, schedule,
/// step_epochs, step_gamma, distill_alpha, temperature.
inline std::vector<param> training_params(const training_defaults& d) {
    auto text = [](double v) {
        char buf[32];
        std::snprintf(buf, sizeof buf, "%.17g", v);
        return std::string(buf);
    };
    return {param::integer("epochs", d.epochs, 1, 1000, "passes over the training split"),
            param::integer("batch", 128, 1, 65536, "samples per optimizer step"),
            param::integer("samples", 0, 0, 100000000, "train on at most this many samples of the split; 0 = all"),
            param::choice("optimizer", d.optimizer, "adamw|sgd", "AdamW (decoupled weight decay) or SGD with momentum"),
            param::real("learning_rate", text(d.learning_rate), 1e-7, 10, "the base learning rate"),
            param::real("momentum", "0.9", 0, 0.999, "SGD momentum"),
            param::real("weight_decay", text(d.weight_decay), 0, 10, "weight decay on linear and conv weights"),
            param::choice("schedule", d.schedule, "constant|cosine|step", "learning-rate schedule over the run"),
            param::integer("step_epochs", 1, 1, 1000, "step schedule: epochs between rate cuts"),
            param::real("step_gamma", "0.1", 1e-6, 1, "step schedule: the factor of each cut"),
            param::real("distill_alpha", text(d.distill_alpha), 0, 1,
                        "weight of the distillation term from the kept teacher; 0 = labels only"),
            param::real("temperature", text(d.temperature), 0.1, 100, "distillation temperature T")};
}

/// The shared training parameters as read back from a running stage.
inline training training_of(const params& p) {
    training t;
    t.epochs = int(p.integer("epochs"));
    t.batch = uint64_t(p.integer("batch"));
    t.max_samples = uint64_t(p.integer("samples"));
    t.optimizer = p.choice("optimizer");
    t.learning_rate = p.real("learning_rate");
    t.momentum = p.real("momentum");
    t.weight_decay = p.real("weight_decay");
    t.schedule = p.choice("schedule");
    t.step_epochs = int(p.integer("step_epochs"));
    t.step_gamma = p.real("step_gamma");
    t.distill_alpha = p.real("distill_alpha");
    t.temperature = p.real("temperature");
    return t;
}

/// Adds the run's figures to the stage's results.
inline void report_training(stage_context& ctx, const train_report& r) {
    ctx.result("training_steps", double(r.steps));
    ctx.result("first_epoch_loss", r.first_epoch_loss);
    ctx.result("last_epoch_loss", r.last_epoch_loss);
}

}  // namespace shrink

#include "train/reference_lm.hpp"

#include "cpu/engine.hpp"
#include "data/kjv.hpp"
#include "text/bpe_trainer.hpp"
#include "text/tokenizer.hpp"
#include "text/windows.hpp"
#include "train/fit.hpp"
#include "util/random.hpp"

#include <shrink/perplexity.hpp>

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace shrink {

lm_train_options::lm_train_options() {
    shape.vocab = 4096, shape.hidden = 256, shape.intermediate = 768, shape.layers = 4;
    shape.heads = 4, shape.kv_heads = 2, shape.head_dim = 64;
    shape.rope_theta = 10000, shape.rms_eps = 1e-5f;
}

model initial_decoder(const decoder_shape& s, uint64_t seed) {
    model m;
    for (const auto& [name, shape] : decoder_tensors(s)) {
        tensor t;
        t.shape = shape;
        std::vector<float> v(size_t(t.element_count()), 0.0f);
        if (name.find("norm") != std::string::npos) {
            std::fill(v.begin(), v.end(), 1.0f);
        } else if (name.size() < 5 || name.compare(name.size() - 5, 5, ".bias") != 0) {
            const bool into_residual = name.find("o_proj") != std::string::npos || name.find("down_proj") != std::string::npos;
            const double sd = 0.02 / (into_residual ? std::sqrt(2.0 * double(s.layers)) : 1.0);
            rng g(derive_seed(seed, "init:" + name));
            for (float& x : v) x = float(g.normal() * sd);
        }
        t.values = std::move(v);
        m.tensors[name] = std::move(t);
    }
    set_decoder_graph(m, s);
    m.validate();
    return m;
}

lm_train_result train_reference_lm(const lm_train_options& o, const std::function<void(int64_t, int64_t, double)>& on_step) {
    if (o.seq_len < 2) throw std::invalid_argument("seq_len must be at least 2");
    if (o.batch < 1) throw std::invalid_argument("batch must be at least 1");
    lm_train_result r;
    const std::string text = kjv_text();
    text::bpe_training bpe;
    bpe.vocab_size = uint32_t(o.shape.vocab);
    r.tokenizer = text::train_bpe(text, bpe);
    const text::tokenizer tok(r.tokenizer);
    if (int64_t(tok.vocab_size()) > o.shape.vocab)
        throw std::runtime_error("the tokenizer has " + std::to_string(tok.vocab_size()) + " ids, more than the model's " +
                                 std::to_string(o.shape.vocab));
    const std::vector<uint32_t> ids = tok.encode(text);
    const text::window_split split = text::split_windows(text::window_count(int64_t(ids.size()), o.seq_len));

    r.net = initial_decoder(o.shape, derive_seed(o.seed, "weights"));
    train::sample_source data;
    data.count = int64_t(split.fitting.size());
    data.rows_per_sample = o.seq_len;
    data.fill = [&](const int64_t* idx, int64_t rows, float* x, int32_t* labels) {
        for (int64_t w = 0; w < rows; ++w) {
            const uint32_t* window = ids.data() + split.fitting[size_t(idx[w])] * o.seq_len;
            for (int64_t t = 0; t < o.seq_len; ++t) {
                x[(w * o.seq_len + t) * 2] = float(window[t]);
                x[(w * o.seq_len + t) * 2 + 1] = float(t);
                labels[w * o.seq_len + t] = t + 1 < o.seq_len ? int32_t(window[t + 1]) : -1;
            }
        }
    };
    train::fit_options f;
    f.epochs = 1;
    f.batch = o.batch;
    f.max_samples = o.steps > 0 ? std::min(data.count, o.steps * o.batch) : 0;
    f.seed = derive_seed(o.seed, "batches");
    f.optimizer.kind = "adamw";
    f.optimizer.learning_rate = o.learning_rate;
    f.optimizer.weight_decay = o.weight_decay;
    f.optimizer.schedule = "cosine";
    const int64_t steps = ((f.max_samples ? f.max_samples : data.count) + o.batch - 1) / o.batch;
    std::vector<double> losses;
    f.on_step = [&](int64_t step, double loss) {
        losses.push_back(loss);
        if (on_step) on_step(step, steps, loss);
    };
    const train::fit_result fitted = train::fit(r.net, data, f);
    r.steps = fitted.steps;
    r.tokens = (f.max_samples ? f.max_samples : data.count) * o.seq_len;
    const size_t tail = std::max<size_t>(1, losses.size() / 10);
    for (size_t i = losses.size() - tail; i < losses.size(); ++i) r.final_loss += losses[i] / double(tail);

    // Held-out perplexity of the first eval_windows windows evaluation keeps.
    const engine e(r.net);
    perplexity_meter meter;
    std::vector<uint32_t> bytes_of(tok.vocab_size(), 0);
    for (uint32_t id = 0; id < tok.vocab_size(); ++id) bytes_of[id] = uint32_t(tok.token_bytes(id).size());
    const size_t windows = std::min<size_t>(split.evaluation.size(), size_t(std::max<int64_t>(o.eval_windows, 0)));
    for (size_t w = 0; w < windows; ++w) {
        const uint32_t* window = ids.data() + split.evaluation[w] * o.seq_len;
        std::vector<float> tokens;
        std::vector<int32_t> next;
        std::vector<uint32_t> bytes;
        for (int64_t t = 0; t < o.seq_len; ++t) {
            tokens.insert(tokens.end(), {float(window[t]), float(t)});
            if (t > 0) {
                next.push_back(int32_t(window[t]));
                bytes.push_back(bytes_of[window[t]]);
            }
        }
        const std::vector<float> logits = e.run(tokens.data(), o.seq_len);
        meter.add_window(logits.data(), o.shape.vocab, next.data(), bytes.data(), o.seq_len - 1);
    }
    r.heldout_perplexity = meter.perplexity();
    return r;
}

}  // namespace shrink

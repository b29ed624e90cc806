// `shrink train --arch llama`: the reference language model, a small Llama-family decoder
// with its own byte-level BPE tokenizer, both trained on the King James text (Debian's
// bible-kjv) by the training engine. Not a compression stage; what the LLM pipelines and
// benchmarks compress. Deterministic for a seed and thread count. Dimensions are
// multiples of 256 by default, so that formats working in blocks of 256 apply to it.
#pragma once

#include "model/decoder.hpp"
#include "model/model.hpp"
#include "text/tokenizer_spec.hpp"

#include <cstdint>
#include <functional>

namespace shrink {

struct lm_train_options {
    decoder_shape shape;     // vocab is the tokenizer's size
    int64_t seq_len = 128;   // tokens a training window
    int64_t batch = 16;      // windows a step
    int64_t steps = 0;       // 0: one pass over the training windows
    double learning_rate = 3e-3;
    double weight_decay = 0.1;
    uint64_t seed = 1;
    int64_t eval_windows = 200;  // held-out windows the result's perplexity is measured on

    lm_train_options();
};

struct lm_train_result {
    model net;                       // the decoder's graph and weights (transformers' names)
    text::tokenizer_spec tokenizer;  // trained on the same text
    int64_t steps = 0, tokens = 0;   // trained on
    double final_loss = 0;           // mean next-token loss of the last 10% of steps
    double heldout_perplexity = 0;   // on the first eval_windows held-out windows
};

/// Weights for a decoder of shape `s` drawn from `seed`: linear weights N(0, 0.02), the
/// projections into the residual stream (o_proj, down_proj) scaled by 1/sqrt(2 layers),
/// embeddings N(0, 0.02), norms 1, biases 0.
model initial_decoder(const decoder_shape& s, uint64_t seed);

/// Trains the tokenizer (vocab s.vocab) and the decoder on the KJV text's training windows
/// (nine in ten, docs/language-models.md) with AdamW and a cosine schedule.
/// on_step(step, steps, loss) reports progress.
lm_train_result train_reference_lm(const lm_train_options& o, const std::function<void(int64_t, int64_t, double)>& on_step = {});

}  // namespace shrink

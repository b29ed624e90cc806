// Runs a model on the CPU: the reference path decodes every weight to float once, then
// each batch runs one oneDNN primitive (or a short loop) per step.
//
// At construction the engine folds a batchnorm into the conv before it where that is
// legal (the conv's output feeds only the batchnorm), fuses an activation into the
// linear or conv before it as a oneDNN post-op, turns flatten into a view, and plans the
// activation buffers: each value takes a buffer freed by a value no step reads any more,
// and activations and batchnorms run in place when their input dies with them. Per batch
// size, a conv's output stays in the blocked layout oneDNN's conv kernels run fastest on
// through pooling and activations, up to the first step that reads plain data.
#pragma once

#include "cpu/eltwise.hpp"
#include "cpu/int8_linear.hpp"
#include "cpu/sequence.hpp"
#include "model/model.hpp"
#include "backend/runner.hpp"

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <vector>

namespace shrink {

class engine : public runner {
  public:

    /// `m` must outlive the engine: its steps refer to m's layers. A linear layer with
    /// static 8-bit input quantization and symmetric int8 weights, one scale per output row,
    /// runs on oneDNN's integer matmul (cpu/int8_linear.hpp) unless `integer_kernels` is
    /// false, when it is simulated in float (the reference for tests and benchmarks).
    explicit engine(const model& m, bool integer_kernels = true);
    ~engine() override;

    /// Runs `rows` samples of input_features floats; returns rows x output width.
    /// Not thread-safe: an engine keeps its buffers and kernels per batch size.
    std::vector<float> run(const float* input, int64_t rows, const layer_input_fn& on_layer_input = {}) const override;

    /// A decoder's next `rows` tokens of one sequence, after the tokens `cache` holds
    /// (their positions continue from cache.positions), which it then holds too. Returns
    /// rows x output width; the same logits the whole sequence run at once gives.
    std::vector<float> run_cached(const float* input, int64_t rows, cpu::kv_cache& cache) const;

    int64_t output_width() const override { return output_width_; }
    /// What the memory plan allocates per sample, in floats, and what one buffer per
    /// activation would take.
    int64_t planned_floats() const;
    int64_t unplanned_floats() const { return unplanned_floats_; }
    /// A stretch of steps that one value alone carries data into and out of (beside the
    /// caller's input, which every step may read: a decoder's attention reads the token
    /// positions from it): a decoder block, or a layer of a model without blocks.
    struct block {
        std::string name;                 // "layers.3", or the first layer's name outside blocks
        size_t first = 0, last = 0;       // steps [first, last)
        int64_t in_width = 0;             // floats per row of the value it reads (0: the caller's input)
        int64_t out_width = 0;            // floats per row of the value it leaves
        std::vector<std::string> layers;  // its linear and conv layers, in order
    };
    /// The model cut into blocks, in order (run/block_feed.hpp runs them one at a time). A
    /// block boundary lies where a single value is alive; steps whose layer names share a
    /// "layers.N." prefix stay in one block. Empty for a model with convolutions, whose
    /// values between steps may lie in blocked layouts.
    const std::vector<block>& blocks() const { return blocks_; }
    /// Runs block `b` on `rows` rows: `input` is the caller's input for those rows (as run()
    /// takes it), `carried` the value entering the block (rows x in_width; ignored for the
    /// first block), and the value it leaves goes to `out` (rows x out_width).
    void run_block(size_t b, const float* input, const float* carried, int64_t rows, const layer_input_fn& on_layer_input,
                   float* out) const;
    /// Re-reads the weights of layers whose tensors `m` (the model the engine was built
    /// from, with the same graph) now holds in other payloads: a stage that changes weights
    /// between block runs (sequential calibration); a bias is re-read with its weight.
    /// Throws std::logic_error for a weight an engine step folded (a conv's batchnorm).
    /// Returns whether any weight changed.
    bool reload_weights(const model& m);

    /// Steps after folding and fusion (for tests and `shrink describe`-like output).
    std::vector<std::string> step_summary() const;
    /// Per step at batch size `rows`, the layout it reads and writes ("plain" or
    /// "blocked"), and where it converts its input to plain or reads blocked data with
    /// shuffled weights; a last line when the output is converted.
    std::vector<std::string> layout_summary(int64_t rows) const;

  private:
    enum class kind { linear, conv, pool, activation, softmax, log_softmax, batchnorm, binary, concat, embedding, rms_norm, attention };
    struct step {
        const layer* source;
        kind k;
        std::vector<int> inputs;                   // value ids; value 0 is the caller's input
        std::vector<int64_t> in_sizes;             // per sample, per input
        int output = 0;
        std::vector<int64_t> in_shape, out_shape;  // per sample (in_shape: the first input's)
        int64_t out_size = 0;
        int input() const { return inputs[0]; }
        int64_t in_size() const { return in_sizes[0]; }
        std::vector<int64_t> operand_shape;              // binary: the second operand's
        std::vector<std::vector<int64_t>> in_shapes;     // concat: every input's
        // linear [out, in], conv [out, in/group, kh, kw] (batchnorm folded); batchnorm: scale. A
        // dense f32 weight shares the model's payload (a mapped file's pages) until folding writes it.
        shared_array<float> weight;  // embedding: the table; rms_norm: the scale
        std::vector<float> bias;    // batchnorm: shift
        cpu::activation post;       // fused into a linear (relu only) or a conv
        std::vector<std::string> folded;  // names of the layers this step absorbed
        bool scaled = false;              // a batchnorm folded into its weight and bias
        int attention_index = -1;         // attention: which of the decoder's attention layers
        // A W8A8 linear on the integer matmul: the weight's codes [out, in] and a scale per
        // output row (its float `weight` is then left empty).
        shared_array<int8_t> codes;
        std::vector<float> row_scales;
        const void* payload = nullptr;  // the model's payload the weight was read from (reload_weights)
        bool integer() const { return !codes.empty(); }
    };
    struct batch_plan;  // kernels, layouts and buffers for one batch size
    batch_plan& plan_for(int64_t rows, bool plain, int part) const;
    void run_part(batch_plan& plan, const float* input, int64_t rows, const layer_input_fn& on_layer_input, float* out) const;
    void run_steps(batch_plan& plan, const float* input, int64_t rows, size_t first, size_t last, const layer_input_fn& on_layer_input) const;
    float* value_data(batch_plan& plan, const float* input, int v) const;
    void load_matrix(step& s, const model& m) const;
    void find_blocks(const std::vector<size_t>& last_read, const std::vector<int64_t>& value_floats);

    std::vector<step> steps_;
    std::vector<block> blocks_;
    std::vector<int> block_in_, block_out_;  // per block: the value it reads (0: none) and leaves
    bool integer_kernels_ = true;
    std::vector<int> buffer_of_;           // value -> buffer; -1 for the caller's input
    std::vector<int64_t> buffer_floats_;   // per sample
    int64_t unplanned_floats_ = 0;
    int output_value_ = 0;
    int64_t output_width_ = 0;
    int64_t input_width_ = 0;
    int64_t chunk_rows_ = 0;
    // A language model's rows are tokens that attend to earlier tokens of their window:
    // they are never split across threads (the kernels use the threads instead).
    bool sequential_ = false;
    int attention_layers_ = 0;
    mutable cpu::kv_cache* cache_ = nullptr;  // during run_cached: attention reads and extends it
    // By rows, plain, and which part of a split batch (each part has its own buffers).
    mutable std::map<std::tuple<int64_t, bool, int>, std::unique_ptr<batch_plan>> plans_;
};

}  // namespace shrink

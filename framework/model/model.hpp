// The in-memory model: a graph of layers over named tensors, each tensor with an
// encoding (dense f32/f16/bf16, quantized int8/int4 with scales, sparse with a mask).
// Compression stages change encodings and shapes through the host API; the runtime
// executes any encoding by decoding to float (the reference path).
#pragma once

#include "model/array.hpp"
#include "model/dtype.hpp"
#include "model/ops.hpp"

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace shrink {

struct quant_spec {
    quant_spec() = default;
    quant_spec(int32_t bits_, bool symmetric_, uint64_t group_size_) : bits(bits_), symmetric(symmetric_), group_size(group_size_) {}

    int32_t bits = 8;         // 4 or 8: the codes' container
    bool symmetric = true;
    uint64_t group_size = 0;  // elements of a row per scale; 0 = one scale for the tensor
    // A table encoding instead of the integer grid: code c (in [-2^(bits-1), 2^(bits-1)))
    // stands for entry c + 2^(bits-1) of its table, times its group's scale when there are
    // scales. "" = the integer grid; "nf4": QLoRA's NormalFloat table (fixed, 16 values),
    // an absmax scale per group; "kmeans": a learned table per tensor or per row, no scales.
    std::string table;
    uint64_t books = 0;         // kmeans: tables, 1 or one per row
    bool double_quant = false;  // scales stored as int8 codes (scale_codes below)
};

/// QLoRA's NormalFloat 4-bit values (the paper's Appendix E; bitsandbytes' table).
extern const std::array<float, 16> nf4_table;

/// Double quantization of a tensor's scales (QLoRA): each scale stored as an int8 code
/// around the scales' mean, with an f32 scale per 256 codes. `scales` then holds what the
/// codes decode to, computed the same way by writer and reader.
struct scale_codes {
    shared_array<int8_t> codes;   // one per scale
    shared_array<float> steps;    // one per 256 codes
    float offset = 0;             // the scales' mean
    static constexpr uint64_t block = 256;
    /// The codes of `scales`; decoded() gives what they stand for.
    static scale_codes of(const std::vector<float>& scales);
    std::vector<float> decoded() const;
};

/// A named array of the model. Its payloads are shared_arrays: copying a tensor (forking a
/// model state) shares them until one side writes (copy-on-write), and a loaded model's
/// dense payloads are read in place from the mapped file.
struct tensor {
    std::vector<int64_t> shape;
    dtype type = dtype::f32;             // the dense payload's: f32 in `values`, f16 or bf16 in `half`
    shared_array<float> values;          // dense f32, when not quantized
    shared_array<uint16_t> half;         // dense f16 or bf16 bits, when not quantized
    std::optional<quant_spec> quant;
    shared_array<int8_t> q;              // one per element, when quantized
    shared_array<float> scales;
    shared_array<int8_t> zero_points;    // empty when symmetric
    shared_array<uint8_t> mask;          // one per element, 1 = kept; empty = dense (f32 only)
    shared_array<float> table;           // a table encoding's: books x 2^bits values (nf4: its fixed table)
    scale_codes scale_q;                 // double_quant: what the scales are stored as

    uint64_t element_count() const;
    bool sparse() const { return !mask.empty(); }
    uint64_t kept_count() const;  // elements the mask keeps (all when dense)
    // A weight reads as a matrix of rows = its first dimension (output features or
    // channels) and cols = the rest (a conv's [out, in/group, kh, kw] gives in/group*kh*kw).
    uint64_t rows() const { return matrix_rows(shape); }
    uint64_t cols() const { return matrix_cols(shape); }
    static uint64_t matrix_rows(const std::vector<int64_t>& shape);
    static uint64_t matrix_cols(const std::vector<int64_t>& shape);
    /// Scales a quantized tensor with this spec needs.
    static uint64_t scale_count(const std::vector<int64_t>& shape, const quant_spec& spec);
    /// Which scale (and zero point) element i of a quantized tensor uses.
    uint64_t scale_index(uint64_t i) const;
    /// Bytes this tensor occupies in a written model (payload, scales, zero points, mask).
    uint64_t stored_bytes() const;
    /// The type its payload is stored in: the float type, or i8/i4 codes when quantized.
    dtype stored_type() const { return quant ? (quant->bits == 8 ? dtype::i8 : dtype::i4) : type; }
    /// Dense floats: widened from f16/bf16, dequantized, zero where pruned.
    std::vector<float> decode() const;
    /// Elements [begin, begin + count) of decode(), into `out`, without decoding the rest.
    void decode_range(uint64_t begin, uint64_t count, float* out) const;
    /// "f32", "f32 sparse 50.0%", "int4 sym group 64 sparse 50.0%", ...
    std::string encoding_summary() const;
};

/// 8-bit quantization of a layer's input activations: static (asymmetric, one scale and
/// zero point from calibration), or dynamic per token (symmetric, each row's scale its
/// absmax / 127, computed when the model runs: SmoothQuant's and LLM.int8's activations).
struct input_quant {
    float scale = 1;
    int32_t zero_point = 0;
    bool per_token = false;  // dynamic: scale and zero_point are not used
};

/// Per-token dynamic quantization of `count` values of one row, in place: x becomes
/// s * clamp(round(x / s), -127, 127) with s = max(absmax, FLT_MIN) / 127, rounding half to even.
/// Every runtime and the ONNX export compute it the same way.
void quantize_row_per_token(float* row, uint64_t count);

/// The sliding window of a convolution or pooling layer over [C, H, W] activations.
struct window {
    std::array<int64_t, 2> kernel{1, 1};    // kh, kw (a conv's come from its weight)
    std::array<int64_t, 2> strides{1, 1};
    std::array<int64_t, 4> pads{0, 0, 0, 0};  // top, left, bottom, right
    std::array<int64_t, 2> dilations{1, 1};
    int64_t group = 1;                      // conv: input and output channels split in groups
    bool count_include_pad = false;         // avg_pool: padding counts in the divisor
};

/// Causal self-attention over a window of tokens (op attention): q [heads x head_dim],
/// k and v [kv_heads x head_dim] per token; query head h reads key/value head
/// h / (heads / kv_heads); rotary embeddings (the two halves of each head rotated, as
/// transformers' Llama does) with base rope_theta at the token's position.
struct attention_spec {
    int64_t heads = 0;
    int64_t kv_heads = 0;
    int64_t head_dim = 0;
    double rope_theta = 10000;
};

/// The ops a layer can be (model/ops.def), each documented in docs/model-format.md.
const std::vector<std::string>& known_ops();

/// Ops that carry a weight read as [out, in...] rows: what compression stages work on.
bool has_matrix(const std::string& op);

/// add, sub, mul, div: two activations, elementwise; the second broadcasts to the first.
bool is_binary(const std::string& op);

struct layer {
    std::string name;
    std::string op;  // one of known_ops()
    std::string input;
    std::vector<std::string> more_inputs;  // binary ops: the second operand; concat: the rest
    std::string output;
    std::string weight;  // linear: [out, in]; conv: [out, in/group, kh, kw]; batchnorm: [C] scale
    std::string bias;    // linear, conv: [out]; batchnorm: [C] shift; may be empty
    std::optional<input_quant> input_quantization;
    std::string factor_of;  // set on the two layers a factorizer made from one
    uint64_t rank = 0;
    window win;             // conv, max_pool, avg_pool
    float alpha = 0, beta = 0;  // leaky_relu: slope alpha; clip: [alpha, beta]
    int64_t axis = 0;           // concat: the per-sample axis joined (0 = channels or features)
    std::vector<int64_t> shape;  // reshape: the per-sample shape the same floats take
    attention_spec attn;         // attention

    /// input, then more_inputs.
    std::vector<std::string> inputs() const;
    /// The op's kind in the op table (model/ops.def); throws for an unknown op.
    op_kind kind() const { return op_kind_of(op); }
};

/// A layer with the fields most ops need (the rest default).
layer make_layer(std::string name, std::string op, std::string input, std::string output, std::string weight = {},
                 std::string bias = {});

struct model {
    std::string input = "input";
    int64_t input_features = 0;        // floats per sample
    std::vector<int64_t> input_shape;  // per sample, e.g. [1, 28, 28]; empty = [input_features]
    float input_scale = 1.0f;  // preprocessing: raw pixel * input_scale
    std::string output;
    std::vector<layer> layers;
    std::map<std::string, tensor> tensors;
    std::map<std::string, std::string> info;  // provenance written by whoever made the model

    const layer* find_layer(const std::string& name) const;
    layer* find_layer(const std::string& name);
    const tensor& at(const std::string& tensor_name) const;
    tensor& at(const std::string& tensor_name);
    /// Checks the graph is well formed (ops known, inputs defined before use, shapes
    /// chain). Throws std::runtime_error with the layer or tensor at fault.
    void validate() const;
    uint64_t parameter_count() const;
    /// Per-sample shape of every activation (the input and each layer's output), by name.
    /// Throws like validate() for a graph whose shapes do not chain.
    std::map<std::string, std::vector<int64_t>> activation_shapes() const;
};

/// Per-sample output shape of layer `l` on inputs of shapes `in` (one per l.inputs()).
/// Throws std::runtime_error naming the layer when the op does not fit its inputs.
std::vector<int64_t> layer_output_shape(const model& m, const layer& l, const std::vector<std::vector<int64_t>>& in);

/// Checks a quantized submission and returns the tensor it makes (keeping the mask of
/// `old`, whose pruned positions must decode to zero). Throws std::runtime_error.
tensor make_quantized(const tensor& old, const quant_spec& spec, std::vector<int8_t> q, std::vector<float> scales,
                      std::vector<int8_t> zero_points);

/// The same for a table encoding (spec.table set): codes, scales (nf4: one per group; kmeans:
/// none) and the table (kmeans: books x 2^bits values; nf4: ignored, its fixed table is
/// used). With spec.double_quant the scales are replaced by what their int8 codes decode
/// to. Pruned positions of `old` hold the lowest code (decoding masks them to 0).
/// A reader passes the stored scale codes as `stored` (then `scales` is ignored).
tensor make_table_quantized(const tensor& old, const quant_spec& spec, std::vector<int8_t> q, std::vector<float> scales,
                            std::vector<float> table, const scale_codes* stored = nullptr);

}  // namespace shrink

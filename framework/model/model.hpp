// The in-memory model: a graph of layers over named tensors, each tensor with an
// encoding (dense float, quantized int8/int4 with scales, sparse with a mask).
// Compression stages change encodings and shapes through the host API; the runtime
// executes any encoding by decoding to float (the reference path).
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace shrink {

struct quant_spec {
    int32_t bits = 8;         // 4 or 8
    bool symmetric = true;
    uint64_t group_size = 0;  // elements of a row per scale; 0 = one scale for the tensor
};

struct tensor {
    std::vector<int64_t> shape;
    std::vector<float> values;           // dense floats, when not quantized
    std::optional<quant_spec> quant;
    std::vector<int8_t> q;               // one per element, when quantized
    std::vector<float> scales;
    std::vector<int8_t> zero_points;     // empty when symmetric
    std::vector<uint8_t> mask;           // one per element, 1 = kept; empty = dense

    uint64_t element_count() const;
    bool sparse() const { return !mask.empty(); }
    uint64_t kept_count() const;  // elements the mask keeps (all when dense)
    uint64_t rows() const { return shape.size() == 2 ? uint64_t(shape[0]) : 1; }
    uint64_t cols() const { return shape.empty() ? 1 : uint64_t(shape.back()); }
    /// Scales a quantized tensor with this spec needs.
    static uint64_t scale_count(const std::vector<int64_t>& shape, const quant_spec& spec);
    /// Which scale (and zero point) element i of a quantized tensor uses.
    uint64_t scale_index(uint64_t i) const;
    /// Bytes this tensor occupies in a written model (payload, scales, zero points, mask).
    uint64_t stored_bytes() const;
    /// Dense floats: dequantized, zero where pruned.
    std::vector<float> decode() const;
    /// "f32", "f32 sparse 50.0%", "int4 sym group 64 sparse 50.0%", ...
    std::string encoding_summary() const;
};

/// Static quantization of a layer's input activations (8-bit, asymmetric).
struct input_quant {
    float scale = 1;
    int32_t zero_point = 0;
};

struct layer {
    std::string name;
    std::string op;  // "linear", "relu", "softmax"
    std::string input;
    std::string output;
    std::string weight;  // linear: [out, in]
    std::string bias;    // linear: [out], may be empty
    std::optional<input_quant> input_quantization;
    std::string factor_of;  // set on the two layers a factorizer made from one
    uint64_t rank = 0;
};

struct model {
    std::string input = "input";
    int64_t input_features = 0;
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
};

/// Checks a quantized submission and returns the tensor it makes (keeping the mask of
/// `old`, whose pruned positions must decode to zero). Throws std::runtime_error.
tensor make_quantized(const tensor& old, const quant_spec& spec, std::vector<int8_t> q, std::vector<float> scales,
                      std::vector<int8_t> zero_points);

}  // namespace shrink

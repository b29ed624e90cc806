// Building small ONNX graphs in tests, node by node, as exporters write them; and the
// check that an imported graph computes in shrink's engine what the reference
// interpreter computes on the file.
#pragma once

#include "model/model.hpp"

#include <onnx/onnx_pb.h>

#include <cstdint>
#include <filesystem>
#include <string>
#include <vector>

namespace shrink::test {

struct builder {
    onnx::ModelProto proto;
    onnx::GraphProto* g;
    /// A graph with one float input "x" of [batch, input_dims...], at `opset`.
    explicit builder(const std::vector<int64_t>& input_dims, int64_t opset = 13);
    void init(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& v);
    void init_i64(const std::string& name, const std::vector<int64_t>& v);
    /// An int8 (or, with `unsigned_codes`, uint8) initializer.
    void init_8bit(const std::string& name, const std::vector<int64_t>& dims, const std::vector<int>& v, bool unsigned_codes = false);
    /// A float Constant node (as PyTorch writes scalars: right before their reader).
    void constant(const std::string& name, const std::vector<int64_t>& dims, const std::vector<float>& v);
    onnx::NodeProto* node(const std::string& op, std::vector<std::string> in, const std::string& out);
    void output(const std::string& name);
    static void ints(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v);
    static void integer(onnx::NodeProto* n, const std::string& name, int64_t v);
    static void real(onnx::NodeProto* n, const std::string& name, float v);
    static void text(onnx::NodeProto* n, const std::string& name, const std::string& v);
    void save(const std::filesystem::path& file);
};

std::vector<float> random_values(size_t n, uint64_t seed, float sd = 0.3f);

/// Saves b's graph to `file`, imports it, and checks shrink's engine computes what the
/// ONNX interpreter does on `rows` random samples (to 2e-5 + 1e-4 relative).
model import_and_compare(builder& b, const std::filesystem::path& file, const std::vector<int64_t>& per_sample, int64_t rows,
                         uint64_t seed);

}  // namespace shrink::test

// What PyTorch really writes: the files in tests/fixtures/torch/ come from torch.onnx.export
// (Debian's python3-torch 1.13, opsets 13 and 17; tests/fixtures/torch/export.py makes
// them). Each must import, with the layers a reader of the PyTorch module expects, and
// compute what the ONNX graph computes in the reference interpreter. ONNX Runtime is
// checked on the same files by tests/interop/torch_exports.sh.
#include "onnx/import.hpp"
#include "onnx/interpreter.hpp"
#include "cpu/engine.hpp"
#include "support.hpp"
#include "unit/onnx_builder.hpp"

#include <catch2/catch.hpp>

#include <algorithm>
#include <map>

using namespace shrink;

namespace {

struct expected {
    std::vector<int64_t> per_sample;
    std::vector<std::string> ops;
};

// batchnorm after a conv folds into it; BatchNorm1d after a linear stays a batchnorm
// layer; Dropout and views vanish; each GELU is one layer.
const std::map<std::string, expected>& fixtures() {
    static const std::map<std::string, expected> all{
        {"mlp", {{784}, {"linear", "batchnorm", "gelu", "linear", "tanh", "linear"}}},
        {"cnn", {{1, 28, 28}, {"conv", "relu", "max_pool", "conv", "relu", "max_pool", "flatten", "linear", "gelu", "linear"}}},
        {"residual", {{1, 28, 28}, {"conv", "relu", "conv", "relu", "conv", "add", "relu", "global_avg_pool", "flatten", "linear"}}},
        {"squeeze_excite",
         {{1, 28, 28}, {"conv", "relu", "global_avg_pool", "flatten", "linear", "relu", "linear", "sigmoid", "reshape", "mul", "flatten", "linear"}}},
        {"gelu_forms", {{784}, {"linear", "gelu_tanh", "linear", "gelu_tanh", "linear", "gelu", "linear", "log_softmax"}}}};
    return all;
}

}  // namespace

TEST_CASE("PyTorch's own ONNX exports import and compute what the graph computes", "[onnx][import][torch]") {
    const std::filesystem::path dir = std::filesystem::path(SHRINK_SOURCE_DIR) / "tests/fixtures/torch";
    for (const auto& [name, want] : fixtures()) {
        for (int opset : {13, 17}) {
            const std::filesystem::path file = dir / (name + "-opset" + std::to_string(opset) + ".onnx");
            INFO(file.string());
            // Committed with the tests; a checkout without them must fail, not pass quietly.
            REQUIRE(std::filesystem::exists(file));
            const model m = onnx_import::import_onnx(file);
            std::vector<std::string> ops;
            for (const layer& l : m.layers) ops.push_back(l.op);
            CHECK(ops == want.ops);
            CHECK(m.info.at("opset") == std::to_string(opset));
            int64_t features = 1;
            for (int64_t d : want.per_sample) features *= d;
            for (int64_t rows : {1, 5}) {
                const std::vector<float> x = test::random_values(size_t(rows * features), uint64_t(rows + opset), 1.0f);
                std::vector<int64_t> shape{rows};
                shape.insert(shape.end(), want.per_sample.begin(), want.per_sample.end());
                const auto ref = onnx_import::run_graph(onnx_import::read_model(file),
                                                        {{"input", {onnx_import::element::f32, shape, {x.begin(), x.end()}}}})[0];
                const std::vector<float> got = engine(m).run(x.data(), rows);
                REQUIRE(got.size() == ref.data.size());
                double worst = 0;
                for (size_t i = 0; i < got.size(); ++i) worst = std::max(worst, std::abs(got[i] - ref.data[i]) / (1 + std::abs(ref.data[i])));
                CHECK(worst < 1e-5);
            }
        }
    }
}

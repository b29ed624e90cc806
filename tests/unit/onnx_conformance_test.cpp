// ONNX's own conformance data (Debian package libonnx-testdata): every case whose ops
// the interpreter claims must pass within the backend test tolerance, and no such case
// may be skipped. Prints "onnx-conformance: R run, P passed, S skipped" and the reasons.
#include "onnx/interpreter.hpp"
#include "util/errors.hpp"

#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <iostream>
#include <map>

using namespace shrink::onnx_import;
namespace fs = std::filesystem;

namespace {

const char* testdata = "/usr/share/libonnx-testdata/data";

std::string compare(const nd_tensor& got, const nd_tensor& want) {
    if (got.shape != want.shape) return "shape differs";
    // The ONNX backend tests' tolerance; half-precision types get their own precision.
    const double rtol = want.type == element::f16 ? 4e-3 : want.type == element::bf16 ? 1.6e-2 : 1e-3, atol = 1e-7;
    for (size_t i = 0; i < want.data.size(); ++i) {
        const double g = got.data[i], w = want.data[i];
        if (std::isnan(w) && std::isnan(g)) continue;
        if (std::isinf(w) && g == w) continue;
        if (!(std::fabs(g - w) <= atol + rtol * std::fabs(w)))
            return "value " + std::to_string(i) + ": got " + std::to_string(g) + ", expected " + std::to_string(w);
    }
    return "";
}

}  // namespace

TEST_CASE("onnx conformance: every case whose ops are supported passes", "[onnx]") {
    REQUIRE(fs::is_directory(testdata));  // scripts/setup installs libonnx-testdata
    int run = 0, passed = 0, skipped = 0;
    std::map<std::string, int> skip_reasons;
    std::vector<std::string> failures;
    for (const char* suite : {"node", "pytorch-converted", "pytorch-operator"}) {
        std::vector<fs::path> cases;
        for (const auto& e : fs::directory_iterator(fs::path(testdata) / suite))
            if (fs::is_regular_file(e.path() / "model.onnx")) cases.push_back(e.path());
        std::sort(cases.begin(), cases.end());
        for (const fs::path& dir : cases) {
            const std::string name = std::string(suite) + "/" + dir.filename().string();
            graph g;
            std::string why;
            try {
                g = read_model(dir / "model.onnx");
            } catch (const shrink::input_error& e) {
                why = "the model uses an element type shrink does not read";
            }
            // The interpreter runs tensors; sequences, maps and optionals are other value kinds.
            if (why.empty() && g.non_tensor_values) why = "sequence or optional values";
            std::string claimed_op;
            if (why.empty())
                for (const node& n : g.nodes) {
                    const bool ours = (n.domain.empty() || n.domain == "ai.onnx") && supported_ops().count(n.op);
                    if (ours) claimed_op = n.op;
                    if (!ours && why.empty()) why = "op " + (n.domain.empty() ? "" : n.domain + ".") + n.op;
                    bool has_graph = false;
                    for (const auto& [k, a] : n.attributes) has_graph = has_graph || a.has_graph;
                    if (has_graph && why.empty()) why = "subgraphs";
                }
            if (!why.empty()) {
                ++skipped;
                ++skip_reasons[why];
                // A case whose every op we claim must never be skipped.
                if (why.rfind("op ", 0) != 0 && why != "subgraphs" && why != "sequence or optional values" && !claimed_op.empty()) {
                    bool all_claimed = true;
                    for (const node& n : g.nodes) all_claimed = all_claimed && supported_ops().count(n.op);
                    if (all_claimed) failures.push_back(name + ": skipped (" + why + ") although its ops are supported");
                }
                continue;
            }
            std::string failure, random;
            for (const auto& set : fs::directory_iterator(dir)) {
                if (!fs::is_directory(set.path()) || set.path().filename().string().rfind("test_data_set_", 0) != 0) continue;
                try {
                    std::map<std::string, nd_tensor> inputs;
                    for (size_t k = 0; fs::exists(set.path() / ("input_" + std::to_string(k) + ".pb")); ++k) {
                        if (k >= g.inputs.size()) throw std::runtime_error("more test inputs than graph inputs");
                        inputs[g.inputs[k]] = read_tensor_file(set.path() / ("input_" + std::to_string(k) + ".pb"));
                    }
                    const std::vector<nd_tensor> out = run_graph(g, inputs);
                    for (size_t k = 0; fs::exists(set.path() / ("output_" + std::to_string(k) + ".pb")); ++k) {
                        const nd_tensor want = read_tensor_file(set.path() / ("output_" + std::to_string(k) + ".pb"));
                        if (k >= out.size()) throw std::runtime_error("missing output " + std::to_string(k));
                        if (const std::string d = compare(out[k], want); !d.empty())
                            throw std::runtime_error("output " + std::to_string(k) + ": " + d);
                    }
                } catch (const random_op_error& e) {
                    random = e.what();
                    break;
                } catch (const std::exception& e) {
                    failure = set.path().filename().string() + ": " + e.what();
                    break;
                }
            }
            if (!random.empty()) {  // no fixed expected output can exist
                ++skipped;
                ++skip_reasons["randomness (" + random + ")"];
                continue;
            }
            ++run;
            if (failure.empty()) ++passed;
            else failures.push_back(name + ": " + failure);
        }
    }
    std::cout << "onnx-conformance: " << run << " run, " << passed << " passed, " << skipped << " skipped\n";
    std::vector<std::pair<int, std::string>> reasons;
    for (const auto& [r, n] : skip_reasons) reasons.emplace_back(n, r);
    std::sort(reasons.rbegin(), reasons.rend());
    std::cout << "skipped for:";
    for (const auto& [n, r] : reasons) std::cout << " " << r << " (" << n << ");";
    std::cout << "\n";
    for (const std::string& f : failures) std::cout << "FAILED " << f << "\n";
    CHECK(failures.empty());
    CHECK(run > 0);
}

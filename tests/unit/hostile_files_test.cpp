// Hostile model files and arguments found by trying shrink as an attacker would (issue 16):
// each is refused with a message naming the file and the node, tensor or key, exit 1, no
// signal, no hang, and within bounded memory.
#include "model/model.hpp"
#include "model/safetensors.hpp"
#include "onnx_builder.hpp"
#include "model/surgery.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstring>
#include <fstream>
#include <functional>

using namespace shrink;
namespace fs = std::filesystem;

namespace {

/// `shrink verify FILE` must refuse with exit 1 and a message holding `file` and `what`.
void refused(const fs::path& file, const std::string& what) {
    const auto r = test::shrink_cli("verify " + file.string());
    INFO(r.output);
    CHECK(r.code == 1);
    CHECK(r.output.find(file.string()) != std::string::npos);
    CHECK(r.output.find(what) != std::string::npos);
}

test::builder conv_graph(const std::vector<float>& weight = test::random_values(2 * 1 * 3 * 3, 1)) {
    test::builder b({1, 6, 6});
    b.init("W", {2, 1, 3, 3}, weight);
    return b;
}

}  // namespace

TEST_CASE("ONNX nodes are checked before the interpreter computes anything", "[hostile][onnx][cli]") {
    test::temp_dir dir;
    SECTION("Conv with group 0 (was SIGFPE)") {
        auto b = conv_graph();
        test::builder::integer(b.node("Conv", {"x", "W"}, "y"), "group", 0);
        b.output("y");
        b.save(dir / "m.onnx");
        refused(dir / "m.onnx", "node 'Conv_y' (Conv): group 0 does not divide");
    }
    SECTION("MaxPool with strides 0 and auto_pad VALID (was SIGFPE)") {
        test::builder b({1, 6, 6});
        auto* n = b.node("MaxPool", {"x"}, "y");
        test::builder::ints(n, "kernel_shape", {2, 2});
        test::builder::ints(n, "strides", {0, 0});
        test::builder::text(n, "auto_pad", "VALID");
        b.output("y");
        b.save(dir / "m.onnx");
        refused(dir / "m.onnx", "node 'MaxPool_y' (MaxPool): strides value 0 is outside [1, 2^20]");
    }
    SECTION("variadic ops with an empty input name (Max was UB: a null input, found by fuzzing)") {
        for (const char* op : {"Max", "Min", "Sum", "Mean", "Concat"}) {
            test::builder b({4});
            auto* n = b.node(op, {"x", "", "x"}, "y");
            if (std::string(op) == "Concat") test::builder::integer(n, "axis", 0);
            b.output("y");
            b.save(dir / "m.onnx");
            std::string what = "(";
            what.append(op).append("): input 1 is required, and its name is empty");
            refused(dir / "m.onnx", what);
        }
    }
    SECTION("Conv whose weight input name is empty (was SIGSEGV)") {
        auto b = conv_graph();
        b.node("Conv", {"x", ""}, "y");
        b.output("y");
        b.save(dir / "m.onnx");
        refused(dir / "m.onnx", "node 'Conv_y' (Conv): input 1 is required, and its name is empty");
    }
    SECTION("BatchNormalization with one input (was SIGSEGV)") {
        test::builder b({2, 4, 4});
        b.node("BatchNormalization", {"x"}, "y");
        b.output("y");
        b.save(dir / "m.onnx");
        refused(dir / "m.onnx", "node 'BatchNormalization_y' (BatchNormalization): takes 5 inputs, has 1");
    }
    SECTION("Conv whose kernel_shape disagrees with its 3x3 weight (was SIGSEGV)") {
        auto b = conv_graph();
        test::builder::ints(b.node("Conv", {"x", "W"}, "y"), "kernel_shape", {400, 400});
        b.output("y");
        b.save(dir / "m.onnx");
        refused(dir / "m.onnx", "kernel_shape differs from the weight's spatial shape");
    }
    SECTION("Gemm with one input (was undefined behaviour)") {
        test::builder b({4});
        b.node("Gemm", {"x"}, "y");
        b.output("y");
        b.save(dir / "m.onnx");
        refused(dir / "m.onnx", "node 'Gemm_y' (Gemm): takes 2 to 3 inputs, has 1");
    }
    SECTION("every node's structure is checked before the first node computes") {
        // The first node would fail when computed; the second's arity is refused first.
        test::builder b({4});
        b.init_i64("bad_shape", {7});
        b.node("Reshape", {"x", "bad_shape"}, "r");
        b.node("Gemm", {"r"}, "y");
        b.output("y");
        b.save(dir / "m.onnx");
        refused(dir / "m.onnx", "node 'Gemm_y' (Gemm): takes 2 to 3 inputs, has 1");
    }
    SECTION("NaN weights do not import into a file verify refuses") {
        test::builder b({4});
        std::vector<float> w = test::random_values(3 * 4, 2);
        w[5] = std::nanf("");
        b.init("W", {3, 4}, w);
        test::builder::integer(b.node("Gemm", {"x", "W"}, "y"), "transB", 1);
        b.output("y");
        b.save(dir / "m.onnx");
        const auto r = test::shrink_cli("import " + (dir / "m.onnx").string());
        INFO(r.output);
        CHECK(r.code == 1);
        CHECK(r.output.find("is not finite") != std::string::npos);
        CHECK_FALSE(fs::exists(dir / "m.safetensors"));
    }
}

TEST_CASE("reading a hostile ONNX file takes bounded memory", "[hostile][onnx][cli][memory]") {
    test::temp_dir dir;
    // The process's own baseline: verifying a valid one-node file.
    test::builder ok({4});
    ok.node("Relu", {"x"}, "y");
    ok.output("y");
    ok.save(dir / "ok.onnx");
    uint64_t baseline = 0;
    REQUIRE(test::shrink_cli_peak("verify " + (dir / "ok.onnx").string(), baseline).code == 0);
    // Refused, naming `what`, within 64 MiB above the baseline.
    auto refused_within_bounds = [&](const fs::path& file, const std::string& what) {
        uint64_t peak = 0;
        const auto r = test::shrink_cli_peak("verify " + file.string(), peak);
        INFO(r.output);
        CHECK(r.code == 1);
        CHECK(r.output.find(what) != std::string::npos);
        CHECK(peak < baseline + 64 * 1024);
    };

    SECTION("an initializer claiming 2^28 elements with 4 bytes of data (was 2.3 GB)") {
        test::builder b({4});
        onnx::TensorProto* t = b.g->add_initializer();
        t->set_name("W");
        t->set_data_type(onnx::TensorProto::FLOAT);
        t->add_dims(int64_t(1) << 28);
        t->set_raw_data(std::string(4, '\0'));
        b.node("Relu", {"x"}, "y");
        b.output("y");
        b.save(dir / "m.onnx");
        refused_within_bounds(dir / "m.onnx", "initializer 'W': holds 4 bytes, its shape needs 1073741824");
    }
    SECTION("four unused Expand nodes (was 3.3 GB and 35 s)") {
        test::builder b({4});
        b.init_i64("shape", {int64_t(1) << 12, int64_t(1) << 12, 1, 1});  // with x [2, 4]: 2^27 elements
        for (int k = 0; k < 4; ++k) b.node("Expand", {"x", "shape"}, "big" + std::to_string(k));
        b.node("Relu", {"x"}, "y");
        b.output("y");
        b.save(dir / "m.onnx");
        refused_within_bounds(dir / "m.onnx", "node 'Expand_big0' (Expand): a tensor of 134217728 elements would take the graph's values past their budget");
    }
}

TEST_CASE("external data offsets must be numbers", "[hostile][onnx][cli]") {
    test::temp_dir dir;
    test::builder b({4});
    onnx::TensorProto* t = b.g->add_initializer();
    t->set_name("W");
    t->set_data_type(onnx::TensorProto::FLOAT);
    t->add_dims(4);
    t->set_data_location(onnx::TensorProto::EXTERNAL);
    auto* location = t->add_external_data();
    location->set_key("location");
    location->set_value("w.bin");
    auto* offset = t->add_external_data();
    offset->set_key("offset");
    offset->set_value("sixteen");
    test::write_text(dir / "w.bin", std::string(16, '\0'));
    b.node("Relu", {"x"}, "y");
    b.output("y");
    b.save(dir / "m.onnx");
    refused(dir / "m.onnx", "initializer 'W': external data offset 'sixteen' is not a non-negative decimal integer");
}

TEST_CASE("verify reads an ONNX file as ONNX", "[hostile][onnx][cli]") {
    test::temp_dir dir;
    test::builder b({4});
    b.node("Relu", {"x"}, "y");
    b.output("y");
    b.save(dir / "m.onnx");
    const auto r = test::shrink_cli("verify " + (dir / "m.onnx").string());
    INFO(r.output);
    CHECK(r.code == 0);
    CHECK(r.output.find("ok: ONNX that imports as 1 layers") != std::string::npos);
}

namespace {

/// Writes `to`: the model file `from` with its encoding records ("shrink.tensors"), or
/// another metadata entry's JSON, changed by `edit`. The data offsets are relative to the data section, so a longer header moves
/// nothing.
void rewrite_records(const std::filesystem::path& from, const std::filesystem::path& to,
                     const std::function<void(nlohmann::json&)>& edit, const std::string& key = "shrink.tensors") {
    const std::string bytes = test::read_text(from);
    uint64_t header_len = 0;
    std::memcpy(&header_len, bytes.data(), 8);
    nlohmann::json header = nlohmann::json::parse(bytes.substr(8, header_len));
    nlohmann::json records = nlohmann::json::parse(header["__metadata__"][key].get<std::string>());
    edit(records);
    header["__metadata__"][key] = records.dump();
    std::string text = header.dump();
    while (text.size() % 8) text += ' ';
    const uint64_t new_len = text.size();
    std::string out(8, '\0');
    std::memcpy(out.data(), &new_len, 8);
    out += text + bytes.substr(8 + header_len);
    test::write_text(to, out);
}

}  // namespace

TEST_CASE("a table encoding's record that does not match its entries is refused, naming the file and tensor",
          "[hostile][safetensors][codebook]") {
    model m = test::tiny_model(4, 8);  // fc1 16 x 8, fc2 8 x 16
    quant_spec nf4(4, true, 4);
    nf4.table = "nf4";
    nf4.double_quant = true;
    tensor& w1 = m.at("fc1.weight");
    w1 = make_table_quantized(w1, nf4, std::vector<int8_t>(w1.element_count(), 1), std::vector<float>(32, 0.5f), {});
    quant_spec km(4, true, 0);
    km.table = "kmeans";
    km.books = 1;
    tensor& w2 = m.at("fc2.weight");
    std::vector<float> table(16);
    for (int j = 0; j < 16; ++j) table[size_t(j)] = float(j) / 16;
    w2 = make_table_quantized(w2, km, std::vector<int8_t>(w2.element_count(), -3), {}, table);
    test::temp_dir dir;
    save_model(m, dir / "m.safetensors");
    REQUIRE(test::shrink_cli("verify " + (dir / "m.safetensors").string()).code == 0);
    const std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>> cases{
        {[](nlohmann::json& r) { r["fc2.weight"]["books"] = 3; }, "entry 'fc2.weight.table' has 64 bytes, expected 192"},
        {[](nlohmann::json& r) { r["fc2.weight"]["books"] = 0; }, "tensor 'fc2.weight': a k-means tensor needs 1 to rows tables"},
        {[](nlohmann::json& r) { r["fc2.weight"]["books"] = 8; }, "entry 'fc2.weight.table' has 64 bytes, expected 512"},
        {[](nlohmann::json& r) { r["fc1.weight"]["table"] = "fp4"; }, "tensor 'fc1.weight': unknown table encoding 'fp4'"},
        {[](nlohmann::json& r) { r["fc1.weight"]["double_quant"] = false; }, "entry 'fc1.weight.scales' is missing"},
        {[](nlohmann::json& r) { r["fc1.weight"].erase("double_quant"); }, "malformed encoding record"},
        {[](nlohmann::json& r) { r["fc1.weight"]["symmetric"] = false; }, "a table encoding has no zero points"},
    };
    int i = 0;
    for (const auto& [edit, message] : cases) {
        const std::filesystem::path bad = dir / ("bad" + std::to_string(i++) + ".safetensors");
        rewrite_records(dir / "m.safetensors", bad, edit);
        const auto r = test::shrink_cli("verify " + bad.string());
        INFO(r.output);
        CHECK(r.code != 0);
        CHECK(r.output.find(bad.filename().string()) != std::string::npos);
        CHECK(r.output.find(message) != std::string::npos);
    }
}

TEST_CASE("layers' input quantization round-trips; a malformed one is refused, naming the file and layer", "[hostile][safetensors]") {
    model m = test::tiny_model(4, 8);
    set_input_quantization_per_token(m, "fc1");
    set_input_quantization(m, "fc2", 0.05f, 3);
    test::temp_dir dir;
    save_model(m, dir / "m.safetensors");
    const model back = load_model(dir / "m.safetensors");
    REQUIRE(back.find_layer("fc1")->input_quantization);
    CHECK(back.find_layer("fc1")->input_quantization->per_token);
    REQUIRE(back.find_layer("fc2")->input_quantization);
    CHECK_FALSE(back.find_layer("fc2")->input_quantization->per_token);
    CHECK(back.find_layer("fc2")->input_quantization->scale == 0.05f);
    CHECK(back.find_layer("fc2")->input_quantization->zero_point == 3);
    auto quant_of = [](nlohmann::json& graph, const std::string& layer) -> nlohmann::json& {
        for (nlohmann::json& l : graph["layers"])
            if (l["name"] == layer) return l["input_quant"];
        throw std::logic_error("no layer " + layer);
    };
    const std::vector<std::pair<std::function<void(nlohmann::json&)>, std::string>> cases{
        {[&](nlohmann::json& g) { quant_of(g, "fc1") = {{"per_token", false}}; }, "layer 'fc1': input_quant per_token must be true and alone"},
        {[&](nlohmann::json& g) { quant_of(g, "fc1")["scale"] = 2; }, "layer 'fc1': input_quant per_token must be true and alone"},
        {[&](nlohmann::json& g) { quant_of(g, "fc2")["scale"] = 0; }, "layer 'fc2': input_quant needs a positive finite scale"},
        {[&](nlohmann::json& g) { quant_of(g, "fc2")["zero_point"] = 300; }, "layer 'fc2': input_quant needs a positive finite scale"},
    };
    int i = 0;
    for (const auto& [edit, message] : cases) {
        const std::filesystem::path bad = dir / ("bad" + std::to_string(i++) + ".safetensors");
        rewrite_records(dir / "m.safetensors", bad, edit, "shrink.graph");
        const auto r = test::shrink_cli("verify " + bad.string());
        INFO(r.output);
        CHECK(r.code == 1);
        CHECK(r.output.find(bad.filename().string()) != std::string::npos);
        CHECK(r.output.find(message) != std::string::npos);
    }
}

TEST_CASE("a group size of 2^64 - 1 does not wrap the scale count", "[hostile][safetensors]") {
    const quant_spec huge{8, true, UINT64_MAX};
    CHECK(tensor::scale_count({4, 8}, huge) == 4);  // one group per row, not (8 + 2^64 - 2) / (2^64 - 1) = 0
    CHECK(tensor::scale_count({4, 8}, {8, true, 3}) == 12);

    // A file saying so verifies (one scale per row, as stored) and runs.
    model m = test::tiny_model(4, 8);
    tensor& w = m.at("fc1.weight");
    const uint64_t rows = w.rows(), cols = w.cols();
    std::vector<int8_t> q(rows * cols, 1);
    w = make_quantized(w, {8, true, cols}, std::move(q), std::vector<float>(rows, 0.5f), {});
    test::temp_dir dir;
    save_model(m, dir / "m.safetensors");
    rewrite_records(dir / "m.safetensors", dir / "huge.safetensors", [&](nlohmann::json& records) {
        REQUIRE(records["fc1.weight"]["group_size"] == cols);
        records["fc1.weight"]["group_size"] = UINT64_MAX;
    });
    const auto r = test::shrink_cli("verify " + (dir / "huge.safetensors").string());
    INFO(r.output);
    CHECK(r.code == 0);
    const model back = load_model(dir / "huge.safetensors");
    CHECK(back.at("fc1.weight").quant->group_size == UINT64_MAX);
    CHECK(back.at("fc1.weight").decode() == m.at("fc1.weight").decode());
}

TEST_CASE("a --set key with thousands of segments is refused at once", "[hostile][recipe][cli]") {
    std::string key = "stages";
    for (int i = 0; i < 32000; ++i) key += ".a";
    uint64_t peak = 0;
    const auto r = test::shrink_cli_peak("validate " + std::string(SHRINK_SOURCE_DIR) + "/pipelines/quickstart.yaml --set " + key + "=1", peak);
    CHECK(r.code == 2);
    CHECK(r.output.find("more than 16 key segments") != std::string::npos);
    CHECK(peak < 512 * 1024);
}

TEST_CASE("a 5,000-character stage id is refused before anything is written", "[hostile][recipe][cli]") {
    test::temp_dir dir;
    const std::string id(5000, 'a');
    test::write_text(dir / "r.yaml", "version: 1\nname: t\nmodel: m.safetensors\nstages:\n  - { id: " + id + ", use: quantizer.rtn }\n");
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "out").string());
    INFO(r.output.substr(0, 2000));
    CHECK(r.code == 1);
    CHECK(r.output.find("r.yaml:5:") != std::string::npos);
    CHECK(r.output.find("is 5000 characters long; at most 64 are allowed") != std::string::npos);
    CHECK(r.output.size() < 2000);  // the id is not echoed whole
    CHECK_FALSE(fs::exists(dir / "out"));
}

TEST_CASE("a .so symbolic link loop in a plugin directory is a broken plugin file (exit 1)", "[hostile][plugins][cli]") {
    test::temp_dir dir;
    fs::create_directory(dir / "plugins");
    fs::create_symlink("b.so", dir / "plugins" / "a.so");
    fs::create_symlink("a.so", dir / "plugins" / "b.so");
    fs::create_symlink("missing.so", dir / "plugins" / "dangling.so");  // no file at all: passed over
    const auto r = test::shrink_cli("plugins --plugin-path " + (dir / "plugins").string());
    INFO(r.output);
    CHECK(r.code == 1);
    // Either link of the loop may be met first (directory order).
    const std::string message = ".so: error: cannot read this plugin file: Too many levels of symbolic links";
    CHECK((r.output.find((dir / "plugins" / "a").string() + message) != std::string::npos ||
           r.output.find((dir / "plugins" / "b").string() + message) != std::string::npos));
}

TEST_CASE("inputs the fuzzer found are refused, not crashed on", "[hostile][fuzz][cli]") {
    // tests/fixtures/fuzz/: each file a finding of scripts/fuzz, kept once fixed
    // (docs/fuzzing.md). flatten-axis.onnx: a Flatten whose axis (93) lay past its input's
    // rank read past the shape (heap-buffer-overflow under ASan). max-empty-input.onnx: a
    // Max whose second input name was empty dereferenced a null input (UBSan): a variadic
    // op's inputs are all required. int64-out-of-range.onnx: a Reshape whose shape held
    // 2^63 converted a double past int64's range (UBSan): integers are range-checked.
    const std::map<std::string, std::string> expected{
        {"flatten-axis.onnx", "node '/Flatten' (Flatten): axis 93 out of range"},
        {"max-empty-input.onnx", "node 'act1.mul' (Max): input 1 is required, and its name is empty"},
        {"int64-out-of-range.onnx", "node '/Reshape' (Reshape): value 9223372036854775808.000000 is not a 64-bit integer"}};
    int seen = 0;
    for (const auto& e : fs::directory_iterator(fs::path(SHRINK_SOURCE_DIR) / "tests" / "fixtures" / "fuzz")) {
        INFO(e.path());
        const auto r = test::shrink_cli("verify " + e.path().string());
        CHECK(r.code == 1);
        if (auto it = expected.find(e.path().filename().string()); it != expected.end()) CHECK(r.output.find(it->second) != std::string::npos);
        ++seen;
    }
    CHECK(seen >= int(expected.size()));
}

#include "model/safetensors.hpp"
#include "support.hpp"
#include "util/errors.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cstring>

using namespace shrink;
using Catch::Matchers::Contains;

namespace {

/// The tiny model with every encoding: fc1 int4 group 8 asymmetric and sparse, fc2 int8
/// per-channel symmetric, fc3 dense float and sparse.
model encoded_model() {
    model m = test::tiny_model(3, 32);
    tensor& w1 = m.at("fc1.weight");
    std::vector<uint8_t> mask(w1.element_count());
    for (size_t i = 0; i < mask.size(); ++i) mask[i] = i % 3 != 0;
    tensor sparse1 = w1;
    sparse1.mask = mask;
    for (size_t i = 0; i < mask.size(); ++i)
        if (!mask[i]) sparse1.values.write()[i] = 0;
    const uint64_t scales1 = tensor::scale_count(w1.shape, {4, false, 8});
    std::vector<int8_t> q1(w1.element_count()), z1(scales1, -2);
    for (size_t i = 0; i < q1.size(); ++i) q1[i] = mask[i] ? int8_t(int(i % 16) - 8) : int8_t(-2);
    w1 = make_quantized(sparse1, {4, false, 8}, q1, std::vector<float>(scales1, 0.01f), z1);

    tensor& w2 = m.at("fc2.weight");
    std::vector<int8_t> q2(w2.element_count());
    for (size_t i = 0; i < q2.size(); ++i) q2[i] = int8_t(int(i * 37 % 255) - 127);
    w2 = make_quantized(w2, {8, true, uint64_t(w2.shape[1])}, q2, std::vector<float>(size_t(w2.shape[0]), 0.002f), {});

    tensor& w3 = m.at("fc3.weight");
    w3.mask.assign(w3.element_count(), 1);
    w3.mask.write()[0] = 0;
    w3.values.write()[0] = 0;
    m.layers[0].input_quantization = input_quant{0.02f, 3};
    return m;
}

std::string header_of(const std::string& bytes) {
    uint64_t n = 0;
    std::memcpy(&n, bytes.data(), 8);
    return bytes.substr(8, n);
}

std::string with_header(const std::string& bytes, const std::string& header) {
    std::string h = header;
    h.append((8 - h.size() % 8) % 8, ' ');
    std::string out(8, '\0');
    const uint64_t n = h.size();
    std::memcpy(out.data(), &n, 8);
    uint64_t old = 0;
    std::memcpy(&old, bytes.data(), 8);
    return out + h + bytes.substr(8 + old);
}

std::string parse_error(const std::string& bytes) {
    try {
        parse_model(bytes, "bad.safetensors");
    } catch (const input_error& e) {
        return e.what();
    }
    return "";
}

}  // namespace

TEST_CASE("every encoding round-trips exactly, and sizes are what is written", "[safetensors]") {
    const model m = encoded_model();
    const std::string bytes = serialize_model(m);
    CHECK(serialized_size(m) == bytes.size());
    const model back = parse_model(bytes, "mem");
    CHECK(serialize_model(back) == bytes);
    for (const auto& [name, t] : m.tensors) {
        const tensor& u = back.at(name);
        CHECK(u.shape == t.shape);
        CHECK(u.mask == t.mask);
        CHECK(u.decode() == t.decode());
        CHECK(u.stored_bytes() == t.stored_bytes());
    }
    CHECK(back.layers[0].input_quantization->zero_point == 3);
    // Packed int4 of kept values only: a third of fc1 is pruned.
    const tensor& w1 = back.at("fc1.weight");
    CHECK(w1.stored_bytes() == (w1.kept_count() + 1) / 2 + w1.scales.size() * 5 + (w1.element_count() + 7) / 8);
}

TEST_CASE("the header follows the safetensors layout", "[safetensors]") {
    const std::string bytes = serialize_model(test::tiny_model());
    const std::string header = header_of(bytes);
    CHECK(header.size() % 8 == 0);
    const auto j = nlohmann::json::parse(header);
    CHECK(j["fc1.weight"]["dtype"] == "F32");
    CHECK(j["fc1.weight"]["shape"] == nlohmann::json::array({16, 784}));
    CHECK(j["__metadata__"]["shrink.format"] == "1");
}

TEST_CASE("malformed files are refused with a message naming the file", "[safetensors]") {
    const std::string good = serialize_model(test::tiny_model(1, 8));
    auto j = nlohmann::json::parse(header_of(good));

    CHECK_THAT(parse_error("abc"), Contains("bad.safetensors: error: not a safetensors file"));
    std::string huge = good;
    huge[7] = char(0x7f);
    CHECK_THAT(parse_error(huge), Contains("header length"));
    CHECK_THAT(parse_error(with_header(good, "[1, 2]")), Contains("header is not a JSON object"));
    CHECK_THAT(parse_error(with_header(good, "{\"a\": ")), Contains("header is not a JSON object"));
    CHECK_THAT(parse_error(good.substr(0, good.size() - 4)), Contains("outside the"));

    auto edit = [&](auto f) {
        auto k = j;
        f(k);
        return parse_error(with_header(good, k.dump()));
    };
    CHECK_THAT(edit([](auto& k) { k["fc1.bias"]["dtype"] = "F64"; }), Contains("tensor 'fc1.bias': dtype 'F64' is not one shrink reads"));
    CHECK_THAT(edit([](auto& k) { k["fc1.bias"]["shape"] = {17}; }), Contains("tensor 'fc1.bias': holds 64 bytes but its shape and dtype need 68"));
    CHECK_THAT(edit([](auto& k) { k["fc1.bias"]["shape"] = {-1}; }), Contains("non-negative integers"));
    CHECK_THAT(edit([](auto& k) {
                   auto o = k["fc2.bias"]["data_offsets"];
                   k["fc2.bias"]["data_offsets"] = {o[0].template get<uint64_t>() - 4, o[1].template get<uint64_t>() - 4};
               }),
               Contains("overlap"));
    CHECK_THAT(edit([](auto& k) { k.erase("fc1.bias"); }), Contains("leave a gap at byte 0"));
    CHECK_THAT(parse_error(good + "12345678"), Contains("the data section has 8 bytes no tensor claims"));
    CHECK_THAT(edit([](auto& k) { k["__metadata__"].erase("shrink.graph"); }), Contains("not a shrink model"));
    CHECK_THAT(edit([](auto& k) { k["__metadata__"]["shrink.graph"] = "{}"; }), Contains("malformed shrink.graph"));
    CHECK_THAT(edit([](auto& k) { k["__metadata__"]["shrink.format"] = "2"; }), Contains("newer than this shrink reads"));
    CHECK_THAT(edit([](auto& k) { k["__metadata__"]["n"] = 3; }), Contains("is not a string"));
}

TEST_CASE("non-finite weights and graphs that do not connect are refused", "[safetensors]") {
    model m = test::tiny_model(1, 8);
    m.at("fc2.bias").values.write()[3] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THAT(parse_error(serialize_model(m)), Contains("tensor 'fc2.bias': value 3 is not finite"));
    model g = test::tiny_model(1, 8);
    g.layers[2].input = "nowhere";
    CHECK_THAT(parse_error(serialize_model(g)), Contains("input 'nowhere' is not produced before it"));
}

TEST_CASE("save_model writes through a temporary name", "[safetensors]") {
    test::temp_dir dir;
    const model m = test::tiny_model();
    save_model(m, dir / "m.safetensors");
    CHECK(std::distance(std::filesystem::directory_iterator(dir.path()), {}) == 1);
    CHECK(serialize_model(load_model(dir / "m.safetensors")) == serialize_model(m));
    CHECK_THROWS_WITH(save_model(m, dir / "missing" / "m.safetensors"), Contains("cannot write"));
}

#include "model/verify.hpp"

TEST_CASE("read-back verification finds what differs from the model a stage made", "[verify]") {
    const model m = encoded_model();
    CHECK(compare_models(m, parse_model(serialize_model(m), "mem")).empty());
    model other = m;
    other.at("fc3.bias").values.write()[1] += 1;
    other.at("fc3.weight").mask.write()[5] = 0;
    other.at("fc3.weight").values.write()[5] = 0;
    const auto problems = compare_models(m, other);
    CHECK(problems.size() == 3);  // fc3.bias values; fc3.weight mask and values
    // A layer the plan says is quantized must be.
    CHECK(check_promises(m, {{"weights_quantized", {"fc1", "fc2"}}}).empty());
    const auto broken = check_promises(m, {{"weights_quantized", {"fc3"}}});
    REQUIRE(broken.size() == 1);
    CHECK_THAT(broken[0], Contains("layer 'fc3' should be quantized but is not"));
}

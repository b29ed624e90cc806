// Table encodings (model.hpp's quant_spec::table) and the kernels that fill them
// (plugins/quantizer_codebook): NF4's table is QLoRA's normal quantiles; NF4 beats int4
// absmax rounding on normal weights; double quantization costs 4.127 bits a weight in all;
// k-means is deterministic, never raises its error between iterations and beats an
// evenly spaced grid of as many values; every table encoding round-trips through a file.
#include "codebook_kernel.hpp"
#include "hf/folder.hpp"
#include "model/safetensors.hpp"
#include "rtn_kernel.hpp"
#include "support.hpp"
#include "util/random.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include <cmath>

using namespace shrink;

namespace {

/// The standard normal quantile, by bisection on erfc (double precision).
double normal_quantile(double p) {
    double lo = -10, hi = 10;
    for (int i = 0; i < 200; ++i) {
        const double mid = (lo + hi) / 2;
        (0.5 * std::erfc(-mid / std::sqrt(2.0)) < p ? lo : hi) = mid;
    }
    return (lo + hi) / 2;
}

std::vector<float> normal_weights(uint64_t n, uint64_t seed, double sd = 0.02) {
    rng r(seed);
    std::vector<float> w(n);
    for (float& v : w) v = float(r.normal() * sd);
    return w;
}

double squared_error(const std::vector<float>& a, const std::vector<float>& b) {
    double s = 0;
    for (size_t i = 0; i < a.size(); ++i) s += double(a[i] - b[i]) * double(a[i] - b[i]);
    return s;
}

}  // namespace

TEST_CASE("NF4's values are QLoRA's: normal quantiles of 8 positive and 7 negative levels, 0 exact, scaled to [-1, 1]",
          "[codebook]") {
    // QLoRA (appendix E; bitsandbytes' create_normal_map with offset 0.9677083): the
    // quantiles of 9 evenly spaced probabilities from the offset down to 1/2 (the last
    // dropped) on the positive side, of 8 on the negative side, and 0.
    const double offset = 0.9677083;
    std::vector<double> v{0.0};
    for (int i = 0; i < 8; ++i) v.push_back(normal_quantile(offset + (0.5 - offset) * i / 8.0));
    for (int i = 0; i < 7; ++i) v.push_back(-normal_quantile(offset + (0.5 - offset) * i / 7.0));
    std::sort(v.begin(), v.end());
    for (size_t i = 0; i < 16; ++i) {
        INFO(i);
        CHECK(codebook::nf4[i] == Approx(v[i] / v.back()).margin(1e-6));
        CHECK(nf4_table[i] == codebook::nf4[i]);  // the host's copy is the same
    }
    CHECK(codebook::nf4[7] == 0.0f);
}

TEST_CASE("NF4 codes round each weight over its block's absmax to the nearest value, and beat int4 absmax on normal weights",
          "[codebook]") {
    const uint64_t rows = 16, cols = 256, group = 64;
    std::vector<float> w = normal_weights(rows * cols, 5);
    w[3] = 0;
    const codebook::nf4_result r = codebook::quantize_nf4(w.data(), rows, cols, group);
    REQUIRE(r.scales.size() == rows * cols / group);
    for (uint64_t i = 0; i < w.size(); ++i) {
        const float scale = r.scales[(i / cols) * (cols / group) + (i % cols) / group];
        const float x = w[i] / scale;
        const float chosen = codebook::nf4[size_t(r.codes[i] + 8)];
        for (float other : codebook::nf4) REQUIRE(std::fabs(x - chosen) <= std::fabs(x - other));
    }
    CHECK(r.codes[3] == -1);  // 0 is exact: table index 7
    // The block's largest magnitude is exact (it maps to +-1).
    CHECK(*std::max_element(r.scales.begin(), r.scales.end()) > 0);
    const double nf4_error = squared_error(w, codebook::decode_nf4(r, rows, cols, group));
    rtn::options o;
    o.bits = 4;
    o.symmetric = true;
    o.gran = rtn::granularity::per_group;
    o.group_size = group;
    const double int4_error = squared_error(w, rtn::dequantize(rtn::quantize(w.data(), rows, cols, o), rows, cols));
    INFO("NF4 " << nf4_error << ", int4 absmax " << int4_error);
    CHECK(nf4_error < 0.9 * int4_error);
}

TEST_CASE("k-means is deterministic by seed, never raises its error, and beats an evenly spaced grid of as many values",
          "[codebook]") {
    const uint64_t rows = 8, cols = 512;
    const std::vector<float> w = normal_weights(rows * cols, 11);
    codebook::kmeans_options o;
    o.bits = 4;
    o.seed = 42;
    o.per_row = true;
    const codebook::kmeans_result a = codebook::quantize_kmeans(w.data(), rows, cols, o);
    const codebook::kmeans_result b = codebook::quantize_kmeans(w.data(), rows, cols, o);
    CHECK(a.codes == b.codes);
    CHECK(a.table == b.table);
    REQUIRE(a.sse.size() >= 2);
    for (size_t i = 1; i < a.sse.size(); ++i) CHECK(a.sse[i] <= a.sse[i - 1] * (1 + 1e-12));
    CHECK(a.sse.back() < a.sse.front());
    // The reported error is the decoded one.
    CHECK(squared_error(w, codebook::decode_kmeans(a, rows, cols, true)) == Approx(a.sse.back()).epsilon(1e-9));
    // A table per row against 16 evenly spaced values per row (RTN, asymmetric, per row).
    rtn::options grid;
    grid.bits = 4;
    grid.symmetric = false;
    grid.gran = rtn::granularity::per_channel;
    const double rtn_error = squared_error(w, rtn::dequantize(rtn::quantize(w.data(), rows, cols, grid), rows, cols));
    INFO("k-means " << a.sse.back() << ", RTN " << rtn_error);
    CHECK(a.sse.back() < 0.8 * rtn_error);
    // One table for the layer; a 3-bit table fills the 4-bit container with its last value.
    o.per_row = false;
    o.bits = 3;
    const codebook::kmeans_result c = codebook::quantize_kmeans(w.data(), rows, cols, o);
    CHECK(c.container_bits == 4);
    CHECK(c.table.size() == 16);
    for (size_t j = 8; j < 16; ++j) CHECK(c.table[j] == c.table[7]);
    for (int8_t code : c.codes) CHECK(code + 8 < 8);
    o.seed = 43;
    CHECK(codebook::quantize_kmeans(w.data(), rows, cols, o).sse.front() != c.sse.front());
}

TEST_CASE("table encodings round-trip through a file, sizes exact: NF4 with double-quantized scales is 4.127 bits a weight",
          "[codebook][safetensors]") {
    model m = test::tiny_model(3, 256);  // fc1 16 x 256, fc2 8 x 16, fc3 4 x 8
    test::temp_dir dir;
    // fc1: NF4 in blocks of 64, scales double-quantized, a third of it pruned.
    tensor& w1 = m.at("fc1.weight");
    std::vector<uint8_t> mask(w1.element_count());
    for (size_t i = 0; i < mask.size(); ++i) mask[i] = i % 3 != 0;
    tensor pruned = w1;
    pruned.mask = mask;
    const std::vector<float> v1 = w1.decode();
    const codebook::nf4_result r1 = codebook::quantize_nf4(v1.data(), 16, 256, 64);
    quant_spec nf4;
    nf4.bits = 4;
    nf4.group_size = 64;
    nf4.table = "nf4";
    nf4.double_quant = true;
    w1 = make_table_quantized(pruned, nf4, r1.codes, r1.scales, {});
    CHECK(w1.scale_q.codes.size() == 64);
    CHECK(w1.scale_q.steps.size() == 1);
    // fc2: k-means, a table per row.
    tensor& w2 = m.at("fc2.weight");
    const std::vector<float> v2 = w2.decode();
    codebook::kmeans_options ko;
    ko.per_row = true;
    const codebook::kmeans_result r2 = codebook::quantize_kmeans(v2.data(), 8, 16, ko);
    quant_spec km;
    km.bits = 4;
    km.table = "kmeans";
    km.books = 8;
    w2 = make_table_quantized(w2, km, r2.codes, {}, r2.table);
    CHECK(w2.decode() == codebook::decode_kmeans(r2, 8, 16, true));
    CHECK(w2.encoding_summary() == "kmeans4 table per row");
    CHECK(w1.encoding_summary() == "nf4 group 64 double-quant sparse 33.3%");

    save_model(m, dir / "m.safetensors");
    const model back = load_model(dir / "m.safetensors");
    for (const char* name : {"fc1.weight", "fc2.weight"}) {
        INFO(name);
        CHECK(back.at(name).decode() == m.at(name).decode());
        CHECK(back.at(name).stored_bytes() == m.at(name).stored_bytes());
    }
    CHECK(back.at("fc1.weight").scale_q.codes == w1.scale_q.codes);
    // Sizes: fc2 holds 4-bit codes and 8 tables of 16 floats; fc1 its kept codes, the mask,
    // a code per scale, one step and the offset.
    CHECK(w2.stored_bytes() == 128 / 2 + 8 * 16 * 4);
    const uint64_t kept = w1.kept_count();
    CHECK(w1.stored_bytes() == (kept + 1) / 2 + 4096 / 8 + 64 + 4 + 4);

    // Dense, at a size where every step covers 256 scales: 4 + 8/64 + 32/16384 bits.
    const uint64_t rows = 64, cols = 4096;
    const std::vector<float> big = normal_weights(rows * cols, 2);
    const codebook::nf4_result rb = codebook::quantize_nf4(big.data(), rows, cols, 64);
    tensor layout;
    layout.shape = {int64_t(rows), int64_t(cols)};
    const tensor t = make_table_quantized(layout, nf4, rb.codes, rb.scales, {});
    CHECK(8.0 * double(t.stored_bytes() - 4) / double(rows * cols) == Approx(4.0 + 8.0 / 64 + 32.0 / 16384));
    // Double quantization changes the scales a little: the decoded weights stay close.
    const std::vector<float> plain = codebook::decode_nf4(rb, rows, cols, 64), decoded = t.decode();
    CHECK(squared_error(plain, decoded) < 0.01 * squared_error(big, plain));
}

TEST_CASE("quantizer.nf4 and quantizer.kmeans run on a decoder: table encodings written, verified and exported", "[codebook][cli]") {
    test::temp_dir dir;
    const test::text_decoder d = test::save_text_lm(dir.path(), 23, 12);
    test::write_text(dir / "r.yaml", "version: 1\nname: cb\nseed: 3\nmodel: lm.safetensors\ndata:\n  tokenizer: .\n"
                                     "  evaluation: { dataset: text, path: text.txt, seq_len: 16 }\nstages:\n"
                                     "  - { id: nf4, use: quantizer.nf4, params: { block_size: 16 } }\n"
                                     "  - { id: ppl-nf4, use: evaluator.perplexity }\n"
                                     "  - { id: km, use: quantizer.kmeans, after: [], params: { bits: 3, table: per_row } }\n"
                                     "  - { id: ppl-km, use: evaluator.perplexity }\n");
    const auto r = test::shrink_cli("run " + (dir / "r.yaml").string() + " --out " + (dir / "run").string() + " --no-cache");
    INFO(r.output);
    REQUIRE((r.code == 0 || r.code == 4));  // a random model's budget is not the point
    const model nf4 = load_model(dir / "run" / "models" / "nf4.safetensors");
    const model km = load_model(dir / "run" / "models" / "km.safetensors");
    for (const layer& l : d.m.layers) {
        if (l.op != "linear") continue;
        INFO(l.name);
        CHECK(nf4.at(l.weight).encoding_summary() == "nf4 group 16 double-quant");
        CHECK(km.at(l.weight).encoding_summary() == "kmeans4 table per row");
    }
    // A Hugging Face export decodes them: its weights are the runtime's floats.
    const auto e = test::shrink_cli("export " + (dir / "run" / "models" / "nf4.safetensors").string() + " --format hf --out " +
                                    (dir / "hf").string());
    INFO(e.output);
    REQUIRE(e.code == 0);
    const model exported = hf::import_folder(dir / "hf");
    const std::string q = "model.layers.0.self_attn.q_proj.weight";
    CHECK(exported.at(q).decode() == nf4.at(q).decode());
    // A quantizer after either is refused before running.
    test::write_text(dir / "twice.yaml", "version: 1\nname: cb\nseed: 3\nmodel: lm.safetensors\ndata:\n  tokenizer: .\n"
                                         "  evaluation: { dataset: text, path: text.txt, seq_len: 16 }\nstages:\n"
                                         "  - { id: nf4, use: quantizer.nf4 }\n"
                                         "  - { id: rtn, use: quantizer.rtn }\n");
    const auto twice = test::shrink_cli("plan " + (dir / "twice.yaml").string());
    INFO(twice.output);
    CHECK(twice.code != 0);
    CHECK(twice.output.find("would quantize already-quantized weights") != std::string::npos);
}

#include "support.hpp"

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "cpu/engine.hpp"
#include "hf/config.hpp"
#include "model/safetensors.hpp"
#include "text/bpe_trainer.hpp"

#include "util/random.hpp"

#include <algorithm>
#include <array>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <spawn.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

namespace shrink::test {

namespace fs = std::filesystem;

temp_dir::temp_dir() {
    std::string pattern = (fs::temp_directory_path() / "shrink-test-XXXXXX").string();
    if (!mkdtemp(pattern.data())) throw std::runtime_error("mkdtemp failed");
    path_ = pattern;
}

temp_dir::~temp_dir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
}

void write_text(const fs::path& file, const std::string& text) {
    std::ofstream out(file, std::ios::binary);
    out << text;
}

std::string read_text(const fs::path& file) {
    std::ifstream in(file, std::ios::binary);
    std::ostringstream s;
    s << in.rdbuf();
    return s.str();
}

cli_result shrink_cli(const std::string& args, const std::string& env) {
    // Tests never read or write the user's ledger or stage cache unless they name one.
    std::string isolated;
    if (env.find("SHRINK_LEDGER=") == std::string::npos) isolated += "SHRINK_LEDGER=off ";
    if (env.find("SHRINK_CACHE=") == std::string::npos) isolated += "SHRINK_CACHE=off ";
    const std::string command = isolated + env + (env.empty() ? "" : " ") + SHRINK_CLI + " " + args + " 2>&1";
    cli_result r;
    FILE* pipe = popen(command.c_str(), "r");
    if (!pipe) throw std::runtime_error("popen failed");
    std::array<char, 4096> buffer{};
    size_t n;
    while ((n = fread(buffer.data(), 1, buffer.size(), pipe)) > 0) r.output.append(buffer.data(), n);
    const int status = pclose(pipe);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

cli_result shrink_cli_peak(const std::string& args, uint64_t& peak_kb, const std::string& env) {
    std::string isolated;
    if (env.find("SHRINK_LEDGER=") == std::string::npos) isolated += "SHRINK_LEDGER=off ";
    if (env.find("SHRINK_CACHE=") == std::string::npos) isolated += "SHRINK_CACHE=off ";
    const temp_dir dir;
    const fs::path log = dir / "output";
    // exec: the shell becomes shrink, so the rusage wait4 reports is shrink's.
    const std::string command = isolated + env + (env.empty() ? "" : " ") + "exec " + SHRINK_CLI + " " + args + " > " + log.string() + " 2>&1";
    const char* argv[] = {"sh", "-c", command.c_str(), nullptr};
    pid_t pid = 0;
    if (posix_spawn(&pid, "/bin/sh", nullptr, nullptr, const_cast<char* const*>(argv), environ) != 0)
        throw std::runtime_error("posix_spawn failed");
    int status = 0;
    rusage usage{};
    if (wait4(pid, &status, 0, &usage) != pid) throw std::runtime_error("wait4 failed");
    peak_kb = uint64_t(usage.ru_maxrss);
    cli_result r;
    r.output = read_text(log);
    r.code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
    return r;
}

std::string add_random_tensor(model& m, rng& gen, const std::string& name, std::vector<int64_t> shape, double sd) {
    tensor t;
    t.shape = std::move(shape);
    std::vector<float> values;
    for (uint64_t i = 0; i < t.element_count(); ++i) values.push_back(float(gen.normal() * sd));
    t.values = std::move(values);
    m.tensors[name] = t;
    return name;
}

model tiny_model(uint64_t seed, int64_t inputs) {
    model m;
    m.input_features = inputs;
    m.input_scale = 1.0f / 255.0f;
    rng gen(seed);
    const int64_t widths[] = {inputs, 16, 8, 4};
    std::string prev = m.input;
    for (int l = 0; l < 3; ++l) {
        const std::string name = "fc" + std::to_string(l + 1);
        tensor w, b;
        w.shape = {widths[l + 1], widths[l]};
        std::vector<float> wv, bv;
        for (int64_t i = 0; i < widths[l + 1] * widths[l]; ++i) wv.push_back(float(gen.normal() * 0.1));
        b.shape = {widths[l + 1]};
        for (int64_t i = 0; i < widths[l + 1]; ++i) bv.push_back(float(gen.normal() * 0.01));
        w.values = std::move(wv);
        b.values = std::move(bv);
        m.tensors[name + ".weight"] = w;
        m.tensors[name + ".bias"] = b;
        m.layers.push_back(make_layer(name, "linear", prev, name + ".out", name + ".weight", name + ".bias"));
        prev = name + ".out";
        if (l < 2) {
            m.layers.push_back(make_layer("relu" + std::to_string(l + 1), "relu", prev, "relu" + std::to_string(l + 1) + ".out"));
            prev = "relu" + std::to_string(l + 1) + ".out";
        }
    }
    m.layers.push_back(make_layer("softmax", "softmax", prev, "probs"));
    m.output = "probs";
    m.validate();
    return m;
}

model tiny_cnn(uint64_t seed, int64_t side) {
    model m;
    m.input_shape = {1, side, side};
    m.input_features = side * side;
    m.input_scale = 1.0f / 255.0f;
    rng gen(seed);
    auto random = [&](const std::string& name, std::vector<int64_t> shape, double sd) {
        return add_random_tensor(m, gen, name, std::move(shape), sd);
    };
    auto add = [&](layer l) {
        m.layers.push_back(std::move(l));
        return m.layers.back().output;
    };
    std::string x = m.input;
    layer c1 = make_layer("conv1", "conv", x, "conv1.out", random("conv1.weight", {4, 1, 3, 3}, 0.5), random("conv1.bias", {4}, 0.1));
    c1.win.kernel = {3, 3};
    c1.win.pads = {1, 1, 1, 1};
    x = add(c1);
    x = add(make_layer("bn1", "batchnorm", x, "bn1.out", random("bn1.scale", {4}, 1.0), random("bn1.shift", {4}, 0.1)));
    x = add(make_layer("relu1", "relu", x, "relu1.out"));
    layer p1 = make_layer("pool1", "max_pool", x, "pool1.out");
    p1.win.kernel = p1.win.strides = {2, 2};
    x = add(p1);
    layer c2 = make_layer("conv2", "conv", x, "conv2.out", random("conv2.weight", {6, 2, 3, 3}, 0.3), random("conv2.bias", {6}, 0.1));
    c2.win.kernel = {3, 3};
    c2.win.pads = {1, 1, 1, 1};
    c2.win.group = 2;
    x = add(c2);
    layer leaky = make_layer("leaky2", "leaky_relu", x, "leaky2.out");
    leaky.alpha = 0.1f;
    x = add(leaky);
    layer p2 = make_layer("pool2", "avg_pool", x, "pool2.out");
    p2.win.kernel = p2.win.strides = {2, 2};
    x = add(p2);
    x = add(make_layer("flatten", "flatten", x, "flat"));
    const int64_t features = 6 * (side / 4) * (side / 4);
    x = add(make_layer("fc1", "linear", x, "fc1.out", random("fc1.weight", {10, features}, 0.3), random("fc1.bias", {10}, 0.1)));
    m.output = add(make_layer("softmax", "softmax", x, "probs"));
    m.validate();
    return m;
}

model random_decoder(const decoder_shape& s, uint64_t seed) {
    model m;
    rng g(seed);
    for (const auto& [name, shape] : decoder_tensors(s)) {
        const bool norm = name.find("norm") != std::string::npos;
        add_random_tensor(m, g, name, shape, norm ? 0.2 : 0.3);
        if (norm) {
            tensor& t = m.at(name);
            float* v = t.values.write();
            for (uint64_t i = 0; i < t.element_count(); ++i) v[i] += 1.0f;
        }
    }
    set_decoder_graph(m, s);
    m.validate();
    return m;
}

decoder_shape tiny_decoder_shape() {
    decoder_shape s;
    s.vocab = 37, s.hidden = 32, s.intermediate = 48, s.layers = 2, s.heads = 4, s.kv_heads = 2, s.head_dim = 8;
    s.rope_theta = 10000, s.rms_eps = 1e-5f;
    return s;
}

std::vector<float> decoder_logits(const model& m, const std::vector<std::vector<int>>& windows) {
    std::vector<float> tokens;
    for (const auto& w : windows)
        for (size_t t = 0; t < w.size(); ++t) tokens.insert(tokens.end(), {float(w[t]), float(t)});
    return engine(m).run(tokens.data(), int64_t(tokens.size() / 2));
}

text_decoder save_text_decoder(const std::filesystem::path& dir, const std::string& corpus, uint64_t seed) {
    text::bpe_training options;
    options.vocab_size = 300;
    text_decoder d;
    d.tokenizer_json = text::write_tokenizer_json(text::train_bpe(corpus, options));
    write_text(dir / "tokenizer.json", d.tokenizer_json);
    decoder_shape s = tiny_decoder_shape();
    s.vocab = 300;
    d.m = random_decoder(s, seed);
    hf::decoder_config c;
    c.architecture = "LlamaForCausalLM", c.model_type = "llama", c.vocab_size = 300, c.hidden_size = s.hidden;
    c.intermediate_size = s.intermediate, c.layers = s.layers, c.heads = s.heads, c.kv_heads = s.kv_heads, c.head_dim = s.head_dim;
    c.max_positions = 64, c.rms_norm_eps = s.rms_eps;
    d.m.info["hf.config"] = hf::write_decoder_config(c);
    save_model(d.m, dir / "lm.safetensors");
    return d;
}

void check_memory_estimates(const std::filesystem::path& report_json) {
    // A stage's measured figure is the process's peak by its end, which holds the stage's
    // own peak: no plan may exceed it by more than 25%, and the highest plan is within 25%
    // of the run's peak.
    const auto report = nlohmann::json::parse(read_text(report_json));
    double planned = 0, measured = 0;
    for (const auto& s : report.at("stages")) {
        const double p = s["predicted_peak_memory_bytes"].get<double>(), m = s["measured_peak_rss_bytes"].get<double>();
        INFO("stage " << s["id"].get<std::string>() << ": planned " << p << " bytes, measured by its end " << m);
        CHECK(p < 1.25 * m);
        planned = std::max(planned, p);
        measured = std::max(measured, m);
    }
    INFO("the plan's highest peak " << planned << " bytes, the run's " << measured);
    CHECK(planned > 0.75 * measured);
    CHECK(planned < 1.25 * measured);
}

random_text::random_text(int64_t windows, int64_t seq_len, int64_t vocab, uint64_t seed) {
    rng r(seed);
    auto ids = std::make_shared<std::vector<uint32_t>>();
    for (int64_t i = 0; i < windows * seq_len; ++i) ids->push_back(uint32_t(r.below(uint64_t(vocab))));
    text.ids = ids;
    text.seq_len = seq_len;
    view.text = &text;
    for (int64_t w = 0; w < windows; ++w) view.indices.push_back(w);
}

text_decoder save_text_lm(const std::filesystem::path& dir, uint64_t seed, int repeats) {
    const std::string corpus = "In the beginning God created the heaven and the earth. And the earth was without form, and void.\n";
    text_decoder d = save_text_decoder(dir, corpus, seed);
    std::string text;
    for (int i = 0; i < repeats; ++i) text += corpus;
    write_text(dir / "text.txt", text);
    return d;
}

}  // namespace shrink::test

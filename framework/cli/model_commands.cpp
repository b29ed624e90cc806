// shrink inspect, verify, export, import, train: model files.
#include "cli/subcommands.hpp"

#include "cpu/threading.hpp"
#include "gguf/writer.hpp"
#include "hf/folder.hpp"
#include "hf/shard_index.hpp"
#include "text/tokenizer.hpp"
#include "model/safetensors.hpp"
#include "onnx/export.hpp"
#include "onnx/import.hpp"
#include "plan/plan.hpp"
#include "run/executor.hpp"
#include "run/replay.hpp"
#include "train/reference_models.hpp"
#include "util/console.hpp"
#include "util/errors.hpp"
#include "util/files.hpp"
#include "util/text.hpp"
#include <boost/program_options.hpp>
#include <nlohmann/json.hpp>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <iostream>
#include <map>

namespace shrink::cli {

namespace fs = std::filesystem;

namespace {

/// The bytes of a Hugging Face folder's weight files.
uint64_t folder_bytes(const fs::path& folder) {
    uint64_t n = 0;
    for (const fs::path& f : hf::find_weight_files(folder).files) n += fs::file_size(f);
    return n;
}

}  // namespace

int cmd_inspect(const std::vector<std::string>& args) {
    po::options_description opts("options");
    opts.add_options()("model", po::value<std::string>(), "model file (.safetensors, or .onnx: shown as imported)");
    parsed p = parse("inspect", "MODEL", opts, args, "model");
    if (p.help) return 0;
    const std::string path = require(p.vm, "model", "MODEL");
    std::error_code ec;
    const bool folder = fs::is_directory(path, ec);
    const model m = folder ? hf::import_folder(path) : load_any_model(path);
    std::cout << path << "\n";
    for (const auto& [k, v] : m.info) std::cout << "  " << k << ": " << v << "\n";
    std::cout << "\nlayers:\n";
    for (const layer& l : m.layers) {
        std::string from = l.input;
        for (const std::string& more : l.more_inputs) from.append(", ").append(more);
        std::cout << "  " << l.name << "  " << l.op << "  " << from << " -> " << l.output;
        if (!l.factor_of.empty()) std::cout << "  (factor of " << l.factor_of << ", rank " << l.rank << ")";
        if (l.input_quantization && l.input_quantization->per_token) std::cout << "  (input int8 per token, dynamic)";
        else if (l.input_quantization) std::cout << "  (input int8, scale " << format_double(l.input_quantization->scale) << ")";
        if (const op_info* op = find_op(l.op); op && op->has(OP_WINDOW)) {
            const window& w = l.win;
            std::cout << "  (kernel " << w.kernel[0] << "x" << w.kernel[1] << ", stride " << w.strides[0] << "x" << w.strides[1]
                      << ", pads " << w.pads[0] << "," << w.pads[1] << "," << w.pads[2] << "," << w.pads[3];
            if (w.dilations != std::array<int64_t, 2>{1, 1}) std::cout << ", dilation " << w.dilations[0] << "x" << w.dilations[1];
            if (w.group != 1) std::cout << ", " << w.group << " groups";
            std::cout << ")";
        }
        std::cout << "\n";
    }
    std::printf("\n%-16s %-8s %-12s %-34s %10s\n", "tensor", "dtype", "shape", "encoding", "bytes");
    uint64_t total = 0, elements = 0, kept = 0;
    for (const auto& [name, t] : m.tensors) {
        std::string shape;
        for (int64_t d : t.shape) shape.append(shape.empty() ? "" : "x").append(std::to_string(d));
        const std::string dtype = !t.quant ? "f32" : t.quant->table.empty() ? "int" + std::to_string(t.quant->bits) : t.quant->table;
        std::printf("%-16s %-8s %-12s %-34s %10llu\n", name.c_str(), dtype.c_str(), shape.c_str(),
                    t.encoding_summary().c_str(), (unsigned long long)t.stored_bytes());
        total += t.stored_bytes();
        elements += t.element_count();
        kept += t.kept_count();
    }
    std::printf("\ntotals: %zu tensors, %llu parameters (%llu non-pruned, sparsity %.1f%%), %llu tensor bytes, %llu file bytes\n",
                m.tensors.size(), (unsigned long long)elements, (unsigned long long)kept,
                elements ? 100.0 * double(elements - kept) / double(elements) : 0.0, (unsigned long long)total,
                (unsigned long long)(folder ? folder_bytes(path) : fs::file_size(path)));
    return 0;
}

int cmd_verify(const std::vector<std::string>& args) {
    po::options_description opts("options");
    opts.add_options()("model", po::value<std::string>(), "model file (.safetensors or .onnx)");
    parsed p = parse("verify", "MODEL", opts, args, "model");
    if (p.help) return 0;
    const std::string path = require(p.vm, "model", "MODEL");
    if (fs::path(path).extension() == ".onnx") {
        // An ONNX file is verified as shrink reads it: parsed, checked node by node before
        // anything is computed, imported, and its weights finite (onnx/import.hpp).
        const model m = onnx_import::import_onnx(path);
        std::printf("%s: ok: ONNX that imports as %zu layers, %zu tensors, %llu parameters\n", path.c_str(), m.layers.size(),
                    m.tensors.size(), (unsigned long long)m.parameter_count());
        return 0;
    }
    // The reader checks the layout (bounds, overlaps, dtypes, finiteness) and every
    // encoding (value ranges, masks, scales, zero points) and the graph.
    const model m = load_model(path);
    // Canonical when the bytes on disk hash like shrink's own serialization of what was
    // read: both are streamed, so a large model is never held twice.
    const bool canonical = serialized_sha256(m) == sha256_file(path);
    size_t quantized = 0, sparse = 0, factorized = 0;
    for (const auto& [name, t] : m.tensors) quantized += bool(t.quant), sparse += t.sparse();
    for (const layer& l : m.layers) factorized += !l.factor_of.empty();
    std::printf("%s: ok: %zu layers, %zu tensors (%zu quantized, %zu sparse), %zu factor layers; %s\n", path.c_str(),
                m.layers.size(), m.tensors.size(), quantized, sparse, factorized,
                canonical ? "canonical bytes (as shrink writes them)" : "valid, but not in shrink's canonical byte layout");
    return 0;
}

int cmd_export(const std::vector<std::string>& args) {
    po::options_description opts("options");
    opts.add_options()("model", po::value<std::string>(), "model file (.safetensors)")(
        "format", po::value<std::string>()->default_value("onnx"),
        "onnx; hf: a Hugging Face folder; gguf: a llama.cpp file (hf and gguf: decoders imported from a folder)")(
        "type", po::value<std::string>()->default_value("f32"), "gguf: f32 or f16 weights")(
        "out", po::value<std::string>(), "file or folder to write (default: MODEL with the format's extension; hf: MODEL-hf)")(
        "tokenizer", po::value<std::string>(), "hf, gguf: the tokenizer's folder (default: the folder the model came from)");
    parsed p = parse("export", "MODEL [--format onnx|hf|gguf] [--out PATH]", opts, args, "model");
    if (p.help) return 0;
    const std::string path = require(p.vm, "model", "MODEL");
    const std::string format = p.vm["format"].as<std::string>();
    if (format == "hf") {
        const model m = load_model(path);
        const fs::path out = p.vm.count("out") ? fs::path(p.vm["out"].as<std::string>()) : fs::path(path).replace_extension("").concat("-hf");
        fs::path tokenizer;
        if (p.vm.count("tokenizer")) tokenizer = p.vm["tokenizer"].as<std::string>();
        else if (auto it = m.info.find("hf.source"); it != m.info.end() && fs::is_directory(it->second)) tokenizer = it->second;
        hf::export_folder(m, out, tokenizer);
        std::printf("wrote %s%s\n", out.c_str(), tokenizer.empty() ? " (no tokenizer files: give --tokenizer DIR)" : "");
        return 0;
    }
    if (format == "gguf") {
        const model m = load_model(path);
        const fs::path out = p.vm.count("out") ? fs::path(p.vm["out"].as<std::string>()) : fs::path(path).replace_extension(".gguf");
        fs::path tokenizer;
        if (p.vm.count("tokenizer")) tokenizer = p.vm["tokenizer"].as<std::string>();
        else if (auto it = m.info.find("hf.source"); it != m.info.end()) tokenizer = it->second;
        if (tokenizer.empty()) throw usage_error("give the tokenizer with --tokenizer (tokenizer.json or its folder): GGUF files carry it");
        const std::string type = p.vm["type"].as<std::string>();
        if (type != "f32" && type != "f16") throw usage_error("--type must be f32 or f16");
        gguf::write_gguf(m, text::tokenizer::from_file(tokenizer), out, type == "f32" ? gguf::weight_type::f32 : gguf::weight_type::f16);
        std::printf("wrote %s\n", out.c_str());
        return 0;
    }
    if (format != "onnx") throw usage_error("--format must be onnx, hf or gguf");
    const fs::path out = p.vm.count("out") ? fs::path(p.vm["out"].as<std::string>()) : fs::path(path).replace_extension(".onnx");
    onnx_import::save_onnx(load_model(path), out);
    std::printf("wrote %s\n", out.c_str());
    return 0;
}

int cmd_import(const std::vector<std::string>& args) {
    po::options_description opts("options");
    opts.add_options()("model", po::value<std::string>(), "ONNX model file, or a Hugging Face decoder folder")(
        "out", po::value<std::string>(), "shrink model to write (default: MODEL with .safetensors)");
    parsed p = parse("import", "MODEL.onnx|DIR [--out FILE]", opts, args, "model");
    if (p.help) return 0;
    const std::string path = require(p.vm, "model", "MODEL");
    std::error_code ec;
    if (fs::is_directory(path, ec)) {
        const fs::path dir = fs::path(path).lexically_normal();
        const fs::path name = dir.filename().empty() ? dir.parent_path().filename() : dir.filename();
        const fs::path out = p.vm.count("out") ? fs::path(p.vm["out"].as<std::string>()) : dir.parent_path() / name.string().append(".safetensors");
        const model m = hf::import_folder(path);
        save_model(m, out);
        std::printf("wrote %s: %s, %zu layers, %llu parameters\n", out.c_str(), m.info.at("hf.architecture").c_str(), m.layers.size(),
                    (unsigned long long)m.parameter_count());
        return 0;
    }
    const fs::path out = p.vm.count("out") ? fs::path(p.vm["out"].as<std::string>()) : fs::path(path).replace_extension(".safetensors");
    const model m = onnx_import::import_onnx(path);
    save_model(m, out);
    std::printf("wrote %s: %zu layers, %llu parameters (inputs are not scaled: give data.preprocess in recipes)\n", out.c_str(),
                m.layers.size(), (unsigned long long)m.parameter_count());
    return 0;
}

int cmd_train(const std::vector<std::string>& args) {
    // A language model takes options of its own.
    for (size_t i = 0; i < args.size(); ++i)
        if (args[i] == "--arch=llama" || (args[i] == "--arch" && i + 1 < args.size() && args[i + 1] == "llama")) return cmd_train_lm(args);
    po::options_description opts("options");
    train_options t;
    opts.add_options()("out", po::value<std::string>()->default_value("models/fmnist-mlp.safetensors"),
                       "model file to write (.onnx: exported as ONNX)")(
        "arch", po::value<std::string>(&t.arch)->default_value(t.arch),
        "mlp, or cnn: two conv blocks (conv 3x3, batchnorm, relu, max_pool 2) under the MLP head; llama: the reference language model "
        "(shrink train --arch llama --help)")(
        "epochs", po::value<int>(&t.epochs), "passes over the training set (default: 15 for mlp, 8 for cnn)")(
        "hidden", po::value<std::string>()->default_value("256,128"), "hidden layer widths, comma separated")(
        "channels", po::value<std::string>()->default_value("16,32"), "cnn: the conv blocks' channels, comma separated")(
        "seed", po::value<uint64_t>(&t.seed)->default_value(t.seed), "random seed")(
        "batch", po::value<int64_t>(&t.batch)->default_value(t.batch), "minibatch size")(
        "lr", po::value<double>(&t.learning_rate)->default_value(t.learning_rate), "AdamW learning rate (cosine schedule)")(
        "weight-decay", po::value<double>(&t.weight_decay)->default_value(t.weight_decay), "decoupled weight decay (AdamW)")(
        "train-samples", po::value<int64_t>(&t.train_samples)->default_value(0), "use only the first N training images (0 = all)")(
        "data", po::value<std::string>(&t.data_dir), "Fashion-MNIST directory (default: /usr/share/datasets/fashion-mnist)")(
        "threads", po::value<int>()->default_value(0), "CPU threads (0 = all cores); the same count gives the same bytes")(
        "quiet,q", "errors only")("verbose,v", "debug output");
    parsed p = parse("train", "[--arch mlp|cnn] [--out FILE] [--epochs N] [--hidden 256,128] [--seed S] [--threads N]", opts, args);
    if (p.help) return 0;
    set_verbosity(p.vm);
    auto widths = [&](const char* option, std::vector<int64_t>& out) {
        out.clear();
        for (const std::string& w : split(p.vm[option].as<std::string>(), ',')) {
            auto v = parse_decimal_int(w);
            if (!v || *v < 1 || *v > 65536) throw usage_error(std::string("--") + option + " takes widths like 256,128; got '" + w + "'");
            out.push_back(*v);
        }
    };
    widths("hidden", t.hidden);
    widths("channels", t.channels);
    if (t.epochs < 1 || t.epochs > 1000) throw usage_error("--epochs must be in [1, 1000]");
    if (t.batch < 1 || t.batch > 60000) throw usage_error("--batch must be in [1, 60000]");
    if (!(t.learning_rate > 0 && t.learning_rate < 1)) throw usage_error("--lr must be in (0, 1)");
    if (!(t.weight_decay >= 0 && t.weight_decay < 10)) throw usage_error("--weight-decay must be in [0, 10)");
    if (t.arch != "mlp" && t.arch != "cnn") throw usage_error("--arch takes mlp, cnn or llama; got '" + t.arch + "'");
    if (!p.vm.count("epochs")) t.epochs = t.arch == "cnn" ? 8 : 15;
    if (t.arch == "cnn" && t.channels.size() != 2) throw usage_error("--channels takes two widths, one per conv block");
    cpu::set_thread_count(p.vm["threads"].as<int>());
    const fs::path out = p.vm["out"].as<std::string>();
    console& c = console::get();
    c.info("training " + t.arch + (t.arch == "cnn" ? " (conv channels " + p.vm["channels"].as<std::string>() + ", head " : " (784-") +
           p.vm["hidden"].as<std::string>() + "-10) on Fashion-MNIST, " + std::to_string(t.epochs) + " epochs, seed " +
           std::to_string(t.seed) + ", " + std::to_string(cpu::thread_count()) + " threads");
    const train_result result = train_reference(t, [&](int epoch, double loss) {
        c.progress("training", uint64_t(epoch), uint64_t(t.epochs));
        c.debug("epoch " + std::to_string(epoch) + " loss " + format_double(loss));
    });
    if (out.has_parent_path()) fs::create_directories(out.parent_path());
    if (out.extension() == ".onnx") onnx_import::save_onnx(result.net, out);
    else save_model(result.net, out);
    char line[160];
    std::snprintf(line, sizeof line, "test accuracy %.4f, final training loss %.4f; wrote %s", result.test_accuracy,
                  result.final_loss, out.c_str());
    c.info(line);
    return 0;
}

}  // namespace shrink::cli

// The shrink command line: one subcommand per verb, each with its own --help.
// Exit codes: 0 ok, 1 invalid recipe or input, 2 usage, 3 a stage failed, 4 budget missed.
#include "cli/commands.hpp"
#include "util/errors.hpp"

#include <boost/program_options/errors.hpp>

#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace {

const char* usage_text =
    "usage: shrink <command> [options]\n"
    "\n"
    "commands:\n"
    "  run RECIPE        validate, then run a recipe and write a run directory (--resume DIR continues one)\n"
    "  validate RECIPE   check a recipe without running it; prints a short plan\n"
    "  plan RECIPE       the stages in execution order, branches and predicted budget per path\n"
    "  plugins           every stage type found, with its plugin and file\n"
    "  describe TYPE     a stage type's params, contract and devices\n"
    "  inspect MODEL     tensors of a model file: dtype, shape, encoding, bytes\n"
    "  verify MODEL      check a model file's layout, encodings and graph\n"
    "  export MODEL      write a model as ONNX (int8 weights as QuantizeLinear/DequantizeLinear)\n"
    "  import MODEL.onnx make a shrink model of an ONNX MLP (recipes also take .onnx models directly)\n"
    "  replay RUN_DIR    re-run what a run's manifest describes; say whether the outputs match\n"
    "  diff RUN_A RUN_B  what differs between two runs\n"
    "  train             make the reference Fashion-MNIST MLP (models/fmnist-mlp.safetensors)\n"
    "  tokenize TOKENIZER  token ids of a text (or, with --decode, the text of ids)\n"
    "  train-tokenizer   train a byte-level BPE tokenizer.json on a text\n"
    "  perplexity MODEL  a language model's perplexity on a text's held-out windows\n"
    "  generate MODEL    continue a prompt with a language model\n"
    "\n"
    "'shrink <command> --help' shows a command's options.\n"
    "exit codes: 0 ok, 1 invalid recipe or input, 2 usage error, 3 a stage failed,\n"
    "            4 the run finished but no result met the accuracy budget\n";

}  // namespace

int main(int argc, char** argv) {
    using namespace shrink;
    if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h") || !std::strcmp(argv[1], "help")) {
        std::fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? int(exit_code::usage) : 0;
    }
    const std::string command = argv[1];
    const std::vector<std::string> args(argv + 2, argv + argc);
    try {
        return run_command(command, args);
    } catch (const boost::program_options::error& e) {
        std::fprintf(stderr, "shrink %s: %s\n(see 'shrink %s --help')\n", command.c_str(), e.what(), command.c_str());
        return int(exit_code::usage);
    } catch (const usage_error& e) {
        std::fprintf(stderr, "shrink %s: %s\n", command.c_str(), e.what());
        return int(exit_code::usage);
    } catch (const input_error& e) {
        std::fprintf(stderr, "%s\n", e.what());
        return int(exit_code::invalid_input);
    } catch (const stage_error& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return int(exit_code::stage_failed);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "error: %s\n", e.what());
        return int(exit_code::stage_failed);
    }
}

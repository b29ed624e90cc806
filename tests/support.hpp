// Helpers shared by the test programs: temporary directories, files, running the CLI,
// and a tiny synthetic model.
#pragma once

#include "model/decoder.hpp"
#include "model/model.hpp"
#include "run/split_feed.hpp"
#include "util/random.hpp"

#include <cstdint>
#include <filesystem>
#include <string>

namespace shrink::test {

/// A fresh directory under the system temp dir, removed when it goes out of scope.
class temp_dir {
  public:
    temp_dir();
    ~temp_dir();
    temp_dir(const temp_dir&) = delete;
    const std::filesystem::path& path() const { return path_; }
    std::filesystem::path operator/(const std::string& name) const { return path_ / name; }

  private:
    std::filesystem::path path_;
};

void write_text(const std::filesystem::path& file, const std::string& text);
std::string read_text(const std::filesystem::path& file);

struct cli_result {
    int code = -1;
    std::string output;  // stdout and stderr together
};

/// Runs `build/bin/shrink ARGS` through the shell (ARGS is shell text), capturing output.
/// The ledger and the stage cache are off (SHRINK_LEDGER=off, SHRINK_CACHE=off) unless `env` sets them.
cli_result shrink_cli(const std::string& args, const std::string& env = "");

/// As shrink_cli, and `peak_kb` gets the peak resident memory the command reached (the
/// process is spawned without copying this one, so the figure is shrink's own).
cli_result shrink_cli_peak(const std::string& args, uint64_t& peak_kb, const std::string& env = "");

/// Checks a run's report.json: the plan's highest stage peak is within 25% of the run's
/// peak resident memory, and no stage's plan exceeds what was measured by its end by
/// more than 25%.
void check_memory_estimates(const std::filesystem::path& report_json);

/// Adds tensor `name` of `shape` with N(0, sd) values from `gen` to `m`; returns `name`.
std::string add_random_tensor(model& m, rng& gen, const std::string& name, std::vector<int64_t> shape, double sd);

/// A 3-layer MLP (inputs -> 16 -> 8 -> 4) with seeded random weights.
model tiny_model(uint64_t seed = 7, int64_t inputs = 784);

/// A small CNN on [1, side, side] inputs with seeded random weights: conv 3x3 (4) ->
/// batchnorm -> relu -> max_pool 2 -> conv 3x3 (6, 2 groups) -> leaky_relu -> avg_pool 2
/// -> flatten -> linear (10) -> softmax. side must be a multiple of 4.
model tiny_cnn(uint64_t seed = 7, int64_t side = 8);

/// A Llama-family decoder of shape `s` (model/decoder.hpp) with seeded random weights,
/// its norm weights near 1 as trained ones are.
model random_decoder(const decoder_shape& s, uint64_t seed);

/// A small decoder shape: vocab 37, hidden 32, 2 layers, 4 heads over 2 key/value heads
/// of 8, intermediate 48.
decoder_shape tiny_decoder_shape();

/// A language model with a tokenizer, as a user's files: a 300-token byte-level BPE
/// tokenizer trained on `corpus` (DIR/tokenizer.json) and a random decoder of that
/// vocabulary with a Llama config.json of context 64 in its info (DIR/lm.safetensors).
struct text_decoder {
    model m;
    std::string tokenizer_json;  // its text
};
text_decoder save_text_decoder(const std::filesystem::path& dir, const std::string& corpus, uint64_t seed);

/// save_text_decoder on a two-sentence corpus, and DIR/text.txt: that corpus `repeats`
/// times, for a recipe's `{ dataset: text, path: text.txt }`.
text_decoder save_text_lm(const std::filesystem::path& dir, uint64_t seed, int repeats);

/// `windows` windows of `seq_len` random token ids below `vocab`, all of them the split.
struct random_text {
    token_text text;
    split_view view;
    random_text(int64_t windows, int64_t seq_len, int64_t vocab, uint64_t seed);
    random_text(const random_text&) = delete;
};

/// The engine's logits for windows of token ids, each window's positions from 0.
std::vector<float> decoder_logits(const model& m, const std::vector<std::vector<int>>& windows);

}  // namespace shrink::test

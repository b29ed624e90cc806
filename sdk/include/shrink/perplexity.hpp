// Perplexity of a language model over windows of a text: the mean negative log-likelihood
// of every predicted token (position t of a window predicts its token t + 1), exponentiated;
// its standard error across windows; and bits per byte, which does not depend on the
// tokenizer (the same text costs the same bits whatever its tokens). Header-only, so that
// the host's `shrink perplexity` and evaluator plugins compute the same figures.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace shrink {

class perplexity_meter {
  public:
    /// Adds one window: `logits` [predicted, vocab], row t the model's output at position t,
    /// which predicts token next[t], standing for next_bytes[t] bytes of text.
    void add_window(const float* logits, int64_t vocab, const int32_t* next, const uint32_t* next_bytes, int64_t predicted) {
        if (predicted < 1) throw std::invalid_argument("a window needs two tokens to predict one");
        double window = 0;
        uint64_t bytes = 0;
        for (int64_t t = 0; t < predicted; ++t) {
            const float* row = logits + t * vocab;
            if (next[t] < 0 || next[t] >= vocab)
                throw std::invalid_argument("token id " + std::to_string(next[t]) + " is outside the model's vocabulary of " +
                                            std::to_string(vocab));
            // log-sum-exp in double, shifted by the largest logit.
            const float top = *std::max_element(row, row + vocab);
            double sum = 0;
            for (int64_t v = 0; v < vocab; ++v) sum += std::exp(double(row[v]) - top);
            window += std::log(sum) + top - double(row[next[t]]);
            bytes += next_bytes[t];
        }
        total_nll_ += window;
        tokens_ += predicted;
        bytes_ += bytes;
        window_nll_.push_back(window / double(predicted));
    }

    int64_t windows() const { return int64_t(window_nll_.size()); }
    int64_t predicted_tokens() const { return tokens_; }
    uint64_t predicted_bytes() const { return bytes_; }
    double mean_nll() const { return tokens_ ? total_nll_ / double(tokens_) : 0; }
    /// exp(mean NLL over every predicted token).
    double perplexity() const { return std::exp(mean_nll()); }
    /// The standard error of the perplexity: its value times the standard error of the
    /// per-window mean NLL across windows (the delta method); 0 with one window.
    double standard_error() const {
        const size_t n = window_nll_.size();
        if (n < 2) return 0;
        double mean = 0;
        for (double v : window_nll_) mean += v;
        mean /= double(n);
        double var = 0;
        for (double v : window_nll_) var += (v - mean) * (v - mean);
        var /= double(n - 1);
        return perplexity() * std::sqrt(var / double(n));
    }
    /// Total NLL in bits over the bytes of the predicted tokens.
    double bits_per_byte() const { return bytes_ ? total_nll_ / std::log(2.0) / double(bytes_) : 0; }

  private:
    std::vector<double> window_nll_;  // each window's mean NLL
    double total_nll_ = 0;
    int64_t tokens_ = 0;
    uint64_t bytes_ = 0;
};

}  // namespace shrink

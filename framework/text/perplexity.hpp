// Perplexity of a language model over windows of a text: the mean negative log-likelihood
// of every predicted token (position t predicts token t + 1 of its window), exponentiated;
// its standard error across windows; and bits per byte, which does not depend on the
// tokenizer (the same text costs the same bits whatever its tokens).
#pragma once

#include <cstdint>
#include <vector>

namespace shrink::text {

class perplexity_meter {
  public:
    /// Adds one window: `logits` [ids.size(), vocab] (row t from the model at position t),
    /// `ids` the window's tokens, `bytes[i]` the text bytes token i stands for.
    void add_window(const float* logits, int64_t vocab, const std::vector<uint32_t>& ids, const std::vector<uint32_t>& bytes);

    int64_t windows() const { return int64_t(window_nll_.size()); }
    int64_t predicted_tokens() const { return tokens_; }
    /// exp(mean NLL over every predicted token).
    double perplexity() const;
    /// The standard error of the perplexity: its value times the standard error of the
    /// per-window mean NLL across windows (the delta method); 0 with one window.
    double standard_error() const;
    /// Total NLL in bits over the bytes of the predicted tokens.
    double bits_per_byte() const;
    double mean_nll() const;

  private:
    std::vector<double> window_nll_;  // each window's mean NLL
    double total_nll_ = 0;
    int64_t tokens_ = 0;
    uint64_t bytes_ = 0;
};

}  // namespace shrink::text

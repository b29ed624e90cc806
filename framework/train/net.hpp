// A model as something to train: every activation kept from the forward pass, a
// reverse-mode backward pass over the same graph, and the weights as parameters with
// their gradients. T is float for training and double for gradient checks: the same
// code runs in both, except the matrix products (oneDNN in float, loops in double).
//
// Every op of the model format has a backward pass. Convolutions run as im2col and one
// matrix product per batch (group 1 only). Pointwise ops, pooling, batchnorm, softmax
// and the joins run as TBB loops over independent outputs, so a gradient is the same on
// any thread count. Activations are plain [rows, C, H, W] or [rows, features].
#pragma once

#include "model/model.hpp"

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace shrink::train {

struct net_options {
    /// Batchnorm normalizes by the batch's statistics and keeps running estimates, which
    /// write_to() folds into the layer's scale and shift (training from scratch). Off:
    /// batchnorm is the model's fixed affine map, its scale and shift trained as they are
    /// (fine-tuning a trained model, whose statistics must not move).
    bool batch_statistics = false;
    double batchnorm_momentum = 0.1;
    double batchnorm_epsilon = 1e-5;
};

template <class T>
struct parameter {
    std::string tensor;  // the model tensor it came from
    std::vector<int64_t> shape;
    std::vector<T> value, grad;
    std::vector<uint8_t> mask;  // empty = dense; pruned positions stay 0 through training
    bool decays = false;        // linear and conv weights take weight decay; biases and batchnorm do not
    bool frozen = false;        // quantized weights: on their grid, not updated
    /// What the forward pass reads when not empty (e.g. the fake-quantized value); the
    /// gradient still reaches `value` unchanged (the straight-through estimator).
    std::vector<T> effective;
    const std::vector<T>& read() const { return effective.empty() ? value : effective; }
};

template <class T>
class net {
  public:
    net(const model& m, const net_options& options = {});
    ~net();
    net(net&&) noexcept;

    /// x: rows samples of the model's input, plain. training: batchnorm uses batch statistics
    /// (when batch_statistics) and updates its running estimates.
    void forward(const T* x, int64_t rows, bool training);

    /// The logits: the model's output, or the input of a final softmax/log_softmax (losses
    /// take the log-softmax themselves, which is exact where a softmax's output is not).
    const std::string& logits() const;
    int64_t width(const std::string& value) const;  // floats per sample
    bool has_value(const std::string& value) const;
    const std::vector<T>& value(const std::string& value) const;
    /// The gradient of the loss with respect to a value, zero after forward(); losses add to it.
    std::vector<T>& grad(const std::string& value);

    /// Parameter gradients: set to zero, then accumulated by backward().
    void zero_grad();
    void backward();

    std::vector<parameter<T>>& parameters();
    const std::vector<parameter<T>>& parameters() const;

    /// Writes the parameters (as float) into a copy of the model it was built from; batchnorm
    /// with batch statistics is folded into its scale and shift. Masks are kept; frozen
    /// (quantized) tensors are left as they are.
    void write_to(model& m) const;

  private:
    struct impl;
    std::unique_ptr<impl> p_;
};

extern template class net<float>;
extern template class net<double>;

}  // namespace shrink::train

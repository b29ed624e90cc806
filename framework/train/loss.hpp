// Losses on logits. Each returns the loss summed over the rows and adds the gradient of
// weight * (loss / rows) to `grad`, so that several losses add up on one backward pass.
#pragma once

#include <cstdint>

namespace shrink::train {

/// Softmax cross-entropy against integer labels. A row labelled -1 (a window's last token,
/// which predicts nothing) takes no part, and the gradient divides by the rows that do.
template <class T>
double cross_entropy(const T* logits, const int32_t* labels, int64_t rows, int64_t classes, double weight, T* grad);

/// Hinton's distillation term T^2 * KL(softmax(teacher / T) || softmax(student / T)).
/// The T^2 keeps its gradient on the same scale as cross-entropy's for any T.
template <class T>
double distillation(const T* student, const T* teacher, int64_t rows, int64_t classes, double temperature, double weight,
                    T* grad);

/// Mean over elements of (a - b)^2, per row summed: hidden-state matching.
template <class T>
double mean_squared(const T* a, const T* b, int64_t rows, int64_t width, double weight, T* grad);

}  // namespace shrink::train

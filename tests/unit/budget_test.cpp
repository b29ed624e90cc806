#include "plan/budget.hpp"

#include <catch2/catch.hpp>

using namespace shrink;

namespace {
budget_spec relative(double max_drop, bool higher = true) {
    budget_spec b;
    b.present = true;
    b.higher_is_better = higher;
    b.max_drop = max_drop;
    return b;
}
}  // namespace

TEST_CASE("drops compound as a product, not a sum", "[budget]") {
    CHECK(predict_retention({{0.1, "pruner"}, {0.05, "quantizer"}, {0.03, "factorizer"}}, true, 0) == Approx(0.9 * 0.95 * 0.97));
    CHECK(predict_retention({}, true, 0) == 1.0);
    // 1% + 1% sums to 2% but compounds to 1.99%.
    CHECK(1 - predict_retention({{0.01, "pruner"}, {0.01, "quantizer"}}, true, 0) == Approx(0.0199));
}

TEST_CASE("the interaction penalty reproduces the field's rule of thumb", "[budget]") {
    // 10% + 5% + 3% in three families: 17.1% compounded independently, near 25% with p = 0.2.
    const std::vector<stage_drop> three{{0.1, "pruner"}, {0.05, "quantizer"}, {0.03, "factorizer"}};
    CHECK(1 - predict_retention(three, true, 0.0) == Approx(0.17065).epsilon(1e-4));
    CHECK(1 - predict_retention(three, true, 0.2) == Approx(0.24574).epsilon(1e-4));
    // One family gets no penalty, however many stages it has.
    const std::vector<stage_drop> same{{0.1, "quantizer"}, {0.05, "quantizer"}};
    CHECK(predict_retention(same, true, 0.5) == Approx(0.9 * 0.95));
    // Two families: one factor of (1 + p).
    CHECK(1 - predict_retention({{0.1, "pruner"}, {0.1, "quantizer"}}, true, 0.5) == Approx(0.19 * 1.5));
    // A penalty never predicts below zero.
    CHECK(predict_retention({{0.6, "pruner"}, {0.6, "quantizer"}}, true, 5.0) == 0.0);
}

TEST_CASE("lower-is-better metrics: degradation multiplies the metric up", "[budget]") {
    // Perplexity 10 with two stages of +10% each: 12.1, retention 10 / 12.1.
    CHECK(predict_retention({{0.1, "pruner"}, {0.1, "pruner"}}, false, 0) == Approx(10.0 / 12.1));
    CHECK(retention_of(10.0, 12.1, false) == Approx(10.0 / 12.1));
    CHECK(retention_of(0.8, 0.6, true) == Approx(0.75));
    // A relative budget of 2% on perplexity allows 10 -> 10.2, not 10.3.
    CHECK(within_budget(relative(0.02, false), 10.0, 10.2));
    CHECK_FALSE(within_budget(relative(0.02, false), 10.0, 10.3));
    CHECK(required_retention(relative(0.02, false), std::nullopt) == Approx(1 / 1.02));
    // max_increase may pass 1: perplexity allowed to double.
    CHECK(within_budget(relative(1.0, false), 10.0, 20.0));
    CHECK_FALSE(within_budget(relative(1.0, false), 10.0, 20.1));
    // Improvements are always within budget.
    CHECK(within_budget(relative(0.0, false), 10.0, 9.0));
    CHECK(within_budget(relative(0.0, true), 0.8, 0.9));
}

TEST_CASE("absolute budgets need the baseline, and combine with relative ones", "[budget]") {
    budget_spec abs;
    abs.present = true;
    abs.max_abs_drop = 0.5;
    CHECK(required_retention(abs, std::nullopt) == 0.0);  // unknown before the baseline is measured
    CHECK(required_retention(abs, 80.0) == Approx(1 - 0.5 / 80));
    CHECK(within_budget(abs, 80.0, 79.5));
    CHECK_FALSE(within_budget(abs, 80.0, 79.4));
    abs.higher_is_better = false;  // loss 2.0 may rise to 2.5
    CHECK(within_budget(abs, 2.0, 2.5));
    CHECK_FALSE(within_budget(abs, 2.0, 2.6));
    CHECK(required_retention(abs, 2.0) == Approx(2.0 / 2.5));
    budget_spec both = relative(0.01);
    both.max_abs_drop = 0.5;  // on 80: 1% allows 79.2, the absolute 79.5: the stricter wins
    CHECK(required_retention(both, 80.0) == Approx(1 - 0.5 / 80));
    CHECK_FALSE(within_budget(both, 80.0, 79.4));
}

TEST_CASE("drop_between inverts the compounding", "[budget]") {
    for (bool hib : {true, false}) {
        const double r1 = predict_retention({{0.02, "pruner"}}, hib, 0);
        const double r2 = predict_retention({{0.02, "pruner"}, {0.05, "quantizer"}}, hib, 0);
        CHECK(drop_between(1.0, r1, hib) == Approx(0.02));
        CHECK(drop_between(r1, r2, hib) == Approx(0.05));
    }
}

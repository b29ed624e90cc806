#include "util/text.hpp"

#include <catch2/catch.hpp>

#include <locale>

using namespace shrink;

TEST_CASE("decimal integers refuse octal-looking and malformed text", "[text]") {
    CHECK(parse_decimal_int("0") == 0);
    CHECK(parse_decimal_int("1234") == 1234);
    CHECK(parse_decimal_int("-7") == -7);
    CHECK(parse_decimal_int("+7") == 7);
    CHECK_FALSE(parse_decimal_int("017"));
    CHECK_FALSE(parse_decimal_int("0x10"));
    CHECK_FALSE(parse_decimal_int("1e3"));
    CHECK_FALSE(parse_decimal_int(""));
    CHECK_FALSE(parse_decimal_int(" 1"));
    CHECK_FALSE(parse_decimal_int("99999999999999999999"));
}

TEST_CASE("finite doubles refuse inf, nan, hex and leading zeros", "[text]") {
    CHECK(parse_finite_double("0.5") == 0.5);
    CHECK(parse_finite_double("1e-3") == 0.001);
    CHECK(parse_finite_double("-2") == -2.0);
    CHECK(parse_finite_double("0") == 0.0);
    for (const char* bad : {"inf", ".inf", "nan", ".NaN", "-inf", "0x1p3", "1e999", "017", "0.5.1", "", "1,5"})
        CHECK_FALSE(parse_finite_double(bad));
}

namespace {
struct comma_decimal : std::numpunct<char> {
    char do_decimal_point() const override { return ','; }
};
}  // namespace

TEST_CASE("number parsing does not depend on the global locale", "[text]") {
    const std::locale previous = std::locale::global(std::locale(std::locale::classic(), new comma_decimal));
    CHECK(parse_finite_double("0.25") == 0.25);
    CHECK_FALSE(parse_finite_double("0,25"));
    CHECK(format_double(0.25) == "0.25");
    std::locale::global(previous);
}

TEST_CASE("did-you-mean suggests near misses only", "[text]") {
    CHECK(did_you_mean("quantizer.gtpq", {"quantizer.gptq", "quantizer.rtn"}) == "; did you mean 'quantizer.gptq'?");
    CHECK(did_you_mean("sparsty", {"sparsity", "scope"}) == "; did you mean 'sparsity'?");
    CHECK(did_you_mean("completely-different", {"sparsity"}).empty());
}

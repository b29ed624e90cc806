#include "plan/ledger.hpp"
#include "support.hpp"

#include <catch2/catch.hpp>

using namespace shrink;

TEST_CASE("the ledger records, counts and persists measurements", "[ledger]") {
    test::temp_dir dir;
    const auto file = dir / "sub" / "ledger.json";
    {
        ledger l(file);
        CHECK(l.enabled());
        CHECK_FALSE(l.find("k"));
        l.record("k", 0.01, 0.002, {{"type", "pruner.magnitude"}});
        l.record("k", 0.012, 0.002, {{"type", "pruner.magnitude"}});
        l.save();
    }
    ledger again(file);
    const auto m = again.find("k");
    REQUIRE(m);
    CHECK(m->value == 0.012);  // the latest measurement
    CHECK(m->runs == 2);
    CHECK(m->stderr_ == 0.002);
    CHECK(m->recorded.size() == 10);
}

TEST_CASE("a disabled ledger finds and writes nothing", "[ledger]") {
    ledger off{std::filesystem::path()};
    off.record("k", 1, 0, {});
    CHECK_FALSE(off.find("k"));
    CHECK_NOTHROW(off.save());
}

TEST_CASE("a damaged ledger is ignored with a warning, not fatal", "[ledger]") {
    test::temp_dir dir;
    test::write_text(dir / "ledger.json", "{ not json");
    ledger l(dir / "ledger.json");
    CHECK_FALSE(l.find("anything"));
    l.record("k", 0.5, 0, {});
    l.save();
    CHECK(ledger(dir / "ledger.json").find("k")->value == 0.5);
}

TEST_CASE("SHRINK_LEDGER picks the file, and 'off' disables it", "[ledger]") {
    setenv("SHRINK_LEDGER", "off", 1);
    CHECK_FALSE(ledger::open_default().enabled());
    setenv("SHRINK_LEDGER", "/tmp/x/ledger.json", 1);
    CHECK(ledger::open_default().file() == "/tmp/x/ledger.json");
    unsetenv("SHRINK_LEDGER");
}

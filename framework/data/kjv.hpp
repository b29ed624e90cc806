// The King James Bible as training and evaluation text for language models, from Debian's
// bible-kjv package (its data file is compressed in the package's own format, so it is
// read through the package's `bible` program).
#pragma once

#include <string>

namespace shrink {

/// The package's data file, which `bible` reads: what a run records as its input.
constexpr const char* kjv_data_file = "/usr/lib/bible.data";

/// Every verse from Genesis 1:1 to Revelation 22:21, one a line, without the verse
/// references `bible` puts in front ("Ge1:1 "): 31,102 lines, about 4.3 MB. Throws
/// input_error saying which package to install when `bible` is missing, and naming the
/// failure when it does not print the whole text.
std::string kjv_text();

}  // namespace shrink

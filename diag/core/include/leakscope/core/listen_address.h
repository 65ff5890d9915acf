// The one syntax check of a listen address ("HOST:PORT" or "[V6]:PORT"),
// shared by the runtime's /metrics server and `leakscope run --metrics`, so
// a bad address is refused before the program starts, with the same words.
#pragma once

#include <string_view>

#include "leakscope/core/result.h"

namespace leakscope::core {

// Checks "HOST:PORT" / "[V6]:PORT" syntax; the error says what is wrong.
Status validateListenAddress(std::string_view address);

}  // namespace leakscope::core

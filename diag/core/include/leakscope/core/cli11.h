// CLI11, as every leakscope front end includes it (leakscope, pushdaemon,
// pushdaemon-admin, leakscope-example). Header-only: include it only from a
// target that links CLI11::CLI11; core itself does not.
//
// GCC 12 sees a "potential null pointer dereference" in std::vector's
// reallocation as inlined from CLI11's string splitting: a false positive in
// code that is not ours, silenced here once rather than in every front end.
#pragma once

#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wnull-dereference"
#include <CLI/CLI.hpp>
#pragma GCC diagnostic pop

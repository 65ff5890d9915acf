// The runtime's calls return core's Result (leakscope/core/result.h, where
// the error codes are documented). These names let a program that links
// leakscope::diag write diag::Status, as the instrumenting guide does, without
// reaching into core.
#pragma once

#include "leakscope/core/result.h"

namespace leakscope::diag {

using core::Errc;
using core::Error;
using core::Ok;
using core::Result;
using core::Status;

}  // namespace leakscope::diag

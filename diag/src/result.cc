#include "leakscope/diag/result.h"

namespace leakscope::diag {

const char* errcName(Errc code) {
  switch (code) {
    case Errc::kIo:
      return "io";
    case Errc::kPermission:
      return "permission";
    case Errc::kNoSpace:
      return "no_space";
    case Errc::kParse:
      return "parse";
    case Errc::kInvalidArgument:
      return "invalid_argument";
    case Errc::kUnavailable:
      return "unavailable";
  }
  return "?";
}

}  // namespace leakscope::diag

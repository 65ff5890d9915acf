// Figures as people read them: bytes in binary units, durations in the two
// largest units, counts as whole numbers. Pure functions, shared by the
// analyses (whose reasons quote figures) and the views, so that the analyse
// stage does not depend on the render stage. Thread-safe.
#pragma once

#include <string>

namespace leakscope::analysis {

// "1.5 MiB", "-320 B".
std::string formatBytes(double bytes);
// "3h 12m", "45s", "2d 4h"; "never" for an infinite time.
std::string formatDuration(double seconds);
// "42", "-3": rounded to a whole number.
std::string formatCount(double count);

}  // namespace leakscope::analysis

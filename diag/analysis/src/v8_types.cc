#include <array>
#include <string_view>

#include "v8_graph.h"

namespace leakscope::analysis::v8 {
namespace {

constexpr std::array<const char*, 16> kNodeTypeNames = {"hidden",
                                                        "array",
                                                        "string",
                                                        "object",
                                                        "code",
                                                        "closure",
                                                        "regexp",
                                                        "number",
                                                        "native",
                                                        "synthetic",
                                                        "concatenated string",
                                                        "sliced string",
                                                        "symbol",
                                                        "bigint",
                                                        "object shape",
                                                        "unknown"};

constexpr std::array<const char*, 8> kEdgeTypeNames = {
    "context", "element", "property", "internal", "hidden", "shortcut", "weak", "unknown"};

}  // namespace

const char* nodeTypeName(NodeType t) { return kNodeTypeNames[static_cast<std::size_t>(t)]; }
const char* edgeTypeName(EdgeType t) { return kEdgeTypeNames[static_cast<std::size_t>(t)]; }

NodeType nodeTypeFromName(std::string_view name) {
  for (std::size_t i = 0; i + 1 < kNodeTypeNames.size(); ++i) {
    if (name == kNodeTypeNames[i]) return static_cast<NodeType>(i);
  }
  return NodeType::kUnknown;
}

EdgeType edgeTypeFromName(std::string_view name) {
  for (std::size_t i = 0; i + 1 < kEdgeTypeNames.size(); ++i) {
    if (name == kEdgeTypeNames[i]) return static_cast<EdgeType>(i);
  }
  return EdgeType::kUnknown;
}

}  // namespace leakscope::analysis::v8

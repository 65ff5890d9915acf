// The schema migrations compiled into the binary (generated from
// daemon/schema/NNN_name.sql by daemon/CMakeLists.txt), in version order.
#pragma once

#include <string>
#include <vector>

namespace pushdaemon {

struct Migration {
  int version;
  std::string name;
  std::string sql;
};

const std::vector<Migration>& schemaMigrations();

}  // namespace pushdaemon

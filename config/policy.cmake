# The load-shedding policy schema; included by config/CMakeLists.txt. The shipped policy.toml is compiled in
# as the default policy.
file(READ ${CMAKE_CURRENT_SOURCE_DIR}/policy.toml RAMPART_DEFAULT_POLICY_TOML)
file(CONFIGURE OUTPUT ${CMAKE_CURRENT_BINARY_DIR}/embedded_policy.cpp CONTENT
"// Generated from config/policy.toml at configure time.
#include \"config/policy.hpp\"

namespace rampart::config {

std::string_view embedded_default_policy() {
  static const char text[] = R\"rampart_policy(@RAMPART_DEFAULT_POLICY_TOML@)rampart_policy\";
  return std::string_view(text, sizeof(text) - 1);
}

}  // namespace rampart::config
" @ONLY)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${CMAKE_CURRENT_SOURCE_DIR}/policy.toml)
target_sources(rampart_config PRIVATE ${CMAKE_CURRENT_SOURCE_DIR}/policy.cpp
               ${CMAKE_CURRENT_BINARY_DIR}/embedded_policy.cpp)

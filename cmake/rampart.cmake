# Helpers every room uses to declare tools and tests the same way.

# rampart_add_tool(<name> SOURCES <files...> LIBS <targets...>)
# An executable written to build/bin/.
function(rampart_add_tool name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})  # tools/flags.hpp
  target_link_libraries(${name} PRIVATE ${T_LIBS} rampart_warnings)
endfunction()

# rampart_add_test(<name> SOURCES <files...> LIBS <targets...> [PREFIX <ctest prefix>] [TIMEOUT <s>] [SERIAL]
#                  [FIXTURES <ctest fixtures required>])
# A Catch2 executable whose TEST_CASEs are registered with CTest one by one. A test that prints "SKIPPED:"
# is reported as skipped by CTest (Catch2 v2 has no SKIP).
function(rampart_add_test name)
  cmake_parse_arguments(T "SERIAL" "PREFIX;TIMEOUT" "SOURCES;LIBS;FIXTURES" ${ARGN})
  if(NOT T_PREFIX)
    set(T_PREFIX "${name}.")
  endif()
  if(NOT T_TIMEOUT)
    set(T_TIMEOUT 120)
  endif()
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE rampart_catch_main ${T_LIBS} rampart_warnings)
  set(props SKIP_REGULAR_EXPRESSION "SKIPPED:" TIMEOUT ${T_TIMEOUT})
  if(T_SERIAL)
    list(APPEND props RUN_SERIAL TRUE)
  endif()
  if(T_FIXTURES)
    list(JOIN T_FIXTURES ";" fixtures)
    list(APPEND props FIXTURES_REQUIRED "${fixtures}")
  endif()
  if(NOT COMMAND catch_discover_tests)  # engine-only build with the carried catch.hpp: one CTest entry per executable
    add_test(NAME ${name} COMMAND ${name} WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
    set_tests_properties(${name} PROPERTIES ${props})
    return()
  endif()
  # --warn NoTests: an entry whose name matches no TEST_CASE fails instead of passing with nothing run (a name
  # that CMake's list splitting cut, e.g. at a semicolon, would otherwise pass silently).
  catch_discover_tests(${name} TEST_PREFIX "${T_PREFIX}" EXTRA_ARGS --warn NoTests PROPERTIES ${props}
                       WORKING_DIRECTORY ${PROJECT_SOURCE_DIR})
endfunction()

# rampart_add_fuzzer(<name> SOURCES <files...> LIBS <targets...>)
# A libFuzzer target (LLVMFuzzerTestOneInput), built only with -DRAMPART_FUZZ=ON and clang. `make fuzz` (and
# `make test`) run each briefly on its corpus in tests/fuzz/corpus/<name>/.
add_custom_target(rampart_fuzzers)
function(rampart_add_fuzzer name)
  if(NOT RAMPART_FUZZ)
    return()
  endif()
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} rampart_warnings)
  target_link_options(${name} PRIVATE -fsanitize=fuzzer)
  add_dependencies(rampart_fuzzers ${name})
endfunction()

# rampart_embed_text(<target> FILE <text file> HEADER <header declaring it> FUNCTION <rampart::config name>)
# Compiles a shipped text file into TARGET as `std::string_view rampart::config::<FUNCTION>()`, regenerated
# whenever the file changes.
function(rampart_embed_text target)
  cmake_parse_arguments(E "" "FILE;HEADER;FUNCTION" "" ${ARGN})
  get_filename_component(path ${E_FILE} ABSOLUTE)
  file(READ ${path} text)
  string(FIND "${text}" ")rampart_text\"" clash)
  if(NOT clash EQUAL -1)
    message(FATAL_ERROR "${E_FILE} contains the raw-string delimiter )rampart_text\"")
  endif()
  set(out ${CMAKE_CURRENT_BINARY_DIR}/embedded_${E_FUNCTION}.cpp)
  file(RELATIVE_PATH rel ${PROJECT_SOURCE_DIR} ${path})
  file(CONFIGURE OUTPUT ${out} CONTENT
"// Generated from ${rel} at configure time.
#include \"${E_HEADER}\"

namespace rampart::config {

std::string_view ${E_FUNCTION}() {
  static const char text[] = R\"rampart_text(@text@)rampart_text\";
  return std::string_view(text, sizeof(text) - 1);
}

}  // namespace rampart::config
" @ONLY)
  set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${path})
  target_sources(${target} PRIVATE ${out})
endfunction()

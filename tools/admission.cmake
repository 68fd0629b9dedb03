# rampart-admin: the tenant accounts database for operators (included by tools/CMakeLists.txt).
rampart_add_tool(rampart-admin SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/rampart_admin.cpp LIBS rampart_admission rampart_config cppzmq)

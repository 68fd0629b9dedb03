# rampart-inspect: offline packet-monitor analysis of pcap files (included by tools/CMakeLists.txt).
rampart_add_tool(rampart-inspect SOURCES ${CMAKE_CURRENT_SOURCE_DIR}/rampart_inspect.cpp
                 LIBS rampart_monitor rampart_config)

# Filled in by the engine work.
rampart_add_tool(rampart-mkmodel SOURCES rampart_mkmodel.cpp LIBS rampart_model)
rampart_add_tool(rampart-generate SOURCES rampart_generate.cpp LIBS rampart_model rampart_actors rampart_net)
rampart_add_tool(rampart-kernels-bench SOURCES rampart_kernels_bench.cpp LIBS rampart_model)

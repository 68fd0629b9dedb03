# Filled in by the engine work.
rampart_add_tool(rampart-mkmodel SOURCES rampart_mkmodel.cpp LIBS rampart_model)

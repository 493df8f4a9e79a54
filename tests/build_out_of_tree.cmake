# Configures, builds and runs examples/out_of_tree against a Freshet build
# tree, the way a user's project would with find_package(Freshet).
execute_process(COMMAND ${CMAKE_COMMAND} -S ${SOURCE_DIR} -B ${BINARY_DIR} -G Ninja
                        -DCMAKE_BUILD_TYPE=Release -DFreshet_DIR=${Freshet_DIR}
                RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "configuring the out-of-tree example failed")
endif()
execute_process(COMMAND ${CMAKE_COMMAND} --build ${BINARY_DIR} RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "building the out-of-tree example failed")
endif()
execute_process(COMMAND ${BINARY_DIR}/out_of_tree_job RESULT_VARIABLE rc OUTPUT_VARIABLE out)
message(STATUS "${out}")
if(NOT rc EQUAL 0 OR NOT out MATCHES "sum of squares 1..100 = 338350")
  message(FATAL_ERROR "the out-of-tree job did not print the expected result")
endif()

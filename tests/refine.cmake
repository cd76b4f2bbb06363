# Refinement tests: closed-form spectra and the output directory contract
# (test_refine), and the independent float64 reference used to check whole
# generated pairs (timber-refcheck, driven by refine_pairs.sh).
add_executable(test_refine test_refine.c)
target_link_libraries(test_refine PRIVATE timber_testutil)
add_test(NAME refine COMMAND test_refine)
set_tests_properties(refine PROPERTIES TIMEOUT 300)

add_executable(timber-refcheck refcheck.c)
target_include_directories(timber-refcheck PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(timber-refcheck PRIVATE timber_lib)
set_target_properties(timber-refcheck PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})

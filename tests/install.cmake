# Tests of the installed tool (tests/install/): the version and build
# facts.  Included by tests/CMakeLists.txt.
set(TIMBER_INSTALL_TESTS ${CMAKE_CURRENT_SOURCE_DIR}/install)

add_test(NAME version
  COMMAND bash ${TIMBER_INSTALL_TESTS}/version.sh $<TARGET_FILE:timber>
          ${PROJECT_VERSION}
          "${CMAKE_C_COMPILER_ID} ${CMAKE_C_COMPILER_VERSION}" "$<CONFIG>")
set_tests_properties(version PROPERTIES TIMEOUT 60)

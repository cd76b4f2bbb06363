# Tests of the installed tool (tests/install/): the version and build
# facts, the man page against --help, the shell completions against
# --help, `cmake --install`, and the Debian package.  Included by
# tests/CMakeLists.txt.
set(TIMBER_INSTALL_TESTS ${CMAKE_CURRENT_SOURCE_DIR}/install)

add_test(NAME version
  COMMAND bash ${TIMBER_INSTALL_TESTS}/version.sh $<TARGET_FILE:timber>
          ${PROJECT_VERSION}
          "${CMAKE_C_COMPILER_ID} ${CMAKE_C_COMPILER_VERSION}" "$<CONFIG>")
set_tests_properties(version PROPERTIES TIMEOUT 60)

add_test(NAME man_help
  COMMAND python3 ${TIMBER_INSTALL_TESTS}/man_help.py $<TARGET_FILE:timber>
          ${CMAKE_BINARY_DIR}/man/timber.1)
set_tests_properties(man_help PROPERTIES TIMEOUT 60)

add_test(NAME completion
  COMMAND bash ${TIMBER_INSTALL_TESTS}/completion.sh $<TARGET_FILE:timber>
          ${CMAKE_SOURCE_DIR}/src/cli/complete/timber.bash
          ${CMAKE_SOURCE_DIR}/src/cli/complete/_timber)
set_tests_properties(completion PROPERTIES TIMEOUT 120)

# Both install from the build tree (and write its install_manifest.txt),
# so they never run at the same time.
add_test(NAME install_tree
  COMMAND bash ${TIMBER_INSTALL_TESTS}/install_tree.sh ${CMAKE_BINARY_DIR}
          $<TARGET_FILE:timber-gen> ${TIMBER_SANITIZE} ${TIMBER_INSTALL_LIBRARY})
set_tests_properties(install_tree PROPERTIES TIMEOUT 300
                     RESOURCE_LOCK timber_install)

# The package of a sanitizer build would be an ASan binary, not a product:
# only the normal build makes and installs one.
if(NOT TIMBER_SANITIZE)
  add_test(NAME package
    COMMAND bash ${TIMBER_INSTALL_TESTS}/package.sh ${CMAKE_BINARY_DIR}
            $<TARGET_FILE:timber-gen> ${TIMBER_INSTALL_LIBRARY})
  set_tests_properties(package PROPERTIES TIMEOUT 900 RUN_SERIAL ON
                       RESOURCE_LOCK timber_install SKIP_RETURN_CODE 77)
endif()

# Functional tests of refinement, erank and the cache over generated pairs.
# The scripts live in tests/func/ (see tests/README.md); each prints
# "N passed, M failed".  timber-erankcheck is the float64 eRank reference.
add_executable(timber-erankcheck func/erankcheck.c)
target_include_directories(timber-erankcheck PRIVATE ${CMAKE_SOURCE_DIR}/src
                           ${CMAKE_CURRENT_SOURCE_DIR})
target_link_libraries(timber-erankcheck PRIVATE timber_lib)
set_target_properties(timber-erankcheck PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})

set(TIMBER_FUNC ${CMAKE_CURRENT_SOURCE_DIR}/func)

# Agreement with the independent float64 reference (timber-refcheck).
foreach(mode dtypes layouts streaming qwen3 experts)
  add_test(NAME func_agree_${mode}
    COMMAND bash ${TIMBER_FUNC}/agree.sh ${mode} $<TARGET_FILE:timber>
            $<TARGET_FILE:timber-gen> $<TARGET_FILE:timber-refcheck>)
  set_tests_properties(func_agree_${mode} PROPERTIES TIMEOUT 600
                       SKIP_RETURN_CODE 77
                       LABELS functional)
endforeach()

# The refine command line: usage and runtime errors, streams, summary,
# warnings, reports, selection, --force, determinism across --threads.
add_test(NAME func_cli_refine
  COMMAND bash ${TIMBER_FUNC}/cli_refine.sh $<TARGET_FILE:timber>
          $<TARGET_FILE:timber-gen>)
set_tests_properties(func_cli_refine PROPERTIES TIMEOUT 300
                     SKIP_RETURN_CODE 77
                     LABELS functional)

# The output directory is a normal HF checkpoint of Instruct's layout.
add_test(NAME func_outdir
  COMMAND bash ${TIMBER_FUNC}/outdir.sh $<TARGET_FILE:timber>
          $<TARGET_FILE:timber-gen>)
set_tests_properties(func_outdir PROPERTIES TIMEOUT 300 SKIP_RETURN_CODE 77
                       LABELS functional)

# A run split into parts, then finalized: the same bytes as one run.
add_test(NAME func_parts
  COMMAND bash ${TIMBER_FUNC}/parts.sh $<TARGET_FILE:timber>
          $<TARGET_FILE:timber-gen>)
set_tests_properties(func_parts PROPERTIES TIMEOUT 600 LABELS functional)

# Direct writes give the bytes buffered writes give, in every mode.
add_test(NAME func_direct
  COMMAND bash ${TIMBER_FUNC}/direct.sh $<TARGET_FILE:timber>
          $<TARGET_FILE:timber-gen>)
set_tests_properties(func_direct PROPERTIES TIMEOUT 300 LABELS functional)

# The SVD cache: reuse across gammas, damage, another pair's cache, a file
# that is not a cache, the default location; its size (cache_size); and a
# cache directory shared by two parts run at once (cache_dir).
foreach(mode flow size dir)
  add_test(NAME func_cache_${mode}
    COMMAND bash ${TIMBER_FUNC}/cache.sh ${mode} $<TARGET_FILE:timber>
            $<TARGET_FILE:timber-gen> $<TARGET_FILE:timber-refcheck>)
  set_tests_properties(func_cache_${mode} PROPERTIES TIMEOUT 600
                       SKIP_RETURN_CODE 77
                       LABELS functional)
endforeach()

# timber erank: values against the float64 reference, JSON/CSV/table,
# single model, selection, cache; and the gnuplot figure (skipped, exit 77,
# without gnuplot).
foreach(mode values plot)
  add_test(NAME func_erank_${mode}
    COMMAND bash ${TIMBER_FUNC}/erank.sh ${mode} $<TARGET_FILE:timber>
            $<TARGET_FILE:timber-gen> $<TARGET_FILE:timber-erankcheck>)
  set_tests_properties(func_erank_${mode} PROPERTIES TIMEOUT 300
                       SKIP_RETURN_CODE 77
                       LABELS functional)
endforeach()

# The spectrum's two reductions (one-stage dsytrd, two-stage band +
# bulge chase) forced at S = 2048, each against the float64 reference.
add_executable(timber-refine-route func/refine_route.c)
target_include_directories(timber-refine-route PRIVATE ${CMAKE_SOURCE_DIR}/src)
target_link_libraries(timber-refine-route PRIVATE timber_lib)
set_target_properties(timber-refine-route PROPERTIES
  RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR})
add_test(NAME func_route
  COMMAND bash ${TIMBER_FUNC}/route.sh $<TARGET_FILE:timber>
          $<TARGET_FILE:timber-gen> $<TARGET_FILE:timber-refcheck>
          $<TARGET_FILE:timber-refine-route>)
set_tests_properties(func_route PROPERTIES TIMEOUT 900
                     SKIP_RETURN_CODE 77
                     LABELS functional)

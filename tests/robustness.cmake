# Robustness: fuzz-target regression inputs, fault injection, limits.
#
#   tests/fuzz/     libFuzzer targets (TIMBER_FUZZ=ON, clang) and their
#                   replay drivers, which run in every build
#   tests/faults/   fault injection: disk full, signals, unreadable and
#                   changing inputs, bad caches, NaN/Inf, limits, leaks
option(TIMBER_FUZZ "Build the libFuzzer targets (needs CC=clang)" OFF)
add_subdirectory(fuzz)

# ---- fault injection and limits (tests/faults/) ---------------------------
# The disk-full shim: an LD_PRELOAD library failing writes with ENOSPC.
# Built without the sanitizers (it is preloaded into sanitized programs).
add_library(failwrite SHARED faults/failwrite.c)
set_property(TARGET failwrite PROPERTY COMPILE_OPTIONS -Wall -Wextra -Werror)
set_property(TARGET failwrite PROPERTY LINK_OPTIONS "")
target_link_libraries(failwrite PRIVATE ${CMAKE_DL_LIBS})

# Every script: bash SCRIPT TIMBER TIMBER_GEN REFCHECK [SHIM]; exit 77 =
# skipped (the reason is printed).
set(fault_args $<TARGET_FILE:timber> $<TARGET_FILE:timber-gen>
               $<TARGET_FILE:timber-refcheck>)
# hostile_*: issue #11's hostile situations, one script per class
# (docs/guarantees.md, "Hostile situations").
foreach(case disk_full inputs cache cachedir midrun limits hostile_paths
             hostile_streams hostile_limits hostile_signals hostile_stale
             hostile_checkpoint hostile_special hostile_numbers)
  add_test(NAME fault_${case}
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/faults/${case}.sh ${fault_args}
            $<TARGET_FILE:failwrite>)
  set_tests_properties(fault_${case} PROPERTIES TIMEOUT 600
                       SKIP_RETURN_CODE 77 LABELS "robustness;faults")
endforeach()
# The mid-run signals work on a ~700 MB pair: slower, and alone.
set_tests_properties(fault_midrun PROPERTIES TIMEOUT 1500 RUN_SERIAL TRUE)
set_tests_properties(fault_limits PROPERTIES TIMEOUT 1200)

# A complete refine (and its failure paths) under valgrind, in the
# ordinary build; the sanitizer build checks leaks with LeakSanitizer.
if(TIMBER_VALGRIND AND NOT TIMBER_SANITIZE)
  add_test(NAME refine_valgrind
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/faults/valgrind_refine.sh
            ${fault_args})
  set_tests_properties(refine_valgrind PROPERTIES TIMEOUT 900
                       SKIP_RETURN_CODE 77 LABELS "robustness")
endif()

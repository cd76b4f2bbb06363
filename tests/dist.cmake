# A refinement split into parts across processes and schedulers (issue
# #13; tests/dist/, label "dist"): plain background processes and GNU
# parallel, a real one-node Slurm cluster (tests/dist/slurm_lib.sh:
# private munged, slurmctld and slurmd, their files in the test's
# temporary directory), `timber plan`.  The Slurm tests need root and
# Debian's slurmctld, slurmd, slurm-client and munge (scripts/test.sh
# installs them as root); elsewhere they exit 77 with the reason.
# Included by tests/CMakeLists.txt.
set(dist_args $<TARGET_FILE:timber> $<TARGET_FILE:timber-gen>
              $<TARGET_FILE:timber-refcheck>)
foreach(case slurm_harness slurm slurm_fail local docs plan)
  add_test(NAME dist_${case}
    COMMAND bash ${CMAKE_CURRENT_SOURCE_DIR}/dist/${case}.sh ${dist_args}
            $<TARGET_FILE:failwrite>)
  set_tests_properties(dist_${case} PROPERTIES TIMEOUT 300
                       SKIP_RETURN_CODE 77 LABELS dist)
endforeach()

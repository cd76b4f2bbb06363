# Functional tests of refinement, erank and the cache over generated pairs.

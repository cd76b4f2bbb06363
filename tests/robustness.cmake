# Robustness: fuzz-target regression inputs, fault injection, limits.

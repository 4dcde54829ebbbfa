"""hpchub's benchmarks: `make bench` (python -m benchmarks) runs them all and prints each
result as a ratio against a baseline measured in the same run."""

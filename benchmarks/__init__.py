"""`make bench`: load benchmarks that print figures (never part of `make test`)."""

//! Helpers for end-to-end tests: starting `gantry` processes, waiting on conditions.

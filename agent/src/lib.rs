//! The node agent: registration, leases, pod sync on Docker, probes, status, logs, DNS.

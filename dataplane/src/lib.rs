//! The service dataplane: the ServiceDataplane trait, its eBPF and iptables implementations, and a recording fake.

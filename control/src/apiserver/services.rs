//! Service address allocation: ClusterIPs from the service range (default 10.96.0.0/12) and
//! NodePorts from 30000–32767. Each allocation is a key in the store created in the same
//! transaction as the Service (and deleted with it), so two Services can never hold the
//! same IP or port — whichever member leads, before or after a failover.

use std::net::Ipv4Addr;

use gantry_api::validation::{Cause, CauseType};
use gantry_store::{Consistency, Op};
use rand::Rng;
use serde_json::{json, Value};

use super::ApiState;

/// Where Services get their addresses.
#[derive(Clone, Debug)]
pub struct ServiceRanges {
    /// Network address of the ClusterIP range.
    pub cidr_base: Ipv4Addr,
    pub cidr_bits: u8,
    pub node_ports: (u16, u16),
}

impl Default for ServiceRanges {
    fn default() -> ServiceRanges {
        ServiceRanges {
            cidr_base: Ipv4Addr::new(10, 96, 0, 0),
            cidr_bits: 12,
            node_ports: (30000, 32767),
        }
    }
}

impl ServiceRanges {
    /// Parses `a.b.c.d/n`.
    pub fn parse_cidr(&mut self, cidr: &str) -> Result<(), String> {
        let (ip, bits) = cidr
            .split_once('/')
            .ok_or_else(|| format!("{cidr} is not a CIDR (a.b.c.d/n)"))?;
        let ip: Ipv4Addr = ip.parse().map_err(|_| format!("{ip} is not an IPv4 address"))?;
        let bits: u8 = bits
            .parse()
            .ok()
            .filter(|b| (8..=30).contains(b))
            .ok_or_else(|| format!("/{bits}: the prefix must be 8..30"))?;
        let mask = u32::MAX << (32 - bits);
        self.cidr_base = Ipv4Addr::from(u32::from(ip) & mask);
        self.cidr_bits = bits;
        Ok(())
    }

    fn contains(&self, ip: Ipv4Addr) -> bool {
        let mask = u32::MAX << (32 - self.cidr_bits);
        u32::from(ip) & mask == u32::from(self.cidr_base)
    }

    /// Usable host addresses: the network address, the broadcast and .1 (the `kubernetes`
    /// service's) are skipped.
    fn random_ip(&self) -> Ipv4Addr {
        let size = 1u32 << (32 - self.cidr_bits);
        Ipv4Addr::from(u32::from(self.cidr_base) + rand::thread_rng().gen_range(2..size - 1))
    }

    fn random_port(&self) -> u16 {
        rand::thread_rng().gen_range(self.node_ports.0..=self.node_ports.1)
    }
}

pub fn ip_key(ip: &str) -> String {
    format!("/registry/gantry/serviceips/{ip}")
}

pub fn port_key(port: i64) -> String {
    format!("/registry/gantry/nodeports/{port}")
}

fn invalid(field: String, value: String, why: &str) -> Cause {
    Cause::new(
        field,
        CauseType::FieldValueInvalid,
        format!("Invalid value: \"{value}\": {why}"),
    )
}

/// One allocation a create must make: its key, and whether the client asked for it.
pub struct Claim {
    pub key: String,
    pub requested: bool,
    pub cause: Cause,
}

/// The allocation keys a Service holds.
pub fn held_keys(svc: &Value) -> Vec<String> {
    let mut keys = Vec::new();
    if let Some(ip) = svc.pointer("/spec/clusterIP").and_then(Value::as_str) {
        if !ip.is_empty() && ip != "None" {
            keys.push(ip_key(ip));
        }
    }
    for p in svc
        .pointer("/spec/ports")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(n) = p.get("nodePort").and_then(Value::as_i64) {
            keys.push(port_key(n));
        }
    }
    keys.sort();
    keys.dedup();
    keys
}

impl ApiState {
    /// Fills in a new Service's ClusterIP and NodePorts (keeping requested ones) and returns
    /// the claims to create with it. Errors for requests outside the ranges.
    pub async fn allocate_service(&self, svc: &mut Value) -> Result<Vec<Claim>, Vec<Cause>> {
        let ranges = &self.service_ranges;
        let mut claims = Vec::new();
        let mut causes = Vec::new();
        let ty = svc
            .pointer("/spec/type")
            .and_then(Value::as_str)
            .unwrap_or("ClusterIP")
            .to_string();
        if ty != "ExternalName" {
            let requested = svc
                .pointer("/spec/clusterIP")
                .and_then(Value::as_str)
                .unwrap_or("")
                .to_string();
            match requested.as_str() {
                "None" => svc["spec"]["clusterIPs"] = json!(["None"]),
                "" => {
                    let ip = self.free(|| ranges.random_ip().to_string(), ip_key).await;
                    svc["spec"]["clusterIP"] = json!(ip);
                    svc["spec"]["clusterIPs"] = json!([ip]);
                    claims.push(Claim {
                        key: ip_key(&ip),
                        requested: false,
                        cause: invalid(
                            "spec.clusterIPs[0]".into(),
                            ip.clone(),
                            "provided IP is already allocated",
                        ),
                    });
                }
                ip => match ip.parse::<Ipv4Addr>() {
                    Ok(addr) if ranges.contains(addr) => {
                        svc["spec"]["clusterIPs"] = json!([ip]);
                        claims.push(Claim {
                            key: ip_key(ip),
                            requested: true,
                            cause: invalid(
                                "spec.clusterIPs[0]".into(),
                                ip.into(),
                                "provided IP is already allocated",
                            ),
                        });
                    }
                    Ok(_) => causes.push(invalid(
                        "spec.clusterIPs[0]".into(),
                        ip.into(),
                        &format!(
                            "provided IP is not in the valid range. The range of valid IPs is {}/{}",
                            ranges.cidr_base, ranges.cidr_bits
                        ),
                    )),
                    Err(_) => causes.push(invalid(
                        "spec.clusterIP".into(),
                        ip.into(),
                        "must be a valid IP address, (e.g. 10.9.8.7)",
                    )),
                },
            }
            svc["spec"]["ipFamilies"] = json!(["IPv4"]);
            svc["spec"]["ipFamilyPolicy"] = json!("SingleStack");
            svc["spec"]["internalTrafficPolicy"] = svc
                .pointer("/spec/internalTrafficPolicy")
                .cloned()
                .unwrap_or(json!("Cluster"));
        }
        if ty == "NodePort" || ty == "LoadBalancer" {
            if svc.pointer("/spec/externalTrafficPolicy").is_none() {
                svc["spec"]["externalTrafficPolicy"] = json!("Cluster");
            }
            let n = svc.pointer("/spec/ports").and_then(Value::as_array).map_or(0, Vec::len);
            let mut taken: Vec<i64> = Vec::new();
            for i in 0..n {
                let field = format!("spec.ports[{i}].nodePort");
                match svc["spec"]["ports"][i].get("nodePort").and_then(Value::as_i64) {
                    Some(p) if p < i64::from(ranges.node_ports.0) || p > i64::from(ranges.node_ports.1) => {
                        causes.push(invalid(
                            field,
                            p.to_string(),
                            &format!(
                                "provided port is not in the valid range. The range of valid ports is {}-{}",
                                ranges.node_ports.0, ranges.node_ports.1
                            ),
                        ))
                    }
                    Some(p) => {
                        if !taken.contains(&p) {
                            taken.push(p);
                            claims.push(Claim {
                                key: port_key(p),
                                requested: true,
                                cause: invalid(field, p.to_string(), "provided port is already allocated"),
                            });
                        }
                    }
                    None => {
                        let port = loop {
                            let p: i64 = self
                                .free(
                                    || ranges.random_port().to_string(),
                                    |p| port_key(p.parse().unwrap_or(0)),
                                )
                                .await
                                .parse()
                                .unwrap_or(0);
                            if !taken.contains(&p) {
                                break p;
                            }
                        };
                        taken.push(port);
                        svc["spec"]["ports"][i]["nodePort"] = json!(port);
                        claims.push(Claim {
                            key: port_key(port),
                            requested: false,
                            cause: invalid(field, port.to_string(), "provided port is already allocated"),
                        });
                    }
                }
            }
        }
        if causes.is_empty() {
            Ok(claims)
        } else {
            Err(causes)
        }
    }

    /// A candidate that looks free now (the transaction makes sure).
    async fn free(&self, candidate: impl Fn() -> String, key: impl Fn(&str) -> String) -> String {
        let mut c = candidate();
        for _ in 0..64 {
            match self.store.get(&key(&c), Consistency::Serializable).await {
                Ok(None) => return c,
                _ => c = candidate(),
            }
        }
        c
    }
}

/// The ops that create a Service's claims (after its own create).
pub fn claim_ops(claims: &[Claim], owner: &str) -> Vec<Op> {
    claims
        .iter()
        .map(|c| Op::create(c.key.clone(), owner.to_string()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_parse_and_contain() {
        let mut r = ServiceRanges::default();
        assert!(r.contains("10.100.3.4".parse().expect("ip")));
        assert!(!r.contains("10.112.0.1".parse().expect("ip")));
        r.parse_cidr("172.20.5.0/24").expect("cidr");
        assert_eq!(r.cidr_base, Ipv4Addr::new(172, 20, 5, 0));
        for _ in 0..1000 {
            let ip = r.random_ip();
            assert!(r.contains(ip));
            let last = u32::from(ip) & 0xff;
            assert!((2..255).contains(&last), "{ip}");
        }
        assert!(r.parse_cidr("10.0.0.0").is_err());
    }

    #[test]
    fn held_keys_cover_the_cluster_ip_and_node_ports() {
        let svc = json!({"spec": {"clusterIP": "10.96.0.7", "ports": [{"port": 80, "nodePort": 30001}, {"port": 81, "nodePort": 30002}]}});
        assert_eq!(
            held_keys(&svc),
            vec![port_key(30001), port_key(30002), ip_key("10.96.0.7")]
        );
        assert!(held_keys(&json!({"spec": {"clusterIP": "None"}})).is_empty());
    }
}

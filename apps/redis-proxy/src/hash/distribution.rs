//! Key → server distributions as nutcracker builds them: ketama (its md5
//! continuum), modula (hash mod the sum of weights) and random.

use super::functions::md5_hash;

/// How a pool spreads keys over its servers (nutcracker's `distribution:`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DistributionKind {
    /// Consistent hashing on an md5 continuum, points per server by weight.
    Ketama,
    /// `hash % total_weight`, each server owning `weight` consecutive slots.
    Modula,
    /// A random live server per request.
    Random,
}

impl DistributionKind {
    /// The kind named `name` in nutcracker's YAML.
    pub fn from_name(name: &str) -> Option<DistributionKind> {
        match name {
            "ketama" => Some(DistributionKind::Ketama),
            "modula" => Some(DistributionKind::Modula),
            "random" => Some(DistributionKind::Random),
            _ => None,
        }
    }

    /// The name used in nutcracker's YAML.
    pub fn name(self) -> &'static str {
        match self {
            DistributionKind::Ketama => "ketama",
            DistributionKind::Modula => "modula",
            DistributionKind::Random => "random",
        }
    }
}

/// One server as the distribution sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerPoint {
    /// The name ketama hashes: the server's `name` if the config gives
    /// one, else `host:port`.
    pub name: String,
    /// Its weight (>= 1).
    pub weight: u32,
}

/// Ketama's points per server at equal weights, and per md5 digest.
const KETAMA_POINTS_PER_SERVER: u32 = 160;
const KETAMA_POINTS_PER_HASH: u32 = 4;

/// A built distribution over the live servers of a pool.
#[derive(Debug, Clone)]
pub struct Distribution {
    kind: DistributionKind,
    /// Ketama: (point value, server index) sorted by value. Modula and
    /// random: one entry per unit of weight, value unused.
    continuum: Vec<(u32, u32)>,
}

impl Distribution {
    /// Builds `kind` over `servers` (all live), indices into `servers`.
    pub fn new(kind: DistributionKind, servers: &[ServerPoint]) -> Distribution {
        let continuum = match kind {
            DistributionKind::Ketama => ketama_continuum(servers),
            DistributionKind::Modula => modula_continuum(servers),
            DistributionKind::Random => (0..servers.len() as u32).map(|i| (0, i)).collect(),
        };
        Distribution { kind, continuum }
    }

    /// The distribution's kind.
    pub fn kind(&self) -> DistributionKind {
        self.kind
    }

    /// The server index for a key whose hash is `hash`; `random` draws
    /// from `random_draw` instead. `None` only when no server is live.
    pub fn server_for(&self, hash: u32, random_draw: u32) -> Option<u32> {
        let n = self.continuum.len();
        if n == 0 {
            return None;
        }
        Some(match self.kind {
            DistributionKind::Ketama => {
                let at = self.continuum.partition_point(|&(value, _)| value < hash);
                self.continuum[if at == n { 0 } else { at }].1
            }
            DistributionKind::Modula => self.continuum[hash as usize % n].1,
            DistributionKind::Random => self.continuum[random_draw as usize % n].1,
        })
    }
}

fn ketama_continuum(servers: &[ServerPoint]) -> Vec<(u32, u32)> {
    let total_weight: u32 = servers.iter().map(|s| s.weight).sum();
    let live = servers.len() as f32;
    let mut continuum = Vec::new();
    for (index, server) in servers.iter().enumerate() {
        // nutcracker computes this in C `float`; so do we, to round alike.
        let pct = server.weight as f32 / total_weight as f32;
        let points = ((pct * KETAMA_POINTS_PER_SERVER as f32 / 4.0 * live + 0.000_000_000_1)
            .floor()
            * 4.0) as u32;
        for point in 0..points / KETAMA_POINTS_PER_HASH {
            let label = format!("{}-{}", server.name, point);
            // nutcracker formats into an 86-byte buffer: longer labels are cut.
            let label = &label.as_bytes()[..label.len().min(85)];
            for word in 0..KETAMA_POINTS_PER_HASH as usize {
                continuum.push((md5_hash(label, word), index as u32));
            }
        }
    }
    // qsort is not stable; equal values on different servers are a
    // 2^-32 event per pair, so a stable sort agrees in practice.
    continuum.sort_by_key(|&(value, _)| value);
    continuum
}

/// Server indices in the order nutcracker keeps its servers: checking for
/// duplicate names, it sorts them by name (shorter first, then bytewise),
/// and the sorted order stays. Only modula's slots see the order.
fn nutcracker_order(servers: &[ServerPoint]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..servers.len()).collect();
    order.sort_by(|&a, &b| {
        let (a, b) = (servers[a].name.as_bytes(), servers[b].name.as_bytes());
        a.len().cmp(&b.len()).then(a.cmp(b))
    });
    order
}

fn modula_continuum(servers: &[ServerPoint]) -> Vec<(u32, u32)> {
    let mut continuum = Vec::new();
    for index in nutcracker_order(servers) {
        for _ in 0..servers[index].weight {
            continuum.push((0, index as u32));
        }
    }
    continuum
}

#[cfg(test)]
mod tests {
    use super::*;

    fn servers(weights: &[u32]) -> Vec<ServerPoint> {
        weights
            .iter()
            .enumerate()
            .map(|(i, &weight)| ServerPoint {
                name: format!("127.0.0.1:{}", 7000 + i),
                weight,
            })
            .collect()
    }

    #[test]
    fn ketama_points_follow_weights() {
        let d = Distribution::new(DistributionKind::Ketama, &servers(&[1, 1, 2]));
        let count = |s: u32| d.continuum.iter().filter(|p| p.1 == s).count();
        // 3 servers, total weight 4: floor(0.25 * 40 * 3) * 4 = 120, and 240.
        assert_eq!((count(0), count(1), count(2)), (120, 120, 240));
        assert!(d.continuum.windows(2).all(|w| w[0].0 <= w[1].0));
    }

    #[test]
    fn modula_orders_servers_by_name() {
        let mut s = servers(&[1, 1, 1]);
        s[0].name = "zz".into();
        s[1].name = "b".into();
        s[2].name = "a".into();
        let d = Distribution::new(DistributionKind::Modula, &s);
        let order: Vec<_> = (0..3).map(|h| d.server_for(h, 0).unwrap()).collect();
        assert_eq!(order, [2, 1, 0]);
    }

    #[test]
    fn modula_slots_follow_weights() {
        let d = Distribution::new(DistributionKind::Modula, &servers(&[2, 1]));
        assert_eq!(d.server_for(0, 0), Some(0));
        assert_eq!(d.server_for(1, 0), Some(0));
        assert_eq!(d.server_for(2, 0), Some(1));
        assert_eq!(d.server_for(3, 0), Some(0));
    }

    #[test]
    fn ketama_wraps_past_the_last_point() {
        let d = Distribution::new(DistributionKind::Ketama, &servers(&[1, 1]));
        let first = d.continuum[0].1;
        assert_eq!(d.server_for(u32::MAX, 0), Some(first));
        assert_eq!(d.server_for(0, 0), Some(first));
    }

    #[test]
    fn empty_pool_has_no_server() {
        let d = Distribution::new(DistributionKind::Random, &[]);
        assert_eq!(d.server_for(1, 1), None);
    }
}

//! Ketama consistent hashing with libmemcached's continuum layout (`MEMCACHED_BEHAVIOR_KETAMA`
//! weighted with equal weights; the same as spymemcached's `KETAMA_HASH` locator and Node's
//! `hashring` in ketama mode).
//!
//! Each server gets 160 points: for `n` in `0..40`, the MD5 digest of `"<host>:<port>-<n>"`
//! gives four points, its bytes `4i..4i+4` read as a little-endian `u32`. (libmemcached and
//! `hashring` write `"<host>-<n>"` when the port is memcached's default 11211; so does this.)
//! A key hashes to the first four bytes of its MD5 digest, little-endian, and belongs to the
//! server of the first point at or after that value, wrapping around to the first point.

use md5::{Digest, Md5};

/// Points per server, and how many one digest yields.
const POINTS_PER_SERVER: usize = 160;
const POINTS_PER_DIGEST: usize = 4;

/// The port libmemcached leaves out of a server's point names.
const MEMCACHED_DEFAULT_PORT: &str = "11211";

/// The continuum: sorted points, each naming a server by its index.
#[derive(Debug)]
pub(crate) struct Continuum {
    points: Vec<(u32, usize)>,
    servers: usize,
}

impl Continuum {
    /// Builds the continuum of `servers`, given as `host:port` strings.
    pub(crate) fn new<S: AsRef<str>>(servers: &[S]) -> Continuum {
        let mut points = Vec::with_capacity(servers.len() * POINTS_PER_SERVER);
        for (index, server) in servers.iter().enumerate() {
            let server = server.as_ref();
            let name = match server.rsplit_once(':') {
                Some((host, MEMCACHED_DEFAULT_PORT)) => host,
                _ => server,
            };
            for n in 0..POINTS_PER_SERVER / POINTS_PER_DIGEST {
                let digest = Md5::digest(format!("{name}-{n}"));
                for chunk in digest.chunks_exact(4).take(POINTS_PER_DIGEST) {
                    points.push((little_endian(chunk), index));
                }
            }
        }
        // Stable: on an (unlikely) equal point the earlier server comes first.
        points.sort_by_key(|&(point, _)| point);
        Continuum {
            points,
            servers: servers.len(),
        }
    }

    /// The servers for `key` in failover order: its own server first, then each other server
    /// in the order its first point follows on the continuum. Skipping the unavailable ones
    /// picks what a continuum rebuilt without them would pick.
    pub(crate) fn servers_for(&self, key: &str) -> Vec<usize> {
        let hash = key_hash(key);
        let start = self.points.partition_point(|&(point, _)| point < hash);
        let mut order = Vec::with_capacity(self.servers);
        let (after, before) = self.points.split_at(start);
        for &(_, server) in before.iter().chain(after) {
            if !order.contains(&server) {
                order.push(server);
                if order.len() == self.servers {
                    break;
                }
            }
        }
        order
    }
}

/// A key's position on the continuum.
fn key_hash(key: &str) -> u32 {
    little_endian(&Md5::digest(key)[..4])
}

fn little_endian(bytes: &[u8]) -> u32 {
    bytes
        .iter()
        .rev()
        .fold(0, |value, &byte| (value << 8) | u32::from(byte))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn key_hash_is_the_little_endian_head_of_md5() {
        // MD5("") = d41d8cd98f00b204e9800998ecf8427e
        assert_eq!(key_hash(""), 0xd98c_1dd4);
        // MD5("a") = 0cc175b9c0f1b6a831c399e269772661
        assert_eq!(key_hash("a"), 0xb975_c10c);
    }

    #[test]
    fn each_server_gets_160_points_from_40_digests() {
        let continuum = Continuum::new(&["10.0.0.1:22133", "10.0.0.2:22133"]);
        assert_eq!(continuum.points.len(), 320);
        assert!(continuum.points.windows(2).all(|w| w[0].0 <= w[1].0));
        // MD5("10.0.0.1:22133-0") gives the first server its first four points.
        let digest = Md5::digest("10.0.0.1:22133-0");
        for chunk in digest.chunks_exact(4) {
            assert!(continuum.points.contains(&(little_endian(chunk), 0)));
        }
    }

    #[test]
    fn the_default_memcached_port_is_left_out_of_point_names() {
        let with_default = Continuum::new(&["cache:11211"]);
        let digest = Md5::digest("cache-0");
        assert!(
            with_default
                .points
                .contains(&(little_endian(&digest[..4]), 0))
        );
    }

    /// Placements computed by Node's `hashring` 3.2.0 in ketama mode (the ring of the npm
    /// `memcached` client), for the same servers and keys.
    #[test]
    fn placements_match_node_hashring() {
        let names = |servers: &[&str], keys: &str, expected: &[usize]| {
            let continuum = Continuum::new(servers);
            let placed: Vec<usize> = (0..expected.len())
                .map(|i| continuum.servers_for(&format!("{keys}{i}"))[0])
                .collect();
            assert_eq!(placed, expected, "{servers:?}");
        };
        names(
            &["127.0.0.1:22201", "127.0.0.1:22202", "127.0.0.1:22203"],
            "q",
            &[0, 1, 1, 0, 2, 2, 0, 1, 1, 0],
        );
        names(
            &["cache1:11211", "cache2:11211"],
            "k",
            &[0, 0, 0, 0, 1, 1, 0, 0, 0, 0],
        );
    }

    #[test]
    fn a_key_belongs_to_the_first_point_at_or_after_its_hash() {
        let continuum = Continuum::new(&["a:1", "b:2", "c:3"]);
        for key in ["work", "jobs", "q0", "q1", "q2", "emails", ""] {
            let hash = key_hash(key);
            let expected = continuum
                .points
                .iter()
                .find(|&&(point, _)| point >= hash)
                .unwrap_or(&continuum.points[0])
                .1;
            assert_eq!(continuum.servers_for(key)[0], expected, "{key}");
        }
    }

    #[test]
    fn failover_order_lists_every_server_once_and_matches_a_rebuilt_continuum() {
        let servers = ["10.0.0.1:22133", "10.0.0.2:22133", "10.0.0.3:22133"];
        let all = Continuum::new(&servers);
        for i in 0..200 {
            let key = format!("queue{i}");
            let order = all.servers_for(&key);
            let mut sorted = order.clone();
            sorted.sort();
            assert_eq!(sorted, [0, 1, 2]);
            // Without the first choice, a continuum of the other two picks the second.
            let rest: Vec<&str> = (0..3)
                .filter(|&s| s != order[0])
                .map(|s| servers[s])
                .collect();
            let rebuilt = Continuum::new(&rest);
            let picked = rest[rebuilt.servers_for(&key)[0]];
            assert_eq!(picked, servers[order[1]], "{key}");
        }
    }

    #[test]
    fn removing_a_server_moves_only_its_keys() {
        let three = Continuum::new(&["a:1", "b:1", "c:1"]);
        let two = Continuum::new(&["a:1", "b:1"]);
        let mut moved = 0;
        for i in 0..3000 {
            let key = format!("k{i}");
            let before = three.servers_for(&key)[0];
            let after = two.servers_for(&key)[0];
            if before != 2 {
                assert_eq!(before, after, "{key} moved although its server stayed");
            } else {
                moved += 1;
            }
        }
        // About a third of the keys lived on the removed server.
        assert!((700..1300).contains(&moved), "{moved}");
    }
}
